"""`outlook.send` through Microsoft Graph `POST /v1.0/me/sendMail` (202 Accepted, no body)."""

import json

from django.conf import settings

from actions import http
from actions.connectors.base import ConnectorResult
from actions.connectors.mail import authorized_send, message_id, outgoing_mail, refuse_mismatch
from actions.mail_safety import MessageMismatch, OutgoingMail, verify_graph_payload


class OutlookConnector:
    idempotent = False  # a second send is a second e-mail

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Send one message; Graph answers 202 without an id, so ours identifies it."""
        mail = outgoing_mail(arguments)
        internet_id = message_id(idempotency_key, workspace_id)
        payload = {"message": graph_message(mail, internet_id), "saveToSentItems": True}
        # The bytes checked are the bytes sent.
        body = json.dumps(payload).encode()
        try:
            verify_graph_payload(body, mail, message_id=internet_id)
        except MessageMismatch as exc:
            raise refuse_mismatch(exc) from None
        url = f"{settings.GRAPH_API_BASE_URL}/v1.0/me/sendMail"
        response = authorized_send(
            workspace_id=workspace_id,
            provider="microsoft",
            request=lambda token: http.client().post(
                url,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ),
        )
        # Graph documents 202; any 2xx means it took the message, so it is not reported failed.
        return ConnectorResult(
            data={
                "provider": "outlook",
                "accepted": True,
                "status_code": response.status_code,
                "message_id": internet_id,
            }
        )


def graph_message(mail: OutgoingMail, internet_message_id: str) -> dict:
    """The Graph message resource for the mail."""

    def addresses(values: tuple[str, ...]) -> list[dict]:
        return [{"emailAddress": {"address": address}} for address in values]

    message = {
        "subject": mail.subject,
        "body": {
            "contentType": "HTML" if mail.html else "Text",
            "content": mail.html or mail.body,
        },
        "toRecipients": addresses(mail.to),
        "ccRecipients": addresses(mail.cc),
        "bccRecipients": addresses(mail.bcc),
        "internetMessageId": internet_message_id,
    }
    if mail.reply_to:
        message["replyTo"] = addresses((mail.reply_to,))
    return message
