"""The approvals review queue in the admin: counted on the index and on the workspace's page,
listed as messages, read as one, and decided with one POST through the API's own functions and
permission, the arguments hash bound; view-only auditors read it and decide nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import ActionAudit
from tests import factories
from tests.actions.test_approvals import propose
from tests.helpers import queue_length

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
QUEUE = "/admin/audit/pendingapproval/"
MAIL = {
    "to": ["ann@acme.com"],
    "cc": ["Eve@Elsewhere.example"],
    "subject": "Invoice <b>42</b>",
    "body": "Dear Ann,\nplease pay.\n<script>alert(1)</script>\nRegards",
}


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def reviewer() -> Client:
    permissions = [*factories.view_permissions(), "audit.decide_action"]
    return logged_in(factories.make_staff_user("rita", *permissions))


@pytest.fixture
def auditor() -> Client:
    return logged_in(factories.make_staff_user("vera", *factories.view_permissions()))


@pytest.fixture
def held(workspace) -> ActionAudit:
    workspace.approval_required = ["gmail.send", "task.create"]
    workspace.save()
    return propose(workspace, arguments=MAIL, action="gmail_send")


def review_url(row: ActionAudit) -> str:
    return f"{QUEUE}{row.pk}/change/"


def test_the_index_and_the_workspace_page_count_what_waits(reviewer, held, workspace):
    propose(workspace, arguments={"title": "Second"})

    index = reviewer.get("/admin/").content.decode()
    assert "Pending approvals (2)" in index
    page = reviewer.get(f"/admin/orchestrator/workspace/{workspace.pk}/change/").content.decode()
    assert (
        f'href="{QUEUE}?workspace__id__exact={workspace.pk}" id="workspace-pending">2 waiting'
        in (page)
    )


def test_the_queue_lists_pending_actions_as_messages(reviewer, held, workspace):
    executed = factories.make_audit(factories.make_job(workspace))  # not waiting: not listed

    response = reviewer.get(QUEUE)

    assert [row.pk for row in response.context["cl"].result_list] == [held.pk]
    page = response.content.decode()
    assert executed.pk not in {row.pk for row in response.context["cl"].result_list}
    for shown in ("ann@acme.com, eve@elsewhere.example", "Invoice &lt;b&gt;42&lt;/b&gt;"):
        assert shown in page
    assert "Dear Ann,\nplease pay.\n&lt;script&gt;alert(1)&lt;/script&gt; …" in page
    assert "approval_required" in page and "in 23h 59m" in page
    assert "<script>alert(1)" not in page


def test_the_review_page_renders_the_message_escaped_with_its_line_breaks(reviewer, held):
    page = reviewer.get(review_url(held)).content.decode()

    assert '<div class="message-body">Dear Ann,\nplease pay.\n&lt;script&gt;' in page
    assert "<tr><th>Cc</th><td>Eve@Elsewhere.example</td></tr>" in page
    assert "<tr><th>Subject</th><td>Invoice &lt;b&gt;42&lt;/b&gt;</td></tr>" in page
    assert f'name="arguments_hash" value="{held.arguments_hash}"' in page
    assert 'value="approve"' in page and 'value="reject"' in page


def test_one_click_approves_and_the_trail_keeps_the_hold(reviewer, held):
    response = reviewer.post(
        review_url(held), {"decision": "approve", "arguments_hash": held.arguments_hash}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/admin/audit/actionaudit/{held.pk}/change/"
    row = ActionAudit.objects.get(pk=held.pk)
    assert (row.status, row.hold_reason) == (Status.EXECUTING, "approval_required")
    assert (row.decision, row.decided_by) == ("approve", "admin:rita")
    assert queue_length() == 1  # published for a worker, once
    trail = reviewer.get(response["Location"]).content.decode()
    assert "approval_required" in trail and "admin:rita" in trail


def test_an_approval_of_other_arguments_is_refused(reviewer, held):
    response = reviewer.post(review_url(held), {"decision": "approve", "arguments_hash": "0" * 64})

    assert response.status_code == 302 and response["Location"] == review_url(held)
    assert ActionAudit.objects.get(pk=held.pk).status == Status.PENDING_APPROVAL
    assert queue_length() == 0
    assert "does not match" in reviewer.get(review_url(held)).content.decode()


def test_reject_from_the_review_page(reviewer, held):
    reviewer.post(review_url(held), {"decision": "reject"})

    row = ActionAudit.objects.get(pk=held.pk)
    assert (row.status, row.reason, row.hold_reason) == (
        Status.REJECTED,
        "rejected_by_reviewer",
        "approval_required",
    )
    assert (row.decision, row.decided_by) == ("reject", "admin:rita")
    assert queue_length() == 0


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_view_only_auditors_see_no_buttons_and_their_post_is_403(auditor, held, decision):
    page = auditor.get(review_url(held)).content.decode()
    assert auditor.get(QUEUE).status_code == 200
    assert 'value="approve"' not in page and 'value="reject"' not in page
    assert "needs the reviewer role" in page

    response = auditor.post(
        review_url(held), {"decision": decision, "arguments_hash": held.arguments_hash}
    )

    assert response.status_code == 403
    row = ActionAudit.objects.get(pk=held.pk)
    assert (row.status, row.decision) == (Status.PENDING_APPROVAL, "")
    assert queue_length() == 0


def test_a_decision_needs_the_csrf_token(held):
    user = factories.make_staff_user("rex", *factories.view_permissions(), "audit.decide_action")
    strict = logged_in(user, enforce_csrf_checks=True)

    response = strict.post(
        review_url(held), {"decision": "approve", "arguments_hash": held.arguments_hash}
    )

    assert response.status_code == 403
    assert ActionAudit.objects.get(pk=held.pk).status == Status.PENDING_APPROVAL


def test_a_decided_action_leaves_the_queue_for_the_trail(reviewer, held):
    reviewer.post(review_url(held), {"decision": "reject"})

    assert reviewer.get(QUEUE).context["cl"].result_list.count() == 0
    again = reviewer.get(review_url(held))
    assert again.status_code == 302
    assert again["Location"] == f"/admin/audit/actionaudit/{held.pk}/change/"


def test_staff_without_view_permission_cannot_open_the_queue(held):
    nobody = logged_in(get_user_model().objects.create_user("x", password="pw-x-1", is_staff=True))

    assert nobody.get(QUEUE).status_code == 403
    assert nobody.get(review_url(held)).status_code == 403
    assert "Pending approvals" not in nobody.get("/admin/").content.decode()
