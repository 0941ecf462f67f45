"""`outlook.send` through Microsoft Graph `POST /v1.0/me/sendMail` (202 Accepted, no body)."""

from django.conf import settings

from actions import http
from actions.connectors.base import ConnectorResult
from actions.connectors.mail import authorized_send, message_id, recipients


class OutlookConnector:
    idempotent = False  # a second send is a second e-mail

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Send one message; Graph answers 202 without an id, so ours identifies it."""
        internet_id = message_id(idempotency_key, workspace_id)
        payload = {"message": graph_message(arguments, internet_id), "saveToSentItems": True}
        url = f"{settings.GRAPH_API_BASE_URL}/v1.0/me/sendMail"
        response = authorized_send(
            workspace_id=workspace_id,
            provider="microsoft",
            request=lambda token: http.client().post(
                url, json=payload, headers={"Authorization": f"Bearer {token}"}
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


def graph_message(arguments: dict, internet_message_id: str) -> dict:
    """The Graph message resource for the arguments."""

    def addresses(name: str) -> list[dict]:
        return [{"emailAddress": {"address": a}} for a in recipients(arguments, name)]

    html = arguments.get("html")
    message = {
        "subject": arguments["subject"],
        "body": {
            "contentType": "HTML" if html else "Text",
            "content": html or arguments["body"],
        },
        "toRecipients": addresses("to"),
        "ccRecipients": addresses("cc"),
        "bccRecipients": addresses("bcc"),
        "internetMessageId": internet_message_id,
    }
    if arguments.get("reply_to"):
        message["replyTo"] = [{"emailAddress": {"address": arguments["reply_to"]}}]
    return message
