"""View-only admin users read everything and decide nothing: approving and rejecting actions
(audit.decide_action) and redelivering webhooks (orchestrator.redeliver_webhook) are permissions
of their own, held by no one by default; a posted action the user lacks is a 403."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone

from audit.models import ActionAudit
from core import redis_keys
from orchestrator.models import WebhookDelivery
from tests import factories
from tests.actions.test_approvals import propose
from tests.helpers import queue_length

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
PENDING_LIST = "/admin/audit/actionaudit/?status__exact=pending_approval"
WEBHOOKS = "/admin/orchestrator/webhookdelivery/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def auditor() -> Client:
    """Staff holding every view permission of the admin, and nothing else."""
    return logged_in(factories.make_staff_user("vera", *factories.view_permissions()))


@pytest.fixture
def reviewer() -> Client:
    permissions = [*factories.view_permissions(), "audit.decide_action"]
    return logged_in(factories.make_staff_user("rita", *permissions))


@pytest.fixture
def operator() -> Client:
    permissions = [*factories.view_permissions(), "orchestrator.redeliver_webhook"]
    return logged_in(factories.make_staff_user("otto", *permissions))


@pytest.fixture
def pending(workspace) -> ActionAudit:
    workspace.approval_required = ["task.create"]
    workspace.save()
    return propose(workspace)


@pytest.fixture
def failed_delivery(workspace) -> WebhookDelivery:
    long_ago = timezone.now() - timedelta(days=3)
    return WebhookDelivery.objects.create(
        workspace=workspace,
        job=factories.make_job(workspace),
        event_type="job.succeeded",
        payload={"type": "job.succeeded"},
        url="https://hooks.example.com/in",
        status=WebhookDelivery.Status.FAILED,
        attempts=7,
        created_at=long_ago,
        retry_until=long_ago,
    )


def post_action(client: Client, url: str, action: str, rows):
    return client.post(url, {"action": action, "_selected_action": [row.pk for row in rows]})


def test_nobody_holds_the_decision_permissions_by_default(db):
    for codename in ("decide_action", "redeliver_webhook"):
        permission = Permission.objects.get(codename=codename)
        assert not permission.user_set.exists()
        assert not permission.group_set.exists()
    assert not Group.objects.exists()


def test_view_only_staff_read_the_pending_list_but_are_offered_no_decision(auditor, pending):
    response = auditor.get(PENDING_LIST)

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [pending.pk]
    page = response.content.decode()
    assert 'name="action"' not in page
    assert "approve_selected" not in page and "reject_selected" not in page
    assert auditor.get(f"/admin/audit/actionaudit/{pending.pk}/change/").status_code == 200


def test_reviewers_are_offered_approve_and_reject(reviewer, pending):
    page = reviewer.get(PENDING_LIST).content.decode()

    assert 'value="approve_selected"' in page and 'value="reject_selected"' in page


@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_view_only_staff_posting_a_decision_get_403_and_nothing_is_decided(
    auditor, pending, action
):
    response = post_action(auditor, PENDING_LIST, action, [pending])

    assert response.status_code == 403
    assert response.json()["error"]["status"] == 403
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (Status.PENDING_APPROVAL, "")
    assert queue_length() == 0  # nothing published to run


def test_a_decision_posted_without_the_pending_filter_is_403_too(auditor, pending):
    response = post_action(auditor, "/admin/audit/actionaudit/", "approve_selected", [pending])

    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == Status.PENDING_APPROVAL


def test_reviewers_approve_and_the_action_is_published(reviewer, pending):
    response = post_action(reviewer, PENDING_LIST, "approve_selected", [pending])

    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (Status.EXECUTING, "admin:rita")
    assert queue_length() == 1


def test_reviewers_reject(reviewer, pending):
    assert post_action(reviewer, PENDING_LIST, "reject_selected", [pending]).status_code == 302

    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (Status.REJECTED, "admin:rita")


def test_view_only_staff_cannot_delete_audit_rows_in_bulk(auditor, pending):
    response = post_action(auditor, PENDING_LIST, "delete_selected", [pending])

    assert response.status_code == 403
    assert ActionAudit.objects.filter(pk=pending.pk).exists()


def test_view_only_staff_see_webhooks_but_are_not_offered_redelivery(auditor, failed_delivery):
    response = auditor.get(WEBHOOKS)

    assert response.status_code == 200
    assert [d.pk for d in response.context["cl"].result_list] == [failed_delivery.pk]
    assert 'name="action"' not in response.content.decode()


@pytest.mark.parametrize("who", ["auditor", "reviewer"])
def test_staff_without_the_permission_posting_redeliver_get_403_and_nothing_is_sent(
    request, failed_delivery, who
):
    client = request.getfixturevalue(who)

    response = post_action(client, WEBHOOKS, "redeliver", [failed_delivery])

    assert response.status_code == 403
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == WebhookDelivery.Status.FAILED
    assert failed_delivery.retry_until < timezone.now()
    assert queue_length(redis_keys.WEBHOOK_QUEUE) == 0


def test_operators_redeliver_webhooks(operator, failed_delivery):
    assert 'value="redeliver"' in operator.get(WEBHOOKS).content.decode()

    response = post_action(operator, WEBHOOKS, "redeliver", [failed_delivery])

    assert response.status_code == 302
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == WebhookDelivery.Status.PENDING
    assert failed_delivery.retry_until > timezone.now()
    assert queue_length(redis_keys.WEBHOOK_QUEUE) == 1


def test_operators_cannot_decide_actions(operator, pending):
    assert post_action(operator, PENDING_LIST, "approve_selected", [pending]).status_code == 403

    pending.refresh_from_db()
    assert pending.status == Status.PENDING_APPROVAL
