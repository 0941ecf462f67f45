"""POST /ai/jobs is idempotent per (workspace, client_request_id), even under concurrency."""

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import redis_keys
from orchestrator.models import Job
from tests import factories
from tests.helpers import queue_length, submit
from tests.processes import start_web

# Transactional: on_commit must really fire, or "one message in the queue" would prove nothing.
pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "client_request_id": "req-1",
    "prompt": "Summarise the quarterly report",
    "actions": ["task.create"],
    "max_output_tokens": 100,
}
CONCURRENT_REQUESTS = 50


def idempotency_key(workspace, body=BODY) -> str:
    return redis_keys.idempotency_key(workspace.id, body["client_request_id"])


def stored_job(job_id) -> dict:
    """Every column of the job row, to show it did not change."""
    return Job.objects.filter(pk=job_id).values().get()


def test_first_submission_is_202_and_leaves_a_row_a_redis_key_and_a_message(
    api_client, workspace, redis_db
):
    response = submit(api_client, **BODY)

    assert response.status_code == 202, response.content
    assert "Idempotent-Replayed" not in response.headers
    job = Job.objects.get()
    assert str(job.id) == response.json()["id"]
    assert redis_db.get(idempotency_key(workspace)) == str(job.id)
    assert queue_length() == 1


def test_replay_of_the_same_body_returns_the_original_job_without_a_new_message(api_client):
    first = submit(api_client, **BODY)

    replay = submit(api_client, **BODY)

    assert replay.status_code == 200, replay.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1
    assert queue_length() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Something else entirely"},
        {"actions": ["gmail.send"]},
        {"max_output_tokens": 50},
    ],
    ids=["prompt", "actions", "max_output_tokens"],
)
@pytest.mark.parametrize("redis_key", ["kept", "expired"])
def test_same_client_request_id_with_a_different_body_is_422_and_changes_nothing(
    api_client, workspace, redis_db, change, redis_key
):
    original_id = submit(api_client, **BODY).json()["id"]
    original = stored_job(original_id)
    if redis_key == "expired":
        # Without the fast path the constraint must refuse the reuse just the same.
        redis_db.delete(idempotency_key(workspace))

    response = submit(api_client, **{**BODY, **change})

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 1
    assert stored_job(original_id) == original
    assert queue_length() == 1


def test_same_client_request_id_in_two_workspaces_gives_two_jobs(
    api_client, client_for, workspace, other_workspace, redis_db
):
    other_client = client_for(factories.make_api_key(other_workspace))

    ours = submit(api_client, **BODY)
    theirs = submit(other_client, **BODY)

    assert (ours.status_code, theirs.status_code) == (202, 202)
    assert ours.json()["id"] != theirs.json()["id"]
    assert Job.objects.get(pk=ours.json()["id"]).workspace_id == workspace.id
    assert Job.objects.get(pk=theirs.json()["id"]).workspace_id == other_workspace.id
    assert redis_db.get(idempotency_key(workspace)) == ours.json()["id"]
    assert redis_db.get(idempotency_key(other_workspace)) == theirs.json()["id"]
    assert queue_length() == 2


def test_redis_key_holds_the_job_id_for_at_most_a_day(api_client, workspace, redis_db):
    job_id = submit(api_client, **BODY).json()["id"]

    key = idempotency_key(workspace)
    assert redis_db.get(key) == job_id
    assert 0 < redis_db.ttl(key) <= 86400


def test_replay_after_the_redis_key_expired_is_recognised_by_the_database(
    api_client, workspace, redis_db
):
    first = submit(api_client, **BODY)
    assert redis_db.delete(idempotency_key(workspace)) == 1

    replay = submit(api_client, **BODY)

    assert replay.status_code == 200, replay.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1
    assert queue_length() == 1


def test_redis_key_without_a_job_row_does_not_block_the_submission(api_client, workspace, redis_db):
    # A first request that took the key and died before committing its row.
    redis_db.set(idempotency_key(workspace), str(uuid.uuid4()), ex=86400)

    response = submit(api_client, **BODY)

    assert response.status_code == 202, response.content
    assert Job.objects.get().id == uuid.UUID(response.json()["id"])
    assert queue_length() == 1


# --- Concurrent submissions against the real web server ------------------------------------------


@pytest.fixture
def web(transactional_db):
    """gunicorn (2 workers) on the test database and Redis; stopped before the database flush."""
    process, base_url = start_web()
    yield base_url
    process.stop()


def post_job(base_url: str, api_key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/ai/jobs",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")}


def test_concurrent_identical_submissions_create_one_job_and_one_message(web, api_key):
    barrier = threading.Barrier(CONCURRENT_REQUESTS)

    def post_together(_):
        barrier.wait(timeout=30)
        return post_job(web, api_key, BODY)

    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        results = list(pool.map(post_together, range(CONCURRENT_REQUESTS)))

    server_errors = [(status, body) for status, body in results if status >= 500]
    assert not server_errors
    assert Counter(status for status, _ in results) == {202: 1, 200: CONCURRENT_REQUESTS - 1}
    assert len({body["id"] for _, body in results}) == 1
    assert Job.objects.count() == 1
    assert queue_length() == 1
