"""The sandbox e-mail backend: records exactly what would be sent and sends nothing."""

from actions.connectors.base import ConnectorResult


class SandboxMailConnector:
    idempotent = True  # nothing leaves the platform, so running it again is harmless

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Return the message that would have been sent, for the audit row."""
        message = {
            "to": arguments["to"],
            "cc": arguments.get("cc", []),
            "bcc": arguments.get("bcc", []),
            "reply_to": arguments.get("reply_to"),
            "subject": arguments["subject"],
            "body": arguments["body"],
            "html": arguments.get("html"),
        }
        return ConnectorResult(
            data={
                "sandbox": True,
                "provider": self.provider,
                "delivered": False,
                "message": message,
            }
        )
