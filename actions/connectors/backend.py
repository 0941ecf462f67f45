"""Chooses, per call, the sandbox or the live connector of an e-mail action (ACTIONS_BACKEND)."""

from django.conf import settings

from actions.connectors.base import Connector, ConnectorResult


class MailBackend:
    """`sandbox` records what would be sent; `live` sends. Read at each call, not at import."""

    def __init__(self, *, sandbox: Connector, live: Connector) -> None:
        self.sandbox = sandbox
        self.live = live

    @property
    def current(self) -> Connector:
        return self.live if settings.ACTIONS_BACKEND == "live" else self.sandbox

    @property
    def idempotent(self) -> bool:
        return self.current.idempotent

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        return self.current.execute(
            arguments, workspace_id=workspace_id, idempotency_key=idempotency_key
        )
