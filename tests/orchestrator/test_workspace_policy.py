"""Specification of a workspace's approval policy from the command line, and of its audit trail."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestrator.models import Workspace, WorkspacePolicyChange
from tests.factories import make_workspace


def configure(*args: str) -> str:
    stderr = io.StringIO()
    call_command("configure_workspace", "ws-123", *args, stdout=io.StringIO(), stderr=stderr)
    return stderr.getvalue()


@pytest.fixture
def ws_123(db) -> Workspace:
    return make_workspace("ws-123", name="Acme")


def test_approval_required_and_recipient_domains_are_set_and_audited(ws_123):
    output = configure(
        "--approval-required", "gmail.send,outlook.send", "--recipient-domains", "Acme.com.,b.io"
    )

    ws_123.refresh_from_db()
    assert ws_123.approval_required == ["gmail.send", "outlook.send"]
    assert ws_123.recipient_domains == ["acme.com", "b.io"]  # normalized
    assert "recipient domains ['acme.com', 'b.io']" in output
    change = WorkspacePolicyChange.objects.get()
    assert change.changed_by == "command:configure_workspace"
    assert change.changes == {
        "approval_required": {"old": [], "new": ["gmail.send", "outlook.send"]},
        "recipient_domains": {"old": [], "new": ["acme.com", "b.io"]},
    }


def test_an_empty_value_clears_a_list_and_an_absent_option_keeps_it(ws_123):
    ws_123.approval_required = ["gmail.send"]
    ws_123.recipient_domains = ["acme.com"]
    ws_123.save()

    configure("--recipient-domains", "")

    ws_123.refresh_from_db()
    assert ws_123.recipient_domains == []
    assert ws_123.approval_required == ["gmail.send"]
    assert list(WorkspacePolicyChange.objects.values_list("changes", flat=True)) == [
        {"recipient_domains": {"old": ["acme.com"], "new": []}}
    ]


def test_a_change_to_the_same_values_is_not_audited(ws_123):
    configure("--approval-required", "task.create")
    configure("--approval-required", "task.create")

    assert WorkspacePolicyChange.objects.count() == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--approval-required", "sms.send", r"sms\.send"),
        ("--recipient-domains", "*.acme.com", r"\*\.acme\.com"),
        ("--recipient-domains", "acme", "acme"),
        ("--recipient-domains", "a b.com", "a b.com"),
    ],
)
def test_invalid_values_are_refused_and_change_nothing(ws_123, option, value, message):
    with pytest.raises(CommandError, match=message):
        configure(option, value)

    ws_123.refresh_from_db()
    assert (ws_123.approval_required, ws_123.recipient_domains) == ([], [])
    assert not WorkspacePolicyChange.objects.exists()


def test_internationalized_recipient_domains_are_stored_as_the_policy_compares_them(ws_123):
    # The policy matches a recipient's domain in its IDNA A-label form (actions.mail_safety).
    configure("--recipient-domains", "Bücher.example,xn--bcher-kva.example,пример.рф")

    ws_123.refresh_from_db()
    assert ws_123.recipient_domains == ["xn--bcher-kva.example", "xn--e1afmkfd.xn--p1ai"]


@pytest.mark.parametrize("domain", ["localhost", "exa mple.com", "a..b", "-x.com", "x.c0m", "é"])
def test_a_recipient_domain_that_is_no_internet_name_is_refused(ws_123, domain):
    with pytest.raises(CommandError, match="invalid recipient domains"):
        configure("--recipient-domains", f"acme.com,{domain}")

    ws_123.refresh_from_db()
    assert ws_123.recipient_domains == []
