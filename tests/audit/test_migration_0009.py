"""Migration 0009 keeps what existing rows say: a pending row's reason becomes its hold, a decided
row gets its decision, and a hold reason that an old decision overwrote is marked, not guessed."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("audit", "0008_decide_action_permission")]
AFTER = [("audit", "0009_hold_reason_and_decision")]
HASH = "a" * 64


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_schema():
    apps = migrate(BEFORE)
    yield apps
    # Back to the whole project's latest state, whatever the test did.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_rows_keep_their_reasons_and_gain_their_decisions(old_schema):
    # Only the audit app went back: the jobs tables are today's.
    job = factories.make_job(factories.make_workspace())
    audit = old_schema.get_model("audit", "ActionAudit").objects
    now = timezone.now()
    mail = {"to": ["A@Acme.com"], "cc": ["b@Other.example"], "subject": "Hi", "body": "x"}

    def row(key: str, status: str, reason: str = "", result=None, **fields):
        return audit.create(
            workspace_id=job.workspace_id,
            job_id=job.pk,
            call_key=key,
            action="gmail.send",
            arguments=mail,
            status=status,
            reason=reason,
            result=result or {},
            arguments_hash=HASH,
            **fields,
        ).pk

    outside = {"details": ["not in an allowed domain: b@Other.example"]}
    ids = {
        "pending": row("1", "pending_approval", "recipient_outside_allowed_domains", outside),
        "approved_running": row(
            "2", "executing", "approval_required", decided_by="admin:ann", decided_at=now
        ),
        "approved_sent": row(
            "3", "executed", "", {"provider_message_id": "m1"}, decided_by="k", decided_at=now
        ),
        "rejected": row(
            "4", "rejected", "rejected_by_reviewer", outside, decided_by="k", decided_at=now
        ),
        "expired": row("5", "expired", "approval_expired"),
        "denied": row("6", "denied", "action_not_allowed"),
    }

    new = migrate(AFTER).get_model("audit", "ActionAudit").objects
    fields = ["hold_reason", "hold_details", "decision", "approved_arguments_hash", "reason"]
    got = {name: new.values(*fields, "result").get(pk=pk) for name, pk in ids.items()}

    assert got["pending"] == {
        "hold_reason": "recipient_outside_allowed_domains",
        "hold_details": outside["details"],
        "decision": "",
        "approved_arguments_hash": "",
        "reason": "recipient_outside_allowed_domains",
        "result": {},  # the details moved to the hold: a result is an outcome
    }
    assert got["approved_running"]["hold_reason"] == "approval_required"
    assert got["approved_running"]["decision"] == "approve"
    assert got["approved_running"]["approved_arguments_hash"] == HASH
    assert got["approved_sent"]["hold_reason"] == "not_recorded"
    assert got["approved_sent"]["result"] == {"provider_message_id": "m1"}
    assert (got["rejected"]["decision"], got["rejected"]["hold_details"]) == (
        "reject",
        outside["details"],
    )
    assert got["rejected"]["approved_arguments_hash"] == ""
    assert (got["expired"]["hold_reason"], got["expired"]["decision"]) == ("not_recorded", "")
    assert (got["denied"]["hold_reason"], got["denied"]["decision"]) == ("", "")
    # Recipients are computed from the arguments, existing rows included.
    computed = new.values("recipients", "recipient_domains").get(pk=ids["denied"])
    assert computed == {
        "recipients": ["a@acme.com", "b@other.example"],
        "recipient_domains": ["acme.com", "other.example"],
    }
