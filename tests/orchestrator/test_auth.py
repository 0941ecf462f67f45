"""Specifies API-key authentication, scopes and workspace isolation on the jobs API."""

import base64
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory

from core import redis_keys
from core.redis_client import get_redis
from orchestrator.api.base import WorkspaceAPIView
from orchestrator.api_keys import UnknownScope, issue_api_key, revoke_api_key
from orchestrator.models import ApiKey, Job
from orchestrator.workspaces import configure_workspace
from tests.factories import make_api_key, make_job
from tests.helpers import http, queue_length
from tests.processes import start_web

VALID_BODY = {"client_request_id": "auth-req-1", "prompt": "Hello"}


# --- Local helpers --------------------------------------------------------------------------


def client_with(authorization: str | None) -> APIClient:
    """A client sending exactly this Authorization header (none when None)."""
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def key_parts(plaintext: str) -> tuple[str, str, str]:
    """(tag, prefix, secret); the secret may itself contain underscores."""
    tag, prefix, secret = plaintext.split("_", 2)
    return tag, prefix, secret


def key_row(plaintext: str) -> ApiKey:
    return ApiKey.objects.get(prefix=key_parts(plaintext)[1])


def get_job(base_url: str, api_key: str, job: Job) -> int:
    """The status of GET /ai/jobs/{id} over HTTP, on a new connection each time."""
    return http(f"{base_url}/ai/jobs/{job.id}", headers={"Authorization": f"Bearer {api_key}"})[0]


def call_route(client: APIClient, route: str, job: Job):
    """POST /ai/jobs (needs jobs:write) or GET /ai/jobs/{id} (needs jobs:read)."""
    if route == "POST /ai/jobs":
        return client.post("/ai/jobs", VALID_BODY, format="json")
    return client.get(f"/ai/jobs/{job.id}")


ROUTES = ["POST /ai/jobs", "GET /ai/jobs/{id}"]


def _revoked(workspace) -> str:
    key = make_api_key(workspace)
    revoke_api_key(api_key=key_row(key))
    return f"Bearer {key}"


def _expired(workspace) -> str:
    expired_at = timezone.now() - timedelta(minutes=1)
    return f"Bearer {make_api_key(workspace, expires_at=expired_at)}"


def _unknown_prefix(workspace) -> str:
    _, _, secret = key_parts(make_api_key(workspace))
    return f"Bearer aio_{'0' * 12}_{secret}"


def _wrong_secret(workspace) -> str:
    _, prefix, secret = key_parts(make_api_key(workspace))
    return f"Bearer aio_{prefix}_{'A' * len(secret)}"


# Every way of not presenting a usable key. All must look alike to the caller.
BAD_AUTHORIZATIONS = {
    "no header": lambda ws: None,
    "basic scheme": lambda ws: "Basic " + base64.b64encode(b"ws-a:password").decode(),
    "token scheme with a valid key": lambda ws: f"Token {make_api_key(ws)}",
    "bearer without a key": lambda ws: "Bearer",
    "malformed key": lambda ws: "Bearer not-an-api-key",
    "wrong tag": lambda ws: "Bearer " + make_api_key(ws).replace("aio_", "xyz_", 1),
    "key without a secret": lambda ws: f"Bearer aio_{key_parts(make_api_key(ws))[1]}_",
    "unknown prefix": _unknown_prefix,
    "right prefix wrong secret": _wrong_secret,
    "revoked key": _revoked,
    "expired key": _expired,
}


@pytest.fixture(params=list(BAD_AUTHORIZATIONS))
def bad_authorization(request, workspace) -> str | None:
    return BAD_AUTHORIZATIONS[request.param](workspace)


@pytest.fixture
def job(workspace) -> Job:
    return make_job(workspace)


def assert_left_nothing_behind(workspace) -> None:
    assert Job.objects.count() == 0
    idempotency_key = redis_keys.idempotency_key(workspace.id, VALID_BODY["client_request_id"])
    assert not get_redis().exists(idempotency_key)
    assert queue_length() == 0


# --- 401: one answer for every bad credential -------------------------------------------------


def test_valid_key_is_accepted_on_both_routes(api_client, job):
    assert call_route(api_client, "POST /ai/jobs", job).status_code == 202
    assert call_route(api_client, "GET /ai/jobs/{id}", job).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
def test_every_bad_credential_gets_the_same_401(bad_authorization, route, job):
    # The reference is the plainest failure: no header at all, on POST.
    reference = call_route(client_with(None), "POST /ai/jobs", job)

    response = call_route(client_with(bad_authorization), route, job)

    assert response.status_code == 401
    assert response.json() == reference.json()
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.json()["error"]["status"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("with_key", [False, True], ids=["without key", "with key"])
def test_options_request_is_a_405_never_a_server_error(api_key, job, with_key):
    # APIView implements OPTIONS for every view; it must not reach the scope check as an
    # undeclared method (ImproperlyConfigured, a 500 anyone could trigger).
    client = client_with(f"Bearer {api_key}" if with_key else None)
    client.raise_request_exception = False

    for path in ("/ai/jobs", f"/ai/jobs/{job.id}"):
        response = client.options(path)
        assert response.status_code == 405, (path, response.status_code)
        assert response.json()["error"]["code"] == "method_not_allowed"


# --- Refused requests leave nothing behind (with a positive control) ---------------------------


@pytest.mark.django_db(transaction=True)
def test_accepted_job_leaves_a_row_an_idempotency_key_and_a_queue_message(workspace, api_key):
    response = client_with(f"Bearer {api_key}").post("/ai/jobs", VALID_BODY, format="json")

    assert response.status_code == 202, response.content
    assert Job.objects.count() == 1
    idempotency_key = redis_keys.idempotency_key(workspace.id, VALID_BODY["client_request_id"])
    assert get_redis().exists(idempotency_key)
    assert queue_length() == 1


@pytest.mark.django_db(transaction=True)
def test_unauthenticated_post_leaves_nothing_behind(workspace, bad_authorization):
    response = client_with(bad_authorization).post("/ai/jobs", VALID_BODY, format="json")

    assert response.status_code == 401
    assert_left_nothing_behind(workspace)


@pytest.mark.django_db(transaction=True)
def test_post_without_jobs_write_leaves_nothing_behind(workspace):
    key = make_api_key(workspace, scopes=["jobs:read"])

    response = client_with(f"Bearer {key}").post("/ai/jobs", VALID_BODY, format="json")

    assert response.status_code == 403
    assert_left_nothing_behind(workspace)


# --- 403: scopes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "route", "missing_scope"),
    [
        (["jobs:read"], "POST /ai/jobs", "jobs:write"),
        (["jobs:write"], "GET /ai/jobs/{id}", "jobs:read"),
        ([], "POST /ai/jobs", "jobs:write"),
        ([], "GET /ai/jobs/{id}", "jobs:read"),
        (["actions:approve"], "POST /ai/jobs", "jobs:write"),
        (["actions:approve"], "GET /ai/jobs/{id}", "jobs:read"),
    ],
)
def test_key_without_the_routes_scope_gets_403_naming_it(
    workspace, job, scopes, route, missing_scope
):
    key = make_api_key(workspace, scopes=scopes)

    response = call_route(client_with(f"Bearer {key}"), route, job)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["status"] == 403
    assert error["code"] == "insufficient_scope"
    assert missing_scope in error["message"]


@pytest.mark.parametrize(
    ("scopes", "route", "status"),
    [
        (["jobs:read"], "GET /ai/jobs/{id}", 200),
        (["jobs:write"], "POST /ai/jobs", 202),
    ],
)
def test_key_with_only_the_routes_scope_is_enough(workspace, job, scopes, route, status):
    key = make_api_key(workspace, scopes=scopes)

    assert call_route(client_with(f"Bearer {key}"), route, job).status_code == status


# --- Workspace isolation -----------------------------------------------------------------------


def test_other_workspace_job_is_404_identical_to_an_unknown_id(
    workspace, other_workspace, api_client, job
):
    other_client = client_with(f"Bearer {make_api_key(other_workspace)}")

    foreign = other_client.get(f"/ai/jobs/{job.id}")
    unknown = other_client.get(f"/ai/jobs/{uuid.uuid4()}")
    malformed = other_client.get("/ai/jobs/not-a-uuid")

    assert foreign.status_code == unknown.status_code == malformed.status_code == 404
    assert foreign.json() == unknown.json() == malformed.json()
    assert foreign.json()["error"]["code"] == "not_found"
    # Positive control: the owner reads it.
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200


# --- Storage of keys ---------------------------------------------------------------------------


def test_key_is_stored_as_prefix_and_digest_never_in_plaintext(workspace):
    issued = issue_api_key(workspace=workspace, scopes=["jobs:read"], name="ci")
    tag, prefix, secret = key_parts(issued.plaintext)

    assert tag == "aio"
    assert issued.plaintext == f"aio_{prefix}_{secret}"
    assert prefix and secret

    row = ApiKey.objects.get(pk=issued.api_key.pk)
    assert row.prefix == prefix
    assert re.fullmatch(r"[0-9a-f]{64}", row.digest)
    # Read the raw database row, every column, not just the model's view of it.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiKey._meta.db_table} WHERE id = %s", [row.pk])  # noqa: S608
        columns = [str(value) for value in cursor.fetchone()]
    for value in columns:
        assert issued.plaintext not in value
        assert secret not in value


def test_issued_keys_are_unique(workspace):
    first, second = make_api_key(workspace), make_api_key(workspace)

    assert first != second
    assert key_parts(first)[1] != key_parts(second)[1]


@pytest.mark.parametrize("scopes", [["jobs:delete"], ["jobs:read", "jobs:Write"], ["*"]])
def test_issue_api_key_refuses_an_unknown_scope(workspace, scopes):
    with pytest.raises(UnknownScope):
        issue_api_key(workspace=workspace, scopes=scopes)

    assert not ApiKey.objects.exists()


# --- last_used_at ------------------------------------------------------------------------------


def test_last_used_at_is_set_on_first_use(api_key, api_client, job):
    assert key_row(api_key).last_used_at is None
    before = timezone.now()

    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    last_used_at = key_row(api_key).last_used_at
    assert last_used_at is not None
    assert before <= last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_a_minute(api_key, api_client, job):
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200
    first = key_row(api_key).last_used_at

    assert api_client.post("/ai/jobs", VALID_BODY, format="json").status_code == 202
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    assert key_row(api_key).last_used_at == first


@pytest.mark.parametrize(
    ("age", "refreshed"),
    [(timedelta(seconds=30), False), (timedelta(minutes=2), True)],
)
def test_last_used_at_is_refreshed_only_when_older_than_a_minute(
    api_key, api_client, job, age, refreshed
):
    old = timezone.now() - age
    ApiKey.objects.filter(pk=key_row(api_key).pk).update(last_used_at=old)

    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    last_used_at = key_row(api_key).last_used_at
    if refreshed:
        assert last_used_at > old + timedelta(minutes=1)
    else:
        assert last_used_at == old


def test_failed_authentication_does_not_touch_last_used_at(workspace, api_key, job):
    _, prefix, secret = key_parts(api_key)
    wrong = client_with(f"Bearer aio_{prefix}_{'A' * len(secret)}")

    assert wrong.get(f"/ai/jobs/{job.id}").status_code == 401

    assert key_row(api_key).last_used_at is None


# --- Cached keys: no key query per request, and every change holds at once -------------------


def test_a_key_once_authenticated_is_not_read_again(api_client, job):
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    assert not [q["sql"] for q in queries if "orchestrator_apikey" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_a_revoked_key_is_refused_at_once_by_every_web_process(api_key, job):
    web, base_url = start_web()  # two gunicorn processes, each caching the key it served
    try:
        warm = [get_job(base_url, api_key, job) for _ in range(20)]
        revoke_api_key(api_key=key_row(api_key))
        after = [get_job(base_url, api_key, job) for _ in range(20)]
    finally:
        web.stop()

    assert warm == [200] * 20
    assert after == [401] * 20


@pytest.mark.django_db(transaction=True)
def test_a_workspace_change_holds_on_the_next_request(workspace, api_key, job):
    web, base_url = start_web()
    try:
        warm = [get_job(base_url, api_key, job) for _ in range(10)]
        configure_workspace(workspace=workspace, rate_limit_per_minute=1)
        after = [get_job(base_url, api_key, job) for _ in range(3)]
    finally:
        web.stop()

    assert warm == [200] * 10
    # The window already holds the warm-up requests: the new limit of one is spent.
    assert after == [429] * 3


def changed_by_another_process(**fields) -> None:
    """What a change made in another web process looks like from this one: the rows change and
    the credentials generation moves, but this process's cache is untouched."""
    if fields:
        ApiKey.objects.update(**fields)
    get_redis().incr(redis_keys.CREDENTIALS_GENERATION)


def window_count(workspace) -> int:
    return get_redis().zcard(redis_keys.rate_limit_key(workspace.id))


def test_a_change_to_another_key_costs_a_cached_key_nothing(workspace, api_client, job):
    warm = api_client.get(f"/ai/jobs/{job.id}")
    changed_by_another_process()

    response = api_client.post("/ai/jobs", VALID_BODY, format="json")

    assert response.status_code == 202
    # Counted once, though the first check found the generation moved and the request ran again.
    assert int(response["RateLimit-Remaining"]) == int(warm["RateLimit-Remaining"]) - 1
    assert window_count(workspace) == 2
    job_id = response.json()["id"]
    idempotency_key = redis_keys.idempotency_key(workspace.id, VALID_BODY["client_request_id"])
    assert get_redis().get(idempotency_key) == job_id
    assert Job.objects.filter(client_request_id=VALID_BODY["client_request_id"]).count() == 1


def test_a_cached_key_revoked_elsewhere_submits_nothing(workspace, api_client, job):
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200
    job.delete()  # so that "nothing behind" means no job at all
    changed_by_another_process(revoked_at=timezone.now())

    response = api_client.post("/ai/jobs", VALID_BODY, format="json")

    assert response.status_code == 401
    assert_left_nothing_behind(workspace)
    assert window_count(workspace) == 1  # the warm-up only: a refused key spends no budget


def test_a_bad_body_after_a_change_elsewhere_is_a_400_counted_once(workspace, api_client, job):
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200
    changed_by_another_process()

    response = api_client.post("/ai/jobs", {"prompt": "no client_request_id"}, format="json")

    assert response.status_code == 400
    assert "client_request_id" in response.json()["error"]["fields"]
    assert window_count(workspace) == 2


def test_when_redis_cannot_confirm_a_cached_key_its_row_decides(workspace, job, request):
    kept, revoked = make_api_key(workspace), make_api_key(workspace)
    for key in (kept, revoked):
        assert client_with(f"Bearer {key}").get(f"/ai/jobs/{job.id}").status_code == 200
    request.getfixturevalue("dead_redis")
    # Revoked while Redis is down, so no generation moves: only the row knows.
    ApiKey.objects.filter(pk=key_row(revoked).pk).update(revoked_at=timezone.now())

    assert client_with(f"Bearer {revoked}").get(f"/ai/jobs/{job.id}").status_code == 401
    # The limiter fails open, so a valid key still gets through.
    assert client_with(f"Bearer {kept}").get(f"/ai/jobs/{job.id}").status_code == 200


def test_an_expired_key_is_refused_though_cached(workspace, job):
    expires_at = timezone.now() + timedelta(seconds=1)
    client = client_with(f"Bearer {make_api_key(workspace, expires_at=expires_at)}")
    assert client.get(f"/ai/jobs/{job.id}").status_code == 200

    time.sleep(1.1)

    assert client.get(f"/ai/jobs/{job.id}").status_code == 401


def test_a_change_behind_the_services_back_holds_after_api_key_cache_seconds(
    settings, api_key, api_client, job
):
    settings.API_KEY_CACHE_SECONDS = 1
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200
    # Raw SQL bumps no generation: the process keeps its copy until the bound.
    ApiKey.objects.update(revoked_at=timezone.now())
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    time.sleep(1.1)

    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 401


def test_api_key_cache_seconds_0_reads_the_key_every_time(settings, api_key, api_client, job):
    settings.API_KEY_CACHE_SECONDS = 0
    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 200

    ApiKey.objects.update(revoked_at=timezone.now())

    assert api_client.get(f"/ai/jobs/{job.id}").status_code == 401


# --- HasRequiredScopes is loud about undeclared scopes ----------------------------------------


class NoScopesView(WorkspaceAPIView):
    def get(self, request):
        return Response({"ok": True})


class EmptyScopesView(WorkspaceAPIView):
    required_scopes = {}

    def get(self, request):
        return Response({"ok": True})


class UndeclaredPostView(WorkspaceAPIView):
    required_scopes = {"GET": ["jobs:read"]}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


def _request(method: str, key: str):
    factory = APIRequestFactory()
    return getattr(factory, method)("/tiny", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.parametrize(
    ("view_class", "method"),
    [(NoScopesView, "get"), (EmptyScopesView, "get"), (UndeclaredPostView, "post")],
)
def test_view_without_declared_scopes_is_improperly_configured(api_key, view_class, method):
    view = view_class.as_view()

    with pytest.raises(ImproperlyConfigured, match=view_class.__name__):
        view(_request(method, api_key))


def test_declared_method_of_a_partly_declared_view_is_allowed(api_key):
    # Positive control for UndeclaredPostView: only its undeclared method is refused.
    response = UndeclaredPostView.as_view()(_request("get", api_key))

    assert response.status_code == 200
