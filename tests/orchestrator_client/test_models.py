"""The typed results read exactly what the server's serializers write, and a field a newer server
adds never breaks them."""

import json
from datetime import UTC

import pytest

from audit.models import ActionAudit
from orchestrator.api.actions import ActionReviewSerializer
from orchestrator.api.serializers import JobPageSerializer, JobSerializer
from orchestrator.job_queries import list_jobs
from orchestrator.models import Job as JobRow
from orchestrator_client import Action, Job, UnexpectedResponseError, WebhookEvent
from orchestrator_client.models import Page
from tests import factories

pytestmark = pytest.mark.django_db


def wire(data) -> dict:
    """As the client receives it: JSON text, parsed."""
    return json.loads(json.dumps(data))


@pytest.fixture
def finished_job(workspace):
    return factories.make_job(
        workspace,
        status=JobRow.Status.FAILED,
        error_code="model_error",
        error_message="The model refused.",
        metadata={"ticket": 7},
    )


def test_a_job_reads_every_field_the_server_writes(finished_job):
    audit = factories.make_audit(finished_job, action="task.create", arguments={"title": "x"})
    data = wire(JobSerializer(finished_job, context={"actions": [audit]}).data)

    job = Job.from_json(data)

    assert (job.id, job.status, job.is_final) == (str(finished_job.id), "failed", True)
    assert (job.error.code, job.error.message) == ("model_error", "The model refused.")
    assert job.created_at == finished_job.created_at and job.created_at.tzinfo == UTC
    assert job.metadata == {"ticket": 7} and job.started_at is None
    (action,) = job.actions
    assert (action.id, action.action, action.status) == (audit.pk, "task.create", "executed")


def test_a_page_of_jobs_reads_the_listing(finished_job, workspace):
    data = wire(JobPageSerializer(list_jobs(workspace=workspace, limit=1)).data)

    page = Page.of_jobs(data)

    assert [summary.id for summary in page] == [str(finished_job.id)]
    assert page.next_cursor is None and page.items[0].error.code == "model_error"


def test_an_action_reads_every_field_the_server_writes(finished_job):
    row = factories.make_audit(finished_job, status=ActionAudit.Status.PENDING_APPROVAL)
    data = wire(ActionReviewSerializer(row).data)

    action = Action.from_json(data)

    assert (action.id, action.job_id, action.status) == (row.pk, str(finished_job.id), row.status)
    assert action.arguments == row.arguments
    assert action.arguments_hash == data["arguments_hash"]
    # Every field the server sends is a field of the dataclass (raw aside).
    assert set(data) <= set(Action.__dataclass_fields__)


def test_fields_a_newer_server_adds_are_ignored_and_kept_in_raw(finished_job):
    data = wire(JobSerializer(finished_job, context={"actions": []}).data)
    data["priority"] = "high"
    data["error"]["retryable"] = False

    job = Job.from_json(data)

    assert job.raw["priority"] == "high"
    assert job == Job.from_json(wire(JobSerializer(finished_job, context={"actions": []}).data))


def test_fields_an_older_server_lacks_take_their_defaults(finished_job):
    row = factories.make_audit(finished_job)
    data = wire(ActionReviewSerializer(row).data)
    for newer in ("hold_reason", "hold_details", "decision", "approved_arguments_hash"):
        data.pop(newer, None)

    action = Action.from_json(data)

    assert (action.hold_reason, action.hold_details, action.decision) == ("", [], "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("status"), "has no 'status'"),
        (lambda d: d.update(attempts="2"), "'attempts' should be int, got str"),
        (lambda d: d.update(attempts=True), "'attempts' should be int, got bool"),
        (lambda d: d.update(created_at="yesterday"), "not an ISO 8601 time"),
        (lambda d: d.update(actions=[{"id": 1}]), "the job action has no"),
    ],
)
def test_a_body_of_the_wrong_shape_is_an_unexpected_response(finished_job, change, message):
    data = wire(JobSerializer(finished_job, context={"actions": []}).data)
    change(data)

    with pytest.raises(UnexpectedResponseError, match=message):
        Job.from_json(data)


def test_a_webhook_event_reads_the_payload_the_server_signs():
    event = WebhookEvent.from_json(
        {
            "type": "job.succeeded",
            "id": "d1",
            "job_id": "j1",
            "status": "succeeded",
            "created_at": "2026-01-02T03:04:05.678901+00:00",
            "attempt": 2,
        }
    )
    assert (event.type, event.job_id, event.created_at.microsecond) == (
        "job.succeeded",
        "j1",
        678901,
    )
