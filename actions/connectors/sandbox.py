"""The sandbox e-mail backend: records exactly what would be sent and sends nothing."""

from actions.connectors.base import ConnectorResult
from actions.connectors.mail import outgoing_mail


class SandboxMailConnector:
    idempotent = True  # nothing leaves the platform, so running it again is harmless

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Return the message that would have been sent (addresses normalised), for the audit."""
        mail = outgoing_mail(arguments)
        message = {
            "to": list(mail.to),
            "cc": list(mail.cc),
            "bcc": list(mail.bcc),
            "reply_to": mail.reply_to,
            "subject": mail.subject,
            "body": mail.body,
            "html": mail.html,
        }
        return ConnectorResult(
            data={
                "sandbox": True,
                "provider": self.provider,
                "delivered": False,
                "message": message,
            }
        )
