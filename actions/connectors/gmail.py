"""`gmail.send` through the Gmail API: an RFC 5322 message built with `email`, base64url-encoded."""

import base64
from email.message import EmailMessage
from email.policy import SMTP

from django.conf import settings

from actions import http
from actions.connectors.base import ConnectorResult
from actions.connectors.mail import authorized_send, message_id, recipients


class GmailConnector:
    idempotent = False  # a second send is a second e-mail

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Send one message; the result holds Gmail's message id."""
        mime = build_message(arguments, message_id=message_id(idempotency_key, workspace_id))
        raw = base64.urlsafe_b64encode(mime.as_bytes(policy=SMTP)).decode()
        url = f"{settings.GMAIL_API_BASE_URL}/gmail/v1/users/me/messages/send"
        response = authorized_send(
            workspace_id=workspace_id,
            provider="google",
            request=lambda token: http.client().post(
                url, json={"raw": raw}, headers={"Authorization": f"Bearer {token}"}
            ),
        )
        try:
            body = response.json()
        except ValueError:
            body = {}  # sent all the same (2xx): record it without Gmail's id rather than fail
        return ConnectorResult(
            data={
                "provider": "gmail",
                "provider_message_id": body.get("id"),
                "thread_id": body.get("threadId"),
                "message_id": mime["Message-ID"],
            }
        )


def build_message(arguments: dict, *, message_id: str) -> EmailMessage:
    """The RFC 5322 message; the `email` package folds and encodes headers (schema-checked)."""
    message = EmailMessage()
    message["To"] = ", ".join(recipients(arguments, "to"))
    if arguments.get("cc"):
        message["Cc"] = ", ".join(arguments["cc"])
    if arguments.get("bcc"):
        message["Bcc"] = ", ".join(arguments["bcc"])  # Gmail delivers to Bcc, then drops it
    if arguments.get("reply_to"):
        message["Reply-To"] = arguments["reply_to"]
    message["Subject"] = arguments["subject"]
    message["Message-ID"] = message_id
    message.set_content(arguments["body"])
    if arguments.get("html"):
        message.add_alternative(arguments["html"], subtype="html")
    return message
