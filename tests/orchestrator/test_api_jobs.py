"""Specifies POST /ai/jobs and GET /ai/jobs/{id}: what an accepted job leaves behind, the one
error format for every bad input (which changes nothing), and reads scoped to the workspace."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core import redis_keys
from orchestrator.api.serializers import JobCreateSerializer, JobListQuerySerializer
from orchestrator.models import Job
from tests import factories
from tests.helpers import queue_length, submit

CRID = "req-1"
VALID_BODY = {"client_request_id": CRID, "prompt": "Summarise my week."}
DROP = object()  # marks a field to leave out of VALID_BODY
MAX_BODY = 256 * 1024
JSON = "application/json"


def json_bytes(**changes) -> bytes:
    """VALID_BODY with fields replaced (or left out with DROP), encoded as compact JSON."""
    body = {name: value for name, value in {**VALID_BODY, **changes}.items() if value is not DROP}
    return json.dumps(body, separators=(",", ":")).encode()


def sized_body(size: int) -> bytes:
    """A valid JSON body of exactly `size` bytes, padded in the prompt."""
    return json_bytes(prompt="x" * (size - len(json_bytes(prompt=""))))


def post_raw(client, data: bytes, content_type: str = JSON):
    # Raw bytes, so malformed and oversized bodies reach the server exactly as written.
    return client.post("/ai/jobs", data=data, content_type=content_type)


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """The response is the one error format: {"error": {status, code, message, fields}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"status", "code", "message", "fields"}
    assert error["status"] == status
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if field is not None:
        assert field in error["fields"], error["fields"]
    return error


def assert_nothing_left_behind(redis_db) -> None:
    assert Job.objects.count() == 0
    assert redis_db.keys("ai:idempotency:*") == []
    assert queue_length() == 0


@pytest.fixture
def tasks_only_client(db, client_for):
    """A client of a workspace that allows task.create only (local: no shared fixture for it)."""
    workspace = factories.make_workspace("ws-tasks-only", allowed_actions=["task.create"])
    return client_for(factories.make_api_key(workspace))


# --- Accepted submissions ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("input_fields", "stored_messages"),
    [
        pytest.param(
            {"prompt": "Summarise my week."},
            [{"role": "user", "content": "Summarise my week."}],
            id="prompt",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Summarise my week."},
                ]
            },
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Summarise my week."},
            ],
            id="messages",
        ),
    ],
)
def test_valid_submission_is_stored_reserved_and_queued_once(
    api_client, workspace, redis_db, input_fields, stored_messages
):
    metadata = {"ticket": 42, "source": {"app": "crm"}}
    response = submit(api_client, client_request_id=CRID, metadata=metadata, **input_fields)

    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == f"/ai/jobs/{body['id']}"
    assert body["client_request_id"] == CRID
    assert body["status"] == "queued"
    assert body["model"] == "gpt-4o-mini"
    assert body["max_output_tokens"] == 800
    assert body["allowed_actions"] == workspace.effective_allowed_actions
    assert body["metadata"] == metadata
    assert body["actions"] == []
    assert body["error"] is None

    job = Job.objects.get()
    assert str(job.id) == body["id"]
    assert job.workspace_id == workspace.id
    assert job.messages == stored_messages
    assert redis_db.get(redis_keys.idempotency_key(workspace.id, CRID)) == body["id"]
    assert queue_length() == 1


def test_requested_action_subset_model_and_token_limit_are_kept(api_client):
    response = submit(
        api_client,
        client_request_id=CRID,
        prompt="Plan my day.",
        actions=["task.create", "gmail.send"],
        model="gpt-4.1-mini",
        max_output_tokens=120,
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert sorted(body["allowed_actions"]) == ["gmail.send", "task.create"]
    assert body["model"] == "gpt-4.1-mini"
    assert body["max_output_tokens"] == 120
    assert body["metadata"] == {}


def test_allowed_actions_default_to_the_workspace_allow_list(tasks_only_client):
    response = submit(tasks_only_client, client_request_id=CRID, prompt="Plan my day.")

    assert response.status_code == 202, response.content
    assert response.json()["allowed_actions"] == ["task.create"]


def test_body_of_exactly_256_kib_is_accepted(api_client):
    data = sized_body(MAX_BODY)
    assert len(data) == MAX_BODY

    response = post_raw(api_client, data)

    assert response.status_code == 202, response.content


# --- Bad input: one error format, nothing changed -----------------------------------------------

CRID_FIELD = "client_request_id"


def bad(case_id, data, status, code, field=None, content_type=JSON):
    return pytest.param(data, content_type, status, code, field, id=case_id)


def invalid(case_id, field, **changes):
    """A well-formed JSON body with one invalid part: 400 invalid_request naming `field`."""
    return bad(case_id, json_bytes(**changes), 400, "invalid_request", field)


BAD_REQUESTS = [
    bad("malformed-json", b'{"client_request_id": "req-1",', 400, "malformed_json"),
    bad("json-nan", b'{"client_request_id": "req-1", "prompt": NaN}', 400, "malformed_json"),
    bad("not-utf8", b'{"client_request_id": "req-1", "prompt": "\xff"}', 400, "malformed_json"),
    bad("empty-body", b"", 400, "invalid_request", CRID_FIELD),
    bad("body-is-a-list", json.dumps([VALID_BODY]).encode(), 400, "invalid_request"),
    bad("body-is-a-string", b'"req-1"', 400, "invalid_request"),
    invalid("crid-missing", CRID_FIELD, client_request_id=DROP),
    invalid("crid-empty", CRID_FIELD, client_request_id=""),
    invalid("crid-129-chars", CRID_FIELD, client_request_id="r" * 129),
    invalid("crid-inner-space", CRID_FIELD, client_request_id="req 1"),
    # Trimmed, the id would silently become another idempotency key than the one sent.
    invalid("crid-trailing-space", CRID_FIELD, client_request_id="req-1 "),
    invalid("crid-slash", CRID_FIELD, client_request_id="req/1"),
    invalid("crid-unicode", CRID_FIELD, client_request_id="réq-1"),
    # Which field carries the "exactly one of" error is not part of the contract.
    invalid("prompt-and-messages", None, messages=[{"role": "user", "content": "Hi"}]),
    invalid("neither-prompt-nor-messages", None, prompt=DROP),
    invalid("messages-empty", "messages", prompt=DROP, messages=[]),
    invalid(
        "message-role-tool", "messages", prompt=DROP, messages=[{"role": "tool", "content": "4"}]
    ),
    invalid("message-without-content", "messages", prompt=DROP, messages=[{"role": "user"}]),
    invalid("messages-not-a-list", "messages", prompt=DROP, messages="Hi"),
    invalid("unknown-action", "actions", actions=["slack.post"]),
    invalid("max-output-tokens-0", "max_output_tokens", max_output_tokens=0),
    invalid("max-output-tokens-801", "max_output_tokens", max_output_tokens=801),
    invalid("metadata-a-list", "metadata", metadata=["ticket", 42]),
    invalid("metadata-a-string", "metadata", metadata="ticket 42"),
    invalid("unknown-field", "max_tokens", max_tokens=100),
    bad("body-300-kib", json_bytes(prompt="x" * (300 * 1024)), 413, "request_too_large"),
    bad("body-256-kib-plus-1", sized_body(MAX_BODY + 1), 413, "request_too_large"),
    bad(
        "text-plain",
        b"Summarise my week.",
        415,
        "unsupported_media_type",
        content_type="text/plain",
    ),
    bad(
        "form-encoded",
        b"client_request_id=req-1&prompt=Hi",
        415,
        "unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("data", "content_type", "status", "code", "field"), BAD_REQUESTS)
def test_bad_submission_gets_the_error_format_and_changes_nothing(
    api_client, redis_db, data, content_type, status, code, field
):
    response = post_raw(api_client, data, content_type)

    assert_error(response, status, code, field)
    assert_nothing_left_behind(redis_db)


def test_bodies_validated_at_once_on_many_threads_each_get_their_own_outcome():
    # Each request validates with its own serializer: no state leaks between concurrent bodies.
    bodies = [
        json.loads(json_bytes(**{"client_request_id": f"req-{n}", **changes}))
        for n, changes in enumerate(
            [{}, {"client_request_id": "req 1"}, {"prompt": DROP}, {"actions": ["slack.post"]}]
            * 100
        )
    ]

    def outcome(body: dict) -> tuple[bool, dict]:
        serializer = JobCreateSerializer(data=body)
        valid = serializer.is_valid()
        return valid, dict(serializer.validated_data) if valid else serializer.errors

    one_by_one = [outcome(body) for body in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        at_once = list(pool.map(outcome, bodies))

    assert at_once == one_by_one
    assert [valid for valid, _ in one_by_one] == [True, False, False, False] * 100
    assert one_by_one[0][1]["client_request_id"] == "req-0"


@pytest.mark.parametrize("serializer_class", [JobCreateSerializer, JobListQuerySerializer])
def test_each_serializer_has_its_own_fields_bound_to_it(serializer_class):
    # DRF's contract: a field reads the request and context through its own serializer.
    first = serializer_class(data={}, context={"request": "first"})
    second = serializer_class(data={}, context={"request": "second"})

    for name in first.fields:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert first.fields[name].context == {"request": "first"}
        assert second.fields[name].context == {"request": "second"}


@pytest.mark.django_db(transaction=True)
def test_action_outside_the_workspace_allow_list_is_refused_and_changes_nothing(
    tasks_only_client, redis_db
):
    response = submit(
        tasks_only_client, client_request_id=CRID, prompt="Mail Bob.", actions=["gmail.send"]
    )

    error = assert_error(response, 400, "invalid_request", "actions")
    assert "gmail.send" in json.dumps(error["fields"]["actions"])
    assert_nothing_left_behind(redis_db)


# --- Reading a job ------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def test_own_job_is_shown_with_its_outcome_and_actions_in_plan_order(api_client, workspace):
    started = timezone.now() - timedelta(seconds=5)
    job = factories.make_job(
        workspace,
        status=Job.Status.SUCCEEDED,
        output_text="Done: one task created, one mail sent.",
        tool_calls=[
            {"call_key": "1.0", "tool": "task.create", "arguments": '{"title": "Call Bob"}'},
            {"call_key": "1.1", "tool": "gmail.send", "arguments": '{"to": "bob@example.com"}'},
            {"call_key": "2.0", "tool": "outlook.send", "arguments": "{}"},
        ],
        usage={"prompt_tokens": 30, "completion_tokens": 12, "model_calls": 3},
        attempts=1,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        metadata={"ticket": 7},
    )
    plan = [
        ("1.0", "task.create", "executed", "", {"task_id": 1}),
        ("1.1", "gmail.send", "denied", "not_allowed", {}),
        ("2.0", "outlook.send", "rejected", "invalid_arguments", {"errors": ["to: required"]}),
    ]
    for call_key, action, status, reason, result in plan:
        factories.make_audit(
            job,
            call_key=call_key,
            action=action,
            arguments={},
            status=status,
            reason=reason,
            result=result,
        )

    response = api_client.get(f"/ai/jobs/{job.id}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(job.id)
    assert body["client_request_id"] == job.client_request_id
    assert body["status"] == "succeeded"
    assert body["output_text"] == job.output_text
    assert body["tool_calls"] == job.tool_calls
    assert body["usage"] == job.usage
    assert body["metadata"] == {"ticket": 7}
    assert body["error"] is None
    assert parse_time(body["created_at"]) == job.created_at
    assert parse_time(body["started_at"]) == job.started_at
    assert parse_time(body["finished_at"]) == job.finished_at
    listed = [
        (entry["call_key"], entry["action"], entry["status"], entry["reason"], entry["result"])
        for entry in body["actions"]
    ]
    assert listed == plan


def test_a_job_shows_exactly_the_fields_its_schema_declares(api_client, client, workspace):
    job = factories.make_job(workspace)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    body = api_client.get(f"/ai/jobs/{job.id}").json()

    declared = schema["components"]["schemas"]["Job"]
    assert set(body) == set(declared["properties"]) == set(declared["required"])


def test_queued_job_has_no_timestamps_of_running_yet(api_client, workspace):
    job = factories.make_job(workspace)

    body = api_client.get(f"/ai/jobs/{job.id}").json()

    assert body["status"] == "queued"
    assert body["started_at"] is None
    assert body["finished_at"] is None
    assert body["actions"] == []


def test_failed_job_error_is_its_code_and_message(api_client, workspace):
    job = factories.make_job(
        workspace,
        status=Job.Status.FAILED,
        error_code="model_error",
        error_message="the model refused the request (400)",
        finished_at=timezone.now(),
    )

    body = api_client.get(f"/ai/jobs/{job.id}").json()

    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "model_error",
        "message": "the model refused the request (400)",
    }


def test_job_of_another_workspace_unknown_or_malformed_id_is_the_same_404(
    api_client, other_workspace
):
    foreign_job = factories.make_job(other_workspace)
    paths = [
        f"/ai/jobs/{foreign_job.id}",
        f"/ai/jobs/{uuid.uuid4()}",
        "/ai/jobs/not-a-uuid",
        "/ai/jobs/123",
    ]

    responses = [api_client.get(path) for path in paths]

    for response in responses:
        assert_error(response, 404, "not_found")
    assert len({response.content for response in responses}) == 1


# --- Routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        pytest.param("get", "/ai/nope", 404, "not_found", id="unknown-url"),
        pytest.param("post", "/ai/nope", 404, "not_found", id="unknown-url-post"),
        pytest.param("delete", "/ai/jobs", 405, "method_not_allowed", id="delete-collection"),
        pytest.param(
            "post", f"/ai/jobs/{uuid.uuid4()}", 405, "method_not_allowed", id="post-detail"
        ),
    ],
)
def test_unknown_url_and_wrong_method_answer_in_the_error_format(
    api_client, method, path, status, code
):
    response = getattr(api_client, method)(path)

    assert_error(response, status, code)


@pytest.mark.django_db
def test_a_job_remembers_the_key_that_submitted_it(client_for, workspace):
    first, second = factories.make_api_key(workspace), factories.make_api_key(workspace)

    submit(client_for(first), **VALID_BODY)
    submit(client_for(second), **{**VALID_BODY, "client_request_id": "req-2"})

    prefixes = dict(Job.objects.values_list("client_request_id", "api_key__prefix"))
    assert prefixes == {CRID: first.split("_")[1], "req-2": second.split("_")[1]}
