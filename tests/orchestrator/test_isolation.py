"""The isolation proof: every URL pattern is either a declared public page or a workspace API
view that authenticates, declares scopes for each method, and answers another workspace's
objects with the same 404 as a random id."""

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from orchestrator.api.authentication import ApiKeyAuthentication
from orchestrator.api.base import WorkspaceAPIView
from orchestrator.api.permissions import HasRequiredScopes
from orchestrator.models import Job
from tests import factories

pytestmark = pytest.mark.django_db

# Routes meant to be reached without an API key, each for a stated reason.
PUBLIC = {
    "health": "liveness probe",
    "ready": "readiness probe",
    "schema": "the OpenAPI document",
    "docs": "Swagger UI",
}
METHODS = ("get", "post", "put", "patch", "delete")


def url_patterns(patterns=None, prefix=""):
    """(route, name, callback) of every URL pattern, walking includes."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # Django's admin: staff sessions, its own authentication
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name, pattern.callback


API_ROUTES = [
    (route, callback.cls)
    for route, name, callback in url_patterns()
    if name not in PUBLIC and hasattr(callback, "cls")
]
API_CALLS = [
    (route, method) for route, view in API_ROUTES for method in METHODS if hasattr(view, method)
]


def path_for(route: str, job_id) -> str:
    return "/" + route.replace("<str:job_id>", str(job_id))


def call(client, method: str, path: str):
    return getattr(client, method)(path, {} if method == "get" else None, format="json")


def test_every_route_is_public_by_declaration_or_a_scoped_workspace_api_view():
    names = {name for _, name, _ in url_patterns()}
    assert set(PUBLIC) <= names
    for route, name, callback in url_patterns():
        if name in PUBLIC:
            continue
        view = getattr(callback, "cls", None)
        assert view is not None and issubclass(view, APIView), f"{route} is not an API view"
        assert issubclass(view, WorkspaceAPIView), route
        assert list(view.authentication_classes) == [ApiKeyAuthentication], route
        assert HasRequiredScopes in view.permission_classes, route
        for method in METHODS:
            if hasattr(view, method):
                assert view.required_scopes.get(method.upper()), f"{method} {route}"
    assert len(API_CALLS) >= 4  # positive control: the walk found the jobs API


@pytest.mark.parametrize(("route", "method"), API_CALLS)
def test_every_api_call_needs_a_key_and_its_scope(client_for, workspace, route, method):
    job = factories.make_job(workspace)
    path = path_for(route, job.id)
    no_scopes = client_for(factories.make_api_key(workspace, scopes=[]))

    assert call(client_for(None), method, path).status_code == 401
    assert call(no_scopes, method, path).status_code == 403


@pytest.mark.parametrize(("route", "method"), [c for c in API_CALLS if "<" in c[0]])
@pytest.mark.parametrize("status", [s for s, _ in Job.Status.choices])
def test_another_workspaces_job_is_the_same_404_as_a_random_id(
    api_client, other_workspace, route, method, status
):
    theirs = factories.make_job(other_workspace, status=status)
    before = Job.objects.filter(pk=theirs.pk).values().get()

    response = call(api_client, method, path_for(route, theirs.id))
    random = call(api_client, method, path_for(route, uuid.uuid4()))

    assert (response.status_code, response.json()) == (404, random.json())
    assert random.status_code == 404
    assert Job.objects.filter(pk=theirs.pk).values().get() == before


def test_listing_and_submitting_never_reveal_another_workspaces_jobs(
    api_client, workspace, other_workspace
):
    theirs = factories.make_job(other_workspace, client_request_id="shared-id")
    ours = factories.make_job(workspace)

    listed = api_client.get("/ai/jobs").json()["results"]
    filtered = api_client.get("/ai/jobs", {"client_request_id": "shared-id"}).json()["results"]
    submitted = api_client.post(
        "/ai/jobs", {"client_request_id": "shared-id", "prompt": "mine"}, format="json"
    )

    assert [job["id"] for job in listed] == [str(ours.id)]
    assert filtered == []
    # Their client_request_id is no 422 for us: idempotency keys are per workspace.
    assert submitted.status_code == 202
    assert submitted.json()["id"] != str(theirs.id)


@pytest.mark.parametrize("route", sorted({route for route, _ in API_CALLS}))
@pytest.mark.parametrize("param", ["api_key", "token", "x"])
def test_a_key_in_the_query_string_is_refused_even_with_a_good_header(
    api_client, api_key, workspace, route, param
):
    path = path_for(route, factories.make_job(workspace).id)

    response = api_client.get(path, {param: api_key})

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "credentials_in_url"
    assert api_client.get(path).status_code in (200, 405)  # positive control: header alone
