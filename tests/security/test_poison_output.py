"""Hostile model output never crashes a worker or wedges a job: whatever a model writes as a
tool call, the action ends with an outcome and reason, the job ends, and nothing runs that the
policy refused. Each test drives a real worker through the model simulator's RAW directive."""

import json

import pytest

from actions.models import Task
from audit.models import ActionAudit
from orchestrator.job_queue import publish_jobs
from orchestrator.models import Job, Workspace
from tests.actions.test_actions_e2e import explain, submit_prompt
from tests.factories import make_job
from tests.helpers import raw_call, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def run_raw(api_client, tool: str, arguments: str) -> tuple[Job, ActionAudit]:
    """Have the model call `tool` with `arguments` verbatim; return the ended job and its row."""
    prompt = raw_call(tool, arguments)
    if len(prompt) < 200_000:
        job_id = submit_prompt(api_client, prompt)
    else:
        # Beyond what the API takes in a body, yet within what a model may write in a reply.
        job = make_job(Workspace.objects.get(), messages=[{"role": "user", "content": prompt}])
        publish_jobs([job.id])
        job_id = job.id
    job = wait_for_job(job_id)
    return job, ActionAudit.objects.get(job_id=job.id)


def errors_of(row: ActionAudit) -> str:
    return " ".join(row.result.get("errors", []))


@pytest.mark.parametrize(
    ("arguments", "field", "why"),
    [
        # The JSON escape decodes to NUL, which PostgreSQL's jsonb cannot store.
        ('{"title": "Buy\\u0000milk"}', "title", "NUL"),
        ('{"title": "Buy milk", "description": "a\\u0000"}', "description", "NUL"),
        ('{"title": "Buy milk", "x\\u0000": 1}', "(root)", "NUL"),
        # A lone surrogate cannot be encoded as UTF-8 at all.
        ('{"title": "Buy \\ud800 milk"}', "title", "surrogate"),
        ('{"title": "Buy milk", "description": ' + nested(600) + "}", "description", "deep"),
        ('{"title": "Buy milk", "description": ' + nested(5000) + "}", "(root)", "deep"),
        ('{"title": "Buy milk", "priority": 1e999}', "(root)", "finite"),
        ('{"title": "Buy milk", "priority": NaN}', "(root)", "finite"),
        ('{"title": "' + "x" * 600_000 + '"}', "(root)", "long"),
    ],
    ids=[
        "nul-in-value",
        "nul-in-other-field",
        "nul-in-key",
        "lone-surrogate",
        "nested-600",
        "nested-5000",
        "infinite-number",
        "nan",
        "oversized",
    ],
)
def test_poison_task_arguments_are_rejected_and_the_job_ends(
    api_client, worker, arguments, field, why
):
    job, row = run_raw(api_client, "task_create", arguments)

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert (row.status, row.reason) == (Status.REJECTED, "invalid_arguments")
    assert why in errors_of(row) and errors_of(row).startswith(field), row.result
    assert row.finished_at is not None
    assert not Task.objects.exists()
    # The model is told, so its final answer can say the action did not happen.
    assert "invalid_arguments" in job.output_text
    assert "Traceback" not in worker.log()


def test_literal_nul_in_the_models_reply_is_stored_escaped_and_refused(api_client, worker):
    # The model's JSON carries a raw NUL character inside the arguments text, and another in
    # its tool call id: neither PostgreSQL text nor jsonb can hold it.
    job, row = run_raw(api_client, "task_create", '{"title": "Buy\x00milk"}')

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert (row.status, row.reason) == (Status.REJECTED, "invalid_arguments")
    assert "NUL" in errors_of(row)
    stored = job.tool_calls[0]["arguments"]
    assert stored == '{"title": "Buy\\u0000milk"}'  # escaped, so what was written is kept
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("tool", "arguments", "status", "reason"),
    [
        ("shell_exec", '{"cmd": "rm -rf /"}', Status.DENIED, "unknown_action"),
        ("task_create", "not json at all", Status.REJECTED, "invalid_arguments"),
        ("task_create", '["Buy milk"]', Status.REJECTED, "invalid_arguments"),
        (
            "task_create",
            '{"title": "Buy milk"} {"title": "again"}',
            Status.REJECTED,
            "invalid_arguments",
        ),
        ("x" * 5000, "{}", Status.DENIED, "unknown_action"),
    ],
    ids=["tool-not-offered", "not-json", "not-an-object", "two-objects", "huge-tool-name"],
)
def test_calls_no_action_can_run_are_recorded_and_the_job_ends(
    api_client, worker, tool, arguments, status, reason
):
    job, row = run_raw(api_client, tool, arguments)

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert (row.status, row.reason) == (status, reason)
    assert len(row.action) <= 64
    assert not Task.objects.exists()


def test_a_valid_call_beside_poison_ones_still_runs_once(api_client, worker):
    prompt = "\n".join(
        [
            raw_call("task_create", '{"title": "a\\u0000"}'),
            raw_call("task_create", json.dumps({"title": "Buy milk"})),
            raw_call("task_create", nested(3000)),
        ]
    )
    job = wait_for_job(submit_prompt(api_client, prompt))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    rows = ActionAudit.objects.filter(job_id=job.id).order_by("call_key")
    assert [(r.call_key, r.status) for r in rows] == [
        ("1.0", Status.REJECTED),
        ("1.1", Status.EXECUTED),
        ("1.2", Status.REJECTED),
    ]
    assert list(Task.objects.values_list("title", flat=True)) == ["Buy milk"]
