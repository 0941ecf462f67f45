"""Specification of the messages the live connectors build: what the provider decodes is exactly
what the model's arguments said, whatever their length or alphabet."""

import base64
from email.policy import SMTP

import pytest

from actions.connectors.gmail import build_message
from actions.connectors.mail import message_id
from actions.connectors.outlook import graph_message
from tests.fakes.mail_providers import _decode_gmail

MID = message_id("audit-7", "ws-a")


def gmail_roundtrip(arguments: dict):
    raw = build_message(arguments, message_id=MID).as_bytes(policy=SMTP)
    delivery, problem = _decode_gmail({"raw": base64.urlsafe_b64encode(raw).decode()})
    assert delivery is not None, problem
    return raw, delivery


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
    arguments = {
        "to": ["ann@example.com", "bob@example.org"],
        "cc": ["cy@example.com"],
        "bcc": ["dee@example.com"],
        "reply_to": "desk@example.com",
        "subject": subject,
        "body": "Bonjour,\nà bientôt.\n",
        "html": "<p>Bonjour</p>",
    }

    raw, delivery = gmail_roundtrip(arguments)

    assert delivery.subject == subject
    assert (delivery.to, delivery.cc, delivery.bcc) == (
        ["ann@example.com", "bob@example.org"],
        ["cy@example.com"],
        ["dee@example.com"],
    )
    assert delivery.headers["Reply-To"] == "desk@example.com"
    assert delivery.message_id == MID == "<audit-7.ws-a@ai-orchestrator.invalid>"
    # On the wire every line ends in CRLF (RFC 5322); the text is the same.
    assert delivery.body.replace("\r\n", "\n") == "Bonjour,\nà bientôt.\n"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 line limit


def test_graph_message_has_the_documented_shape():
    message = graph_message(
        {"to": ["ann@example.com"], "bcc": ["dee@example.com"], "subject": "S", "body": "B",
         "reply_to": "desk@example.com"},
        MID,
    )  # fmt: skip

    assert message == {
        "subject": "S",
        "body": {"contentType": "Text", "content": "B"},
        "toRecipients": [{"emailAddress": {"address": "ann@example.com"}}],
        "ccRecipients": [],
        "bccRecipients": [{"emailAddress": {"address": "dee@example.com"}}],
        "internetMessageId": MID,
        "replyTo": [{"emailAddress": {"address": "desk@example.com"}}],
    }
