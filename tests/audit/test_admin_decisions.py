"""Specification of decisions taken from the Django admin: approve and reject pending actions,
and workspace policy edits that leave an audit row."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import ActionAudit
from orchestrator.models import WorkspacePolicyChange
from tests.actions.test_approvals import propose
from tests.helpers import queue_length

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("ann", "ann@example.com", "pw-for-tests")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pending_pair(workspace):
    workspace.approval_required = ["task.create"]
    workspace.save()
    return propose(workspace), propose(workspace, arguments={"title": "Second"})


def run_admin_action(client: Client, action: str, rows) -> None:
    response = client.post(
        "/admin/audit/actionaudit/?status__exact=pending_approval",
        {"action": action, "_selected_action": [row.pk for row in rows]},
    )
    assert response.status_code == 302, response.content[:500]


def test_admin_approves_pending_actions_and_publishes_one_message_each(admin_client, pending_pair):
    run_admin_action(admin_client, "approve_selected", pending_pair)

    rows = ActionAudit.objects.filter(pk__in=[r.pk for r in pending_pair])
    assert {(r.status, r.decided_by) for r in rows} == {(Status.EXECUTING, "admin:ann")}
    assert queue_length() == 2
    # Approving again decides nothing and publishes nothing more.
    run_admin_action(admin_client, "approve_selected", pending_pair)
    assert queue_length() == 2


def test_admin_rejects_pending_actions(admin_client, pending_pair):
    run_admin_action(admin_client, "reject_selected", pending_pair[:1])

    first, second = (ActionAudit.objects.get(pk=r.pk) for r in pending_pair)
    assert (first.status, first.reason, first.decided_by) == (
        Status.REJECTED,
        "rejected_by_reviewer",
        "admin:ann",
    )
    assert (first.hold_reason, first.decision) == ("approval_required", "reject")
    assert second.status == Status.PENDING_APPROVAL  # positive control: only the selection
    assert queue_length() == 0


def edit_workspace(client: Client, workspace, **fields):
    return client.post(
        f"/admin/orchestrator/workspace/{workspace.pk}/change/",
        {
            "id": workspace.pk,
            "name": workspace.name,
            "allowed_actions": "",
            "approval_required": "",
            "recipient_domains": "",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            **fields,
        },
    )


def test_admin_edit_of_a_workspace_policy_is_audited(admin_client, workspace):
    response = edit_workspace(
        admin_client, workspace, allowed_actions="task.create", recipient_domains="Acme.COM."
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    change = WorkspacePolicyChange.objects.get()
    assert change.changed_by == "admin:ann"
    assert change.changes == {
        "allowed_actions": {"old": None, "new": ["task.create"]},
        "recipient_domains": {"old": [], "new": ["acme.com"]},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipient_domains", "*.acme.com"),
        ("approval_required", "sms.send"),
        ("allowed_actions", "sms.send"),
    ],
)
def test_admin_refuses_an_invalid_policy_and_changes_nothing(admin_client, workspace, field, value):
    response = edit_workspace(admin_client, workspace, **{field: value})

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    workspace.refresh_from_db()
    assert (workspace.approval_required, workspace.recipient_domains) == ([], [])
    assert not WorkspacePolicyChange.objects.exists()
