"""Specification of the messages the live connectors build and of the checks around them: every
header value is read as the `email` package will read it, every address is one strict
local@domain in the form that is sent, and the built message is parsed back and must be exactly
the approved one before it may leave."""

import base64
import json

import pytest

from actions.connectors.gmail import build_message, message_bytes
from actions.connectors.mail import message_id
from actions.connectors.outlook import graph_message
from actions.mail_safety import (
    MessageMismatch,
    OutgoingMail,
    UnsafeMail,
    check_body_text,
    check_header_text,
    normalize_address,
    text_errors,
    verify_graph_payload,
    verify_mime,
)
from tests.fakes.mail_providers import _decode_gmail

MID = message_id("audit-7", "ws-a")
# "allowed.example" in full-width letters and full stop, which IDNA folds to ASCII.
FULL_WIDTH_ALLOWED = "\uff41\uff4c\uff4c\uff4f\uff57\uff45\uff44\uff0eexample"
FULL = {
    "to": ["ann@example.com", "bob@example.org"],
    "cc": ["cy@example.com"],
    "bcc": ["dee@example.com"],
    "reply_to": "desk@example.com",
    "subject": "Hello",
    "body": "Bonjour,\nà bientôt.\n",
    "html": "<p>Bonjour</p>",
}
PLAIN = {"to": ["ann@example.com"], "subject": "Hello", "body": "Hi"}


def gmail_roundtrip(arguments: dict):
    raw = message_bytes(OutgoingMail.of(arguments), message_id=MID)
    delivery, problem = _decode_gmail({"raw": base64.urlsafe_b64encode(raw).decode()})
    assert delivery is not None, problem
    return raw, delivery


# --- Addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "sent"),
    [
        pytest.param("ann@example.com", "ann@example.com", id="plain"),
        pytest.param("Ann.O'Neil+news@Example.COM", "Ann.O'Neil+news@example.com", id="case"),
        pytest.param("x@ALLOWED.example.", "x@allowed.example", id="upper-case-trailing-dot"),
        pytest.param("x@bücher.example", "x@xn--bcher-kva.example", id="idna-u-label"),
        pytest.param("x@BÜCHER.example", "x@xn--bcher-kva.example", id="idna-upper-case"),
        pytest.param("x@xn--bcher-kva.example", "x@xn--bcher-kva.example", id="idna-a-label"),
        pytest.param("x@faß.example", "x@xn--fa-hia.example", id="idna-2008-not-2003"),
        pytest.param(f"x@{FULL_WIDTH_ALLOWED}", "x@allowed.example", id="full-width-folds"),
    ],
)
def test_an_address_is_sent_in_its_normalised_form(address, sent):
    assert normalize_address(address) == sent


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        pytest.param("x@allowed.example\u3000", "whitespace", id="ideographic-space"),
        pytest.param("x@allowed.example\u00a0", "whitespace", id="no-break-space"),
        pytest.param("x\u2003@allowed.example", "whitespace", id="em-space-in-local-part"),
        pytest.param(" x@allowed.example", "whitespace", id="leading-space"),
        pytest.param("x@allowed.example\t", "control", id="tab"),
        pytest.param("x@allowed.example\u2028", "control", id="line-separator"),
        pytest.param("x@allowed.example\u200b", "invisible", id="zero-width-space"),
        pytest.param("a@allowed.example, evil@other.example", "whitespace", id="two-addresses"),
        pytest.param("a@allowed.example,evil@other.example", "exactly one", id="comma-list"),
        pytest.param("Evil <evil@other.example>", "whitespace", id="display-name"),
        pytest.param("<evil@other.example>", "ASCII", id="angle-brackets"),
        pytest.param("a@allowed.example(evil@other.example)", "exactly one", id="comment"),
        pytest.param('"evil@other.example"@allowed.example', "exactly one", id="quoted-at"),
        pytest.param('"evil"@allowed.example', "ASCII", id="quoted-local-part"),
        pytest.param("=?utf-8?q?evil=40other.example?=@allowed.example", "RFC 2047", id="encoded"),
        pytest.param("@route.example:evil@other.example", "exactly one", id="route"),
        pytest.param("group:evil@other.example;", "ASCII", id="group"),
        pytest.param("évé@allowed.example", "ASCII", id="non-ascii-local-part"),
        pytest.param("a..b@allowed.example", "ASCII", id="empty-atom"),
        pytest.param("x@[127.0.0.1]", "host name", id="ip-literal"),
        pytest.param("x@localhost", "dotted", id="single-label"),
        pytest.param("x@allowed..example", "host name", id="empty-label"),
        pytest.param("x@allowed.example..", "host name", id="two-trailing-dots"),
        pytest.param("x@-allowed.example", "host name", id="hyphen-label"),
        pytest.param("x\uff20other.example", "exactly one", id="full-width-at"),
        pytest.param("x@" + "a" * 250 + ".example", "254", id="too-long"),
    ],
)
def test_an_address_that_is_not_one_strict_local_at_domain_is_refused(address, problem):
    with pytest.raises(UnsafeMail, match=problem):
        normalize_address(address)


# --- Header text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        pytest.param("Hi\r\nBcc: eve@example.com", "control", id="crlf"),
        pytest.param("Hi\u2028Bcc: eve@example.com", "control", id="line-separator"),
        pytest.param("Hi\u2029there", "control", id="paragraph-separator"),
        pytest.param("Hi\x85there", "control", id="next-line"),
        pytest.param("Hi\x0bthere", "control", id="vertical-tab"),
        pytest.param("Hi\x00there", "control", id="nul"),
        pytest.param("Hi\x1b[31mthere", "control", id="escape"),
        pytest.param("Hi\x7f", "control", id="delete"),
        pytest.param("Hi\tthere", "control", id="tab"),
        pytest.param("Hi \ud800", "control", id="lone-surrogate"),
        pytest.param("Invoice \u202egpj.exe", "invisible", id="right-to-left-override"),
        pytest.param("\ufeffHi", "invisible", id="byte-order-mark"),
        pytest.param(
            "=?utf-8?q?Report=0D=0ABcc:_someone@elsewhere?=", "once its RFC 2047", id="q-crlf"
        ),
        pytest.param(
            "=?utf-8?b?" + base64.b64encode(b"Report\r\nBcc: someone@elsewhere").decode() + "?=",
            "once its RFC 2047",
            id="b-crlf",
        ),
        pytest.param("=?utf-8?q?Report=0D=0A=0D=0AFake body?=", "once its RFC 2047", id="q-blank"),
        pytest.param("=?utf-8?q?a=E2=80=A8b?=", "once its RFC 2047", id="q-line-separator"),
        pytest.param("=?utf-8?q?a=00b?=", "once its RFC 2047", id="q-nul"),
        pytest.param("=?utf-8?q?a=E2=80=AEb?=", "invisible", id="q-right-to-left-override"),
        pytest.param("=?utf-8?q?Caf=C3=A9?=", "encoded word", id="clean-encoded-word"),
        pytest.param("Hi =?iso-8859-1?q?caf=E9?= there", "encoded word", id="latin-1-word"),
    ],
)
def test_a_subject_is_refused_raw_or_as_decoded(subject, problem):
    with pytest.raises(UnsafeMail, match=problem):
        check_header_text(subject)
    assert text_errors({**PLAIN, "subject": subject})[0].startswith("subject: ")


@pytest.mark.parametrize(
    "subject",
    [
        "Réunion à 10 h — café ☕",
        "Family 👨\u200d👩\u200d👧 photos",  # zero-width joiners make one emoji
        "Price =? ask ?=",  # looks like, but is not, an encoded word
        "=?utf-8?",
        "",
        "é" * 998,
    ],
)
def test_a_subject_the_recipient_reads_as_written_is_accepted(subject):
    check_header_text(subject)
    _, delivery = gmail_roundtrip({**PLAIN, "subject": subject})
    assert delivery.subject == subject


@pytest.mark.parametrize(
    "body",
    ["a\x00b", "a\x1bb", "a\x0cb", "a\x08b", "a\x0bb", "a\x7fb", "a\x85b", "a\ud800b"],
)
def test_a_body_with_a_control_other_than_tab_cr_lf_is_refused(body):
    with pytest.raises(UnsafeMail, match="control character"):
        check_body_text(body)
    assert text_errors({**PLAIN, "body": body, "html": body}) == [
        "body: contains a control character other than tab, CR and LF",
        "html: contains a control character other than tab, CR and LF",
    ]


def test_a_body_may_break_lines_and_indent():
    check_body_text("one\r\ntwo\nthree\r\tfour\u2028five")


def test_outgoing_mail_names_every_refused_field():
    arguments = {
        "to": ["ok@example.com", "x@example.com\u3000"],
        "bcc": ["Eve <eve@evil.example>"],
        "reply_to": "a@b.example, c@d.example",
        "subject": "=?utf-8?q?a=0D=0Ab?=",
        "body": "\x00",
    }
    with pytest.raises(UnsafeMail) as refused:
        OutgoingMail.of(arguments)
    fields = [error.split(":")[0] for error in str(refused.value).split("; ")]
    assert fields == ["subject", "body", "to/1", "bcc/0", "reply_to"]


# --- The Gmail message, parsed back -----------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("Hello", id="ascii"),
        pytest.param("Réunion à 10 h — café ☕", id="non-ascii"),
        pytest.param("word " * 199 + "end", id="998-characters-folded"),
        pytest.param("é" * 998, id="998-non-ascii-characters"),
    ],
)
def test_gmail_message_decodes_to_exactly_the_arguments(subject):
    raw, delivery = gmail_roundtrip({**FULL, "subject": subject})

    assert delivery.subject == subject
    assert (delivery.to, delivery.cc, delivery.bcc, delivery.reply_to) == (
        ["ann@example.com", "bob@example.org"],
        ["cy@example.com"],
        ["dee@example.com"],
        ["desk@example.com"],
    )
    assert [name for name, _ in delivery.header_list] == [
        "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-ID", "MIME-Version", "Content-Type",
    ]  # fmt: skip
    assert delivery.message_id == MID == "<audit-7.ws-a@ai-orchestrator.invalid>"
    # On the wire every line ends in CRLF (RFC 5322); the text is the same.
    assert delivery.body.replace("\r\n", "\n") == "Bonjour,\nà bientôt.\n"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 line limit


def test_gmail_message_carries_the_normalised_addresses():
    _, delivery = gmail_roundtrip(
        {**PLAIN, "to": ["Ann@ALLOWED.example.", "bob@bücher.example"], "cc": ["c@\uff38.example"]}
    )
    assert (delivery.to, delivery.cc) == (
        ["Ann@allowed.example", "bob@xn--bcher-kva.example"],
        ["c@x.example"],
    )


def built(arguments: dict = FULL) -> bytes:
    return build_message(OutgoingMail.of(arguments), message_id=MID).as_bytes()


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        pytest.param(
            lambda raw: raw.replace(b"Subject:", b"Bcc: eve@evil.example\nSubject:"),
            "repeated header bcc",
            id="second-bcc",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Subject:", b"Resent-To: eve@evil.example\nSubject:"),
            "unexpected header resent-to",
            id="resent-to",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Subject:", b"Sender: eve@evil.example\nSubject:"),
            "unexpected header sender",
            id="sender",
        ),
        pytest.param(
            lambda raw: raw.replace(b"To: ann@example.com", b"To: eve@evil.example"),
            "to recipients differ",
            id="other-to",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Cc: cy@example.com", b"Cc: cy@example.com, eve@evil.ex"),
            "cc recipients differ",
            id="extra-cc",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Cc: cy@example.com", b"Cc: Cy <cy@example.com>"),
            "cc recipients differ",
            id="display-name",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Reply-To: desk@example.com", b"Reply-To: eve@evil.example"),
            "reply-to recipients differ",
            id="reply-to",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Subject: Hello", b"Subject: Hello\n\nInjected"),
            "missing header message-id",
            id="blank-line-ends-the-headers",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Subject: Hello", b"Subject: Hell0"),
            "subject differs",
            id="subject",
        ),
        pytest.param(
            lambda raw: raw.replace(b"<p>Bonjour</p>", b"<p>Pay here</p>"),
            "text/html part differs",
            id="html",
        ),
        pytest.param(
            lambda raw: raw.replace(b"Content-Type: text/html", b"Content-Type: text/x-evil"),
            "parts differ",
            id="part-type",
        ),
        pytest.param(
            lambda raw: raw.replace(
                b"Content-Type: text/html",
                b"Content-Disposition: attachment\nContent-Type: text/html",
            ),
            "text/html part differs",
            id="part-header",
        ),
    ],
)
def test_a_built_message_that_is_not_the_approved_one_is_refused(tamper, problem):
    mail = OutgoingMail.of(FULL)
    raw = built()
    verify_mime(raw, mail, message_id=MID)  # positive control: the untouched bytes pass
    tampered = tamper(raw)
    assert tampered != raw

    with pytest.raises(MessageMismatch, match=problem):
        verify_mime(tampered, mail, message_id=MID)


def test_a_message_id_other_than_ours_is_refused():
    with pytest.raises(MessageMismatch, match="message-id differs"):
        verify_mime(built(), OutgoingMail.of(FULL), message_id="<other@example.com>")


def test_a_subject_the_builder_cannot_write_is_refused_before_sending():
    # OutgoingMail.of refuses it; built directly (as if the policy were bypassed), the builder's
    # ValueError becomes a mismatch, not a crash.
    mail = OutgoingMail(("a@example.com",), (), (), None, "a\u2028b", "b", None)
    with pytest.raises(MessageMismatch, match="cannot be built"):
        message_bytes(mail, message_id=MID)


def test_an_encoded_crlf_subject_built_anyway_is_caught_by_the_parse_back():
    # What today's `email` does with it: the decoded CR LF becomes a real Bcc header.
    subject = "=?utf-8?q?Report=0D=0ABcc:_someone@elsewhere?="
    mail = OutgoingMail(("a@example.com",), (), (), None, subject, "b", None)
    with pytest.raises(MessageMismatch, match=r"unexpected header bcc|subject differs"):
        message_bytes(mail, message_id=MID)


# --- The Graph message ------------------------------------------------------------------------


def graph_body(arguments: dict) -> bytes:
    mail = OutgoingMail.of(arguments)
    return json.dumps({"message": graph_message(mail, MID), "saveToSentItems": True}).encode()


def test_graph_message_has_the_documented_shape():
    arguments = {**PLAIN, "to": ["Ann@Example.COM."], "bcc": ["dee@example.com"],
                 "subject": "S", "body": "B", "reply_to": "desk@example.com"}  # fmt: skip
    message = graph_message(OutgoingMail.of(arguments), MID)

    assert message == {
        "subject": "S",
        "body": {"contentType": "Text", "content": "B"},
        "toRecipients": [{"emailAddress": {"address": "Ann@example.com"}}],
        "ccRecipients": [],
        "bccRecipients": [{"emailAddress": {"address": "dee@example.com"}}],
        "internetMessageId": MID,
        "replyTo": [{"emailAddress": {"address": "desk@example.com"}}],
    }
    verify_graph_payload(graph_body(arguments), OutgoingMail.of(arguments), message_id=MID)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: m["bccRecipients"].append({"emailAddress": {"address": "e@x.ex"}}),
                     id="extra-bcc"),
        pytest.param(lambda m: m["toRecipients"][0]["emailAddress"].update(name="Boss"),
                     id="display-name"),
        pytest.param(lambda m: m.update(sender={"emailAddress": {"address": "e@x.ex"}}),
                     id="sender"),
        pytest.param(lambda m: m.update(replyTo=[{"emailAddress": {"address": "e@x.ex"}}]),
                     id="reply-to"),
        pytest.param(lambda m: m.update(subject="Other"), id="subject"),
        pytest.param(lambda m: m["body"].update(contentType="HTML"), id="body-type"),
    ],
)  # fmt: skip
def test_a_graph_message_that_is_not_the_approved_one_is_refused(tamper):
    mail = OutgoingMail.of(FULL | {"html": None, "reply_to": None})
    payload = json.loads(graph_body(FULL | {"html": None, "reply_to": None}))
    tamper(payload["message"])

    with pytest.raises(MessageMismatch):
        verify_graph_payload(json.dumps(payload).encode(), mail, message_id=MID)
