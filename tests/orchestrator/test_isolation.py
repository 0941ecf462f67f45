"""The isolation proof: every URL pattern is either a declared public page or a workspace API
view that authenticates, declares scopes for each method, and answers another workspace's
objects with the same 404 as a random id."""

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from audit import services as audit
from audit.models import ActionAudit
from orchestrator.api.authentication import ApiKeyAuthentication
from orchestrator.api.base import WorkspaceAPIView
from orchestrator.api.permissions import HasRequiredScopes
from orchestrator.api_keys import SCOPES
from orchestrator.models import Job
from tests import factories

pytestmark = pytest.mark.django_db

# Routes meant to be reached without an API key, each for a stated reason.
PUBLIC = {
    "health": "liveness probe",
    "ready": "readiness probe",
    "metrics": "Prometheus scrape: METRICS_TOKEN bearer when set, private network",
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


def objects_of(workspace, *, job_status=Job.Status.QUEUED) -> dict[str, object]:
    """One object of each kind a route can name, in `workspace`: {placeholder: id}."""
    job = factories.make_job(workspace, status=job_status)
    row, _ = audit.record_action(
        workspace_id=workspace.id,
        job_id=job.id,
        call_key="1.0",
        action="task.create",
        arguments={"title": "t"},
        status=ActionAudit.Status.PENDING_APPROVAL,
    )
    return {"<str:job_id>": job.id, "<str:action_id>": row.pk}


RANDOM_IDS = {"<str:job_id>": uuid.uuid4(), "<str:action_id>": 2**40}


def path_for(route: str, ids: dict[str, object]) -> str:
    path = route
    for placeholder, value in ids.items():
        path = path.replace(placeholder, str(value))
    assert "<" not in path, f"no test object for {route}: add one to objects_of()"
    return "/" + path


# Well-formed for every POST that names an object, so only the object's workspace can decide.
POST_BODY = {"arguments_hash": "0" * 64}


def call(client, method: str, path: str):
    return getattr(client, method)(path, {} if method == "get" else POST_BODY, format="json")


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
    path = path_for(route, objects_of(workspace))
    no_scopes = client_for(factories.make_api_key(workspace, scopes=[]))

    assert call(client_for(None), method, path).status_code == 401
    assert call(no_scopes, method, path).status_code == 403


@pytest.mark.parametrize(("route", "method"), [c for c in API_CALLS if "<" in c[0]])
@pytest.mark.parametrize("status", [s for s, _ in Job.Status.choices])
def test_another_workspaces_object_is_the_same_404_as_a_random_id(
    client_for, workspace, other_workspace, route, method, status
):
    # A key holding every scope, so that only the workspace can stand in the way.
    client = client_for(factories.make_api_key(workspace, scopes=list(SCOPES)))
    theirs = objects_of(other_workspace, job_status=status)
    jobs_before = list(Job.objects.values())
    actions_before = list(ActionAudit.objects.values())

    response = call(client, method, path_for(route, theirs))
    random = call(client, method, path_for(route, RANDOM_IDS))

    assert (response.status_code, response.json()) == (404, random.json())
    assert random.status_code == 404
    assert list(Job.objects.values()) == jobs_before
    assert list(ActionAudit.objects.values()) == actions_before


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
    client_for, workspace, route, param
):
    api_key = factories.make_api_key(workspace, scopes=list(SCOPES))
    api_client = client_for(api_key)
    path = path_for(route, objects_of(workspace))

    response = api_client.get(path, {param: api_key})

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "credentials_in_url"
    assert api_client.get(path).status_code in (200, 405)  # positive control: header alone
