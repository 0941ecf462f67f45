"""A model cannot make a mail action send anything but what the policy approved: hostile
subjects, bodies and addresses, written verbatim through the simulator's RAW directive, end their
action `rejected` (`invalid_arguments`, the field named) with nothing sent, and what is sent
reaches the fake Gmail or Graph exactly as approved (addresses in their normalised form)."""

import json

import pytest

from audit.models import ActionAudit
from orchestrator.models import Job
from tests.actions.test_actions_e2e import explain, submit_prompt
from tests.helpers import raw_call, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
ALLOWED = "allowed.example"
TO = [f"ann@{ALLOWED}"]
# "allowed.example" in full-width letters and full stop, which IDNA folds to ASCII.
FULL_WIDTH_ALLOWED = "\uff41\uff4c\uff4c\uff4f\uff57\uff45\uff44\uff0eexample"
# The header lines a plain-text message carries, in order: ours, then the MIME ones.
PLAIN_HEADERS = ["To", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding",
                 "MIME-Version"]  # fmt: skip


@pytest.fixture
def live(connected, providers, start_live_worker):
    """A live worker; every recipient in `allowed.example` is inside the workspace's policy, so
    only the argument checks stand between a hostile call and the provider."""
    connected.recipient_domains = [ALLOWED, "xn--bcher-kva.example"]
    connected.save()
    return start_live_worker()


def send(api_client, tool: str, arguments: dict) -> tuple[Job, ActionAudit]:
    """The model calls `tool` with `arguments` as JSON text, verbatim; the job and its row."""
    action = tool.replace("_", ".")
    prompt = raw_call(tool, json.dumps(arguments))
    job = wait_for_job(submit_prompt(api_client, prompt, actions=[action]))
    return job, ActionAudit.objects.get(job_id=job.id)


def assert_refused(job: Job, row: ActionAudit, providers, worker, *, field: str) -> None:
    """Rejected before any side effect, the field named, the model told, the job not wedged."""
    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert (row.status, row.reason) == (Status.REJECTED, "invalid_arguments"), row.result
    assert [error.split(":")[0] for error in row.result["errors"]] == [field], row.result
    assert row.started_at is None
    assert "rejected" in job.output_text
    assert providers.send_attempts == []
    assert providers.delivered() == []


# --- Subjects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("=?utf-8?q?Report=0D=0ABcc:_someone@elsewhere.example?=", id="q"),
        pytest.param("=?utf-8?b?UmVwb3J0DQpCY2M6IHNvbWVvbmVAZWxzZXdoZXJlLmV4YW1wbGU=?=", id="b"),
        pytest.param("=?UTF-8?Q?Report=0ABcc:_someone@elsewhere.example?=", id="q-lf-upper"),
    ],
)
def test_encoded_line_break_in_subject_cannot_add_a_bcc(api_client, providers, live, subject):
    job, row = send(api_client, "gmail_send", {"to": TO, "subject": subject, "body": "Hi"})

    assert_refused(job, row, providers, live, field="subject")
    assert "once its RFC 2047 encoded words are decoded" in row.result["errors"][0]
    assert row.arguments["subject"] == subject  # the audit keeps what the model wrote


def test_encoded_blank_line_in_subject_cannot_end_the_headers(api_client, providers, live):
    subject = "=?utf-8?q?Report=0D=0A=0D=0AYour_password_expired?="

    job, row = send(api_client, "gmail_send", {"to": TO, "subject": subject, "body": "Hi"})

    assert_refused(job, row, providers, live, field="subject")


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("Report\u2028Bcc: someone@elsewhere.example", id="u2028"),
        pytest.param("Report\u2029", id="u2029"),
        pytest.param("Report\x85Bcc: someone@elsewhere.example", id="u0085"),
        pytest.param("Report\x0bBcc: someone@elsewhere.example", id="vertical-tab"),
        pytest.param("Report\x1b]8;;https://evil.example\x07", id="escape"),
    ],
)
def test_line_separator_or_control_in_subject_is_rejected_not_crashed(
    api_client, providers, live, subject
):
    job, row = send(api_client, "gmail_send", {"to": TO, "subject": subject, "body": "Hi"})

    assert_refused(job, row, providers, live, field="subject")


# --- Bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"body": "Hi\x00there"}, "body", id="nul"),
        pytest.param({"body": "Hi\x1b[2Jthere"}, "body", id="escape"),
        pytest.param({"body": "Hi\x08\x08there"}, "body", id="backspace"),
        pytest.param({"html": "<p>\x0c</p>"}, "html", id="form-feed-in-html"),
    ],
)
def test_control_character_in_a_body_is_rejected(api_client, providers, live, changes, field):
    arguments = {"to": TO, "subject": "Hi", "body": "Hello", **changes}

    job, row = send(api_client, "gmail_send", arguments)

    assert_refused(job, row, providers, live, field=field)


# --- Addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(f"x@{ALLOWED}\u3000", id="ideographic-space"),
        pytest.param(f"x@{ALLOWED}\u00a0", id="no-break-space"),
        pytest.param(f"x\u2003@{ALLOWED}", id="em-space"),
    ],
)
def test_recipient_with_unicode_whitespace_is_rejected(api_client, providers, live, address):
    job, row = send(api_client, "gmail_send", {"to": [address], "subject": "Hi", "body": "Hi"})

    assert_refused(job, row, providers, live, field="to/0")
    assert "whitespace" in row.result["errors"][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("to", f"a@{ALLOWED}, evil@other.example", id="two-addresses"),
        pytest.param("to", f"a@{ALLOWED},evil@other.example", id="comma-list"),
        pytest.param("cc", "Evil <evil@other.example>", id="display-name"),
        pytest.param("bcc", f"=?utf-8?q?evil=40other.example?=@{ALLOWED}", id="encoded-word"),
        pytest.param("to", f'"evil@other.example"@{ALLOWED}', id="quoted-local-part"),
        pytest.param("reply_to", "Boss <evil@other.example>", id="reply-to-name"),
    ],
)
def test_one_address_field_cannot_smuggle_another_recipient_or_a_name(
    api_client, providers, live, field, value
):
    arguments = {"to": TO, "subject": "Hi", "body": "Hi"}
    arguments[field] = value if field == "reply_to" else [value]

    job, row = send(api_client, "gmail_send", arguments)

    assert_refused(job, row, providers, live, field=field if field == "reply_to" else f"{field}/0")


def test_idna_upper_case_and_trailing_dot_domains_in_the_list_are_sent_normalised(
    api_client, providers, live
):
    arguments = {
        "to": ["Ann@ALLOWED.example.", "bob@Bücher.example"],
        "cc": [f"cy@{FULL_WIDTH_ALLOWED}"],
        "subject": "Réunion ☕",
        "body": "Hello",
    }

    job, row = send(api_client, "gmail_send", arguments)

    assert job.status == Job.Status.SUCCEEDED, explain(job, live)
    assert (row.status, row.reason) == (Status.EXECUTED, ""), row.result
    assert row.arguments == arguments  # approved as written ...
    [delivery] = providers.delivered("google")
    # ... and sent as normalised: the domains the policy compared are the ones mail goes to.
    assert (delivery.to, delivery.cc, delivery.bcc) == (
        ["Ann@allowed.example", "bob@xn--bcher-kva.example"],
        ["cy@allowed.example"],
        [],
    )
    assert delivery.subject == "Réunion ☕"
    assert [name for name, _ in delivery.header_list] == [
        "To", "Cc", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding",
        "MIME-Version",
    ]  # fmt: skip
    assert b"\r\nBcc:" not in delivery.raw and not delivery.raw.startswith(b"Bcc:")


def test_an_approved_bcc_is_the_only_bcc_gmail_receives(api_client, providers, live):
    arguments = {"to": TO, "bcc": [f"audit@{ALLOWED}"], "subject": "Hi", "body": "Hello"}

    job, row = send(api_client, "gmail_send", arguments)

    assert (row.status, job.status) == (Status.EXECUTED, Job.Status.SUCCEEDED), row.result
    [delivery] = providers.delivered("google")
    assert (delivery.to, delivery.cc, delivery.bcc, delivery.reply_to) == (
        TO, [], [f"audit@{ALLOWED}"], [])  # fmt: skip
    names = [name for name, _ in delivery.header_list]
    assert names == PLAIN_HEADERS[:1] + ["Bcc"] + PLAIN_HEADERS[1:]


# --- Graph ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param(
            {"subject": "=?utf-8?q?Report=0D=0ABcc:_someone@elsewhere.example?="},
            "subject",
            id="encoded-crlf-subject",
        ),
        pytest.param({"subject": "Report\u2028x"}, "subject", id="u2028-subject"),
        pytest.param({"to": [f"x@{ALLOWED}\u3000"]}, "to/0", id="ideographic-space"),
        pytest.param({"bcc": ["Evil <evil@other.example>"]}, "bcc/0", id="display-name"),
        pytest.param({"body": "Hi\x1bthere"}, "body", id="control-in-body"),
    ],
)
def test_outlook_send_refuses_the_same_hostile_arguments(
    api_client, providers, live, changes, field
):
    job, row = send(
        api_client, "outlook_send", {"to": TO, "subject": "Hi", "body": "Hi", **changes}
    )

    assert_refused(job, row, providers, live, field=field)


def test_outlook_send_posts_exactly_the_approved_message_normalised(api_client, providers, live):
    arguments = {"to": ["Ann@ALLOWED.example."], "bcc": ["bob@bücher.example"],
                 "subject": "Réunion ☕", "body": "Hello"}  # fmt: skip

    job, row = send(api_client, "outlook_send", arguments)

    assert (row.status, job.status) == (Status.EXECUTED, Job.Status.SUCCEEDED), row.result
    [delivery] = providers.delivered("microsoft")
    assert json.loads(delivery.raw) == {
        "message": {
            "subject": "Réunion ☕",
            "body": {"contentType": "Text", "content": "Hello"},
            "toRecipients": [{"emailAddress": {"address": "Ann@allowed.example"}}],
            "ccRecipients": [],
            "bccRecipients": [{"emailAddress": {"address": "bob@xn--bcher-kva.example"}}],
            "internetMessageId": row.result["message_id"],
        },
        "saveToSentItems": True,
    }
