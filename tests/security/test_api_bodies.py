"""Hostile API bodies: every malformed or hostile JSON body is a 4xx in the one error format,
whatever DEBUG is, says why it was refused, and leaves nothing behind (no job row, no
idempotency key, no queued message)."""

import json

import pytest

from core import redis_keys
from core.exceptions import OrchestratorError
from orchestrator import services
from orchestrator.api.parsers import MAX_DEPTH
from orchestrator.models import Job
from orchestrator.rate_limits import release_reservation
from tests.factories import make_api_key
from tests.helpers import queue_length

pytestmark = pytest.mark.django_db(transaction=True)

CRID = "hostile-1"


def body(**fields) -> bytes:
    return json.dumps({"client_request_id": CRID, "prompt": "Hi", **fields}).encode()


def nested(depth: int, leaf: str = '"x"') -> str:
    """JSON text of `depth` nested objects around `leaf`."""
    return '{"a":' * depth + leaf + "}" * depth


def post_raw(client, data: bytes, path: str = "/ai/jobs"):
    return client.post(path, data=data, content_type="application/json")


def assert_refused(response, code: str, why: str, field: str | None = None) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (400, code)
    assert why in error["message"].lower(), error["message"]
    if field is not None:
        assert field in error["fields"], error["fields"]


def assert_nothing_left_behind(redis_db) -> None:
    """No job row, no idempotency key, no message (each test starts with none)."""
    assert not Job.objects.exists()
    assert redis_db.keys("ai:idempotency:*") == []
    assert queue_length() == 0


HOSTILE = [
    pytest.param(b"[" * 10_000 + b"]" * 10_000, "too deep", None, id="10000-nested-brackets"),
    pytest.param(nested(10_000).encode(), "too deep", None, id="10000-nested-objects"),
    pytest.param(
        body(metadata={}).replace(b"{}", nested(900).encode()),
        "too deep",
        "metadata",
        id="metadata-900-deep",
    ),
    pytest.param(
        body(metadata={"a": 1}).replace(b"1}", b"1e999}"),
        "1e999 is out of range",
        None,
        id="metadata-1e999",
    ),
    pytest.param(
        body(max_output_tokens=1).replace(b"1}", b"-1e400}"), "finite", None, id="minus-1e400"
    ),
    pytest.param(
        body(metadata={"a": 1}).replace(b"1}", b"1" + b"0" * 400 + b".5}"),
        "finite",
        None,
        id="400-digit-float",
    ),
    pytest.param(body(prompt="a\x00b"), "nul", "prompt", id="nul-in-prompt"),
    pytest.param(
        json.dumps(
            {"client_request_id": CRID, "messages": [{"role": "user", "content": "\x00"}]}
        ).encode(),
        "nul",
        "messages",
        id="nul-in-message-content",
    ),
    pytest.param(body(metadata={"k": ["ok", "\x00"]}), "nul", "metadata", id="nul-in-metadata"),
    pytest.param(body(metadata={"k\x00": 1}), "nul", "metadata", id="nul-in-metadata-key"),
    pytest.param(
        json.dumps({"client_request_id": "a\x00", "prompt": "Hi"}).encode(),
        "nul",
        "client_request_id",
        id="nul-in-client-request-id",
    ),
    pytest.param(body(**{"x\x00": 1}), "nul", None, id="nul-in-top-level-key"),
    # An unpaired surrogate cannot be encoded as UTF-8: PostgreSQL and our fingerprint refuse it.
    pytest.param(body(prompt="\ud800"), "surrogate", "prompt", id="lone-surrogate"),
    pytest.param(
        body(metadata={"k": "\udfff"}), "surrogate", "metadata", id="lone-surrogate-in-metadata"
    ),
]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(("data", "why", "field"), HOSTILE)
def test_hostile_body_is_a_400_saying_why_and_leaves_nothing_behind(
    api_client, redis_db, settings, debug, data, why, field
):
    settings.DEBUG = debug

    response = post_raw(api_client, data)

    assert_refused(response, "invalid_request", why, field)
    assert_nothing_left_behind(redis_db)


@pytest.mark.parametrize(
    "data", [b'{"metadata": {"a": NaN}}', b'{"a": Infinity}', b'{"a": -Infinity}']
)
def test_non_standard_number_literals_are_malformed_json(api_client, redis_db, data):
    response = post_raw(api_client, data)

    assert_refused(response, "malformed_json", "is not a json number")
    assert_nothing_left_behind(redis_db)


def test_a_json_body_in_another_charset_is_refused(api_client, redis_db):
    response = api_client.post(
        "/ai/jobs",
        data=body().decode().encode("utf-16"),
        content_type="application/json; charset=utf-16",
    )

    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert "utf-8" in response.json()["error"]["message"].lower()
    assert_nothing_left_behind(redis_db)


def test_a_body_at_the_depth_bound_is_accepted_and_one_level_deeper_is_refused(
    api_client, redis_db
):
    # The body is one level; metadata's objects are the others.
    at_bound = body(metadata={}).replace(b"{}", nested(MAX_DEPTH - 1).encode())
    too_deep = body(client_request_id="deeper", metadata={}).replace(
        b"{}", nested(MAX_DEPTH).encode()
    )

    accepted = post_raw(api_client, at_bound)
    refused = post_raw(api_client, too_deep)

    assert accepted.status_code == 202, accepted.content
    assert_refused(refused, "invalid_request", "too deep", "metadata")
    assert list(Job.objects.values_list("client_request_id", flat=True)) == [CRID]


def test_every_api_body_goes_through_the_same_parser(client_for, workspace, redis_db):
    approver = client_for(make_api_key(workspace, scopes=["actions:approve"]))

    response = post_raw(approver, b"[" * 10_000 + b"]" * 10_000, "/ai/actions/1/approve")

    assert_refused(response, "invalid_request", "too deep")


# --- A failure after the idempotency reservation ----------------------------------------------


def test_a_job_the_database_refuses_releases_its_reservation_and_is_a_400(workspace, redis_db):
    # The API's parser refuses non-finite numbers first; a direct caller of the service can
    # still pass one, and PostgreSQL's jsonb then refuses the insert.
    with pytest.raises(OrchestratorError) as refused:
        services.submit_job(
            workspace=workspace,
            client_request_id=CRID,
            messages=[{"role": "user", "content": "Hi"}],
            metadata={"a": float("inf")},
        )

    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    assert_nothing_left_behind(redis_db)
    # The same id is free again at once, not 24 hours later.
    submission = services.submit_job(
        workspace=workspace,
        client_request_id=CRID,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert not submission.replayed
    key = redis_keys.idempotency_key(workspace.id, CRID)
    assert redis_db.get(key) == str(submission.job.id)


def test_releasing_a_reservation_leaves_a_key_another_request_holds(workspace, redis_db):
    key = redis_keys.idempotency_key(workspace.id, CRID)
    redis_db.set(key, "the-other-requests-job", ex=60)

    release_reservation(workspace=workspace, client_request_id=CRID, job_id="my-job")

    assert redis_db.get(key) == "the-other-requests-job"
    release_reservation(
        workspace=workspace, client_request_id=CRID, job_id="the-other-requests-job"
    )
    assert redis_db.get(key) is None
