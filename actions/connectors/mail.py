"""What the Gmail and Graph connectors share: a bearer token, one refresh on 401, error mapping."""

from collections.abc import Callable

import httpx2

from actions import connections, http
from actions.connectors.base import ConnectorError
from actions.mail_safety import MessageMismatch, OutgoingMail, UnsafeMail

MESSAGE_ID_DOMAIN = "ai-orchestrator.invalid"


def message_id(idempotency_key: str, workspace_id: str) -> str:
    """Our own RFC 5322 Message-ID, the same for every try of one action: traceable, dedupable."""
    return f"<{idempotency_key}.{workspace_id}@{MESSAGE_ID_DOMAIN}>"


def authorized_send(
    *, workspace_id: str, provider: str, request: Callable[[str], httpx2.Response]
) -> httpx2.Response:
    """Send with the workspace's token; on 401 refresh it once and send again; map errors.

    Returns a 2xx response; raises ConnectorError (or OutcomeUnknown from http.send) otherwise.
    """
    token = connections.access_token(workspace_id=workspace_id, provider=provider)
    response = http.send(lambda: request(token))
    if response.status_code == 401:
        # 401 means the provider refused the token before doing anything: safe to send again.
        token = connections.access_token(
            workspace_id=workspace_id, provider=provider, force_refresh=True
        )
        response = http.send(lambda: request(token))
        if response.status_code == 401:
            raise ConnectorError(
                f"the provider refused the refreshed token: {http.provider_message(response)}",
                permanent=True,
                reason="connection_invalid",
            )
    if response.status_code == 429 or response.status_code >= 500:
        raise ConnectorError(
            f"provider unavailable ({response.status_code}): {http.provider_message(response)}",
            permanent=False,
        )
    if response.status_code >= 400:
        raise ConnectorError(
            f"provider refused ({response.status_code}): {http.provider_message(response)}",
            permanent=True,
        )
    return response


def outgoing_mail(arguments: dict) -> OutgoingMail:
    """The arguments as they will be sent; a refusal fails the action before any call."""
    try:
        return OutgoingMail.of(arguments)
    except UnsafeMail as exc:
        raise ConnectorError(str(exc), permanent=True, reason="invalid_arguments") from None


def refuse_mismatch(exc: MessageMismatch) -> ConnectorError:
    """The built message is not the approved one: never send it, never try again."""
    return ConnectorError(str(exc), permanent=True, reason="message_mismatch")
