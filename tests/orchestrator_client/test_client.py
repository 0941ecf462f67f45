"""The synchronous client against the real stack: gunicorn, PostgreSQL, Redis, a Celery worker."""

import socket
import time
import uuid
from datetime import datetime

import httpx
import pytest

from actions.models import Task
from orchestrator.models import Job as JobRow
from orchestrator_client import (
    Action,
    ActionNotPendingError,
    ApiConnectionError,
    ApiTimeoutError,
    ArgumentsChangedError,
    AuthenticationError,
    IdempotencyKeyReusedError,
    InsufficientScopeError,
    InvalidRequestError,
    Job,
    JobFinishedError,
    JobSummary,
    JobWaitTimeout,
    NotFoundError,
    OrchestratorClient,
    Page,
    RateLimitedError,
    RetryPolicy,
)
from tests import factories
from tests.orchestrator_client.conftest import propose_task
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

QUICK_RETRIES = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.2)


@pytest.fixture
def client(web, key):
    with OrchestratorClient(web, key) as client:
        yield client


class AttemptLog:
    """httpx request hook: records every attempt the client makes, and can act before one."""

    def __init__(self, before_attempt=None) -> None:
        self.requests: list[httpx.Request] = []
        self.before_attempt = before_attempt

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)
        if self.before_attempt is not None:
            self.before_attempt(len(self.requests))


# --- Typed results ----------------------------------------------------------------------------


def test_submit_wait_and_get_return_typed_jobs(client, local_worker):
    submitted = client.submit(prompt="Plan my week", metadata={"ticket": 7})

    assert isinstance(submitted, Job)
    assert submitted.client_request_id.startswith("req-")  # made up by the client
    assert (submitted.status, submitted.replayed, submitted.metadata) == (
        "queued",
        False,
        {"ticket": 7},
    )
    assert isinstance(submitted.created_at, datetime) and submitted.created_at.tzinfo
    done = client.wait_for_job(submitted.id, poll_interval=0.1, timeout=30)
    assert done.status == "succeeded" and done.is_final and done.output_text
    assert done.finished_at is not None and done.finished_at >= done.created_at
    assert done.error is None and done.actions == []
    assert done.raw["id"] == done.id  # the JSON as received, extra fields included
    assert client.get_job(submitted.id) == done


def test_a_replayed_submission_returns_the_original_job(client):
    first = client.submit(client_request_id="req-replay-1", prompt="Once")
    again = client.submit(client_request_id="req-replay-1", prompt="Once")

    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert JobRow.objects.count() == 1


def test_cancel_is_idempotent_and_a_finished_job_cannot_be_cancelled(client, workspace):
    queued = client.submit(prompt="Nobody runs this")  # no worker: it stays queued
    finished = factories.make_job(workspace, status=JobRow.Status.SUCCEEDED)

    assert client.cancel(queued.id).status == "cancelled"
    assert client.cancel(queued.id).status == "cancelled"
    with pytest.raises(JobFinishedError) as refused:
        client.cancel(str(finished.id))
    assert (refused.value.status, refused.value.code) == (409, "job_finished")


def test_wait_for_job_gives_up_with_the_last_state_seen(client):
    queued = client.submit(prompt="Nobody runs this")

    with pytest.raises(JobWaitTimeout) as waited:
        client.wait_for_job(queued.id, timeout=0.3, poll_interval=0.1)
    assert isinstance(waited.value, TimeoutError)
    assert waited.value.job.status == "queued"


# --- Pagination -------------------------------------------------------------------------------


def test_list_jobs_pages_and_iter_jobs_follows_the_cursor(client):
    ids = [client.submit(prompt=f"Job {n}").id for n in range(5)]
    client.cancel(ids[0])

    first = client.list_jobs(limit=2)
    assert isinstance(first, Page) and len(first) == 2 and first.next_cursor
    assert all(isinstance(job, JobSummary) for job in first)
    second = client.list_jobs(limit=2, cursor=first.next_cursor)
    assert [job.id for job in [*first, *second]] == ids[::-1][:4]

    assert [job.id for job in client.iter_jobs(limit=2)] == ids[::-1]  # three pages
    assert [job.id for job in client.iter_jobs(status="cancelled")] == [ids[0]]
    assert [job.id for job in client.iter_jobs(status=["queued"], limit=3)] == ids[:0:-1]
    assert list(client.iter_jobs(created_after=datetime.now().astimezone())) == []


# --- One exception class per error code -------------------------------------------------------


def test_each_api_error_is_raised_as_the_class_of_its_code(web, client, workspace):
    reader = OrchestratorClient(web, factories.make_api_key(workspace, scopes=["jobs:read"]))
    stranger = OrchestratorClient(web, "aio_000000000000_wrong")
    client.submit(client_request_id="req-taken", prompt="First")
    try:
        with pytest.raises(AuthenticationError) as unauthenticated:
            stranger.list_jobs()
        with pytest.raises(InsufficientScopeError) as no_scope:
            reader.submit(prompt="Not allowed")
        with pytest.raises(NotFoundError) as missing:
            client.get_job(str(uuid.uuid4()))
        with pytest.raises(NotFoundError):
            client.get_job("../actions")  # one path segment, never another route
        with pytest.raises(InvalidRequestError) as invalid:
            client.submit(prompt="Hi", max_output_tokens=0)
        with pytest.raises(IdempotencyKeyReusedError) as reused:
            client.submit(client_request_id="req-taken", prompt="Something else")
    finally:
        reader.close()
        stranger.close()

    assert (unauthenticated.value.status, unauthenticated.value.code) == (401, "unauthenticated")
    assert (no_scope.value.status, no_scope.value.code) == (403, "insufficient_scope")
    assert "jobs:write" in no_scope.value.message
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert (invalid.value.status, invalid.value.code) == (400, "invalid_request")
    assert list(invalid.value.fields) == ["max_output_tokens"]
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    # Every error names the request id the server logged it under.
    assert missing.value.request_id and missing.value.request_id in str(missing.value)


def test_a_429_carries_retry_after_and_a_long_one_is_raised_not_slept(web, workspace):
    workspace.rate_limit_per_minute = 1
    workspace.save()
    patient = RetryPolicy(max_retries=3, max_retry_after=5)
    with OrchestratorClient(web, factories.make_api_key(workspace), retry_policy=patient) as client:
        client.list_jobs()
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as limited:
            client.list_jobs()

    # The window frees a slot in about a minute: more than this client waits, so it raised.
    assert time.monotonic() - started < 2
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert 5 < limited.value.retry_after <= 60
    assert limited.value.request_id


# --- Retries ----------------------------------------------------------------------------------


def test_a_refused_connection_is_retried_until_the_server_accepts(proxy, key):
    attempts = AttemptLog(lambda n: proxy.open() if n == 2 else None)
    http = httpx.Client(event_hooks={"request": [attempts]})
    client = OrchestratorClient(proxy.url, key, retry_policy=QUICK_RETRIES, http_client=http)
    try:
        page = client.list_jobs()  # refused once, then answered
    finally:
        client.close()
        http.close()

    assert page.items == []
    assert len(attempts.requests) == 2 and proxy.connections == 1
    # Both attempts are one call to the server's logs.
    assert len({request.headers["X-Request-ID"] for request in attempts.requests}) == 1


def test_a_submission_whose_answer_was_lost_is_retried_with_the_same_id_and_runs_once(proxy, key):
    proxy.open()
    proxy.drop_answers(1)  # the server stores the job; its answer never arrives
    attempts = AttemptLog()
    http = httpx.Client(event_hooks={"request": [attempts]})
    client = OrchestratorClient(proxy.url, key, retry_policy=QUICK_RETRIES, http_client=http)
    try:
        job = client.submit(prompt="Exactly once")
    finally:
        client.close()
        http.close()

    assert len(attempts.requests) == 2
    bodies = {request.content for request in attempts.requests}
    assert len(bodies) == 1 and job.client_request_id.encode() in bodies.pop()
    assert job.replayed  # the second attempt found the job the first one created
    assert list(JobRow.objects.values_list("id", flat=True)) == [uuid.UUID(job.id)]


def test_without_retries_a_refused_connection_is_an_api_connection_error(proxy, key):
    client = OrchestratorClient(proxy.url, key, max_retries=0)
    with client, pytest.raises(ApiConnectionError) as refused:
        client.list_jobs()
    assert isinstance(refused.value.__cause__, httpx.ConnectError)


def test_a_server_that_never_answers_is_an_api_timeout_error(key):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), reads nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = OrchestratorClient(url, key, timeout=0.3, max_retries=0)
        with client, pytest.raises(ApiTimeoutError):
            client.list_jobs()


def test_an_approval_whose_answer_was_lost_is_not_retried(
    proxy, approval_workspace, key, local_worker, web
):
    direct = OrchestratorClient(web, key)
    direct.wait_for_job(direct.submit(prompt=propose_task("Lost")).id, timeout=30)
    (pending,) = direct.list_actions()
    proxy.open()
    proxy.drop_answers(1)

    client = OrchestratorClient(proxy.url, key, retry_policy=QUICK_RETRIES)
    with client, pytest.raises(ApiConnectionError):
        client.approve(pending.id, arguments_hash=pending.arguments_hash)

    assert proxy.connections == 1
    # The approval did happen: a retry would have been refused with 409 action_not_pending.
    (decided,) = direct.list_actions()
    direct.close()
    assert decided.decided_by.startswith("api-key:") and decided.status != "pending_approval"


# --- Approval ---------------------------------------------------------------------------------


def test_a_held_action_is_approved_by_its_arguments_hash_or_rejected(
    client, approval_workspace, local_worker
):
    jobs = [client.submit(prompt=propose_task(title)) for title in ("Approve me", "Reject me")]
    for job in jobs:
        done = client.wait_for_job(job.id, poll_interval=0.1, timeout=30)
        assert [action.status for action in done.actions] == ["pending_approval"]

    pending = client.list_actions(status="pending_approval")
    assert all(isinstance(action, Action) for action in pending)
    by_title = {action.arguments["title"]: action for action in pending}
    approved_one, rejected_one = by_title["Approve me"], by_title["Reject me"]
    assert (approved_one.job_id, approved_one.action) == (jobs[0].id, "task.create")
    assert approved_one.arguments["title"] == "Approve me"
    assert len(approved_one.arguments_hash) == 64 and approved_one.expires_at is not None

    with pytest.raises(ArgumentsChangedError):
        client.approve(approved_one.id, arguments_hash=rejected_one.arguments_hash)
    approved = client.approve(approved_one.id, arguments_hash=approved_one.arguments_hash)
    assert approved.status == "executing" and approved.decided_by.startswith("api-key:")
    rejected = client.reject(rejected_one.id)
    assert rejected.status == "rejected" and rejected.decided_at is not None
    with pytest.raises(ActionNotPendingError):
        client.approve(rejected_one.id, arguments_hash=rejected_one.arguments_hash)

    wait_until(
        lambda: {a.status for a in client.list_actions()} == {"rejected", "executed"},
        timeout=20,
        message=local_worker.log()[-3000:],
    )
    assert list(Task.objects.values_list("title", flat=True)) == ["Approve me"]
