"""Workspace credentials for the mail providers: stored encrypted, refreshed when expired."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from actions import http
from actions.connectors.base import ConnectorError
from actions.models import Connection

logger = logging.getLogger(__name__)

Provider = Connection.Provider
# Refresh a little before the provider's expiry: a token valid when read may be stale on arrival.
EXPIRY_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Credentials:
    access_token: str
    refresh_token: str


def set_connection(
    *,
    workspace_id: str,
    provider: str,
    access_token: str,
    refresh_token: str = "",
    expires_in_seconds: int | None = None,
) -> Connection:
    """Store (or replace) a workspace's credentials for a provider, encrypted."""
    now = timezone.now()
    connection, _ = Connection.objects.update_or_create(
        workspace_id=workspace_id,
        provider=provider,
        defaults={
            "access_token_encrypted": encrypt(access_token),
            "refresh_token_encrypted": encrypt(refresh_token) if refresh_token else "",
            "expires_at": now + timedelta(seconds=expires_in_seconds)
            if expires_in_seconds is not None
            else None,
            "updated_at": now,
        },
    )
    return connection


def access_token(*, workspace_id: str, provider: str, force_refresh: bool = False) -> str:
    """A usable access token: the stored one, or a refreshed one when expired (or forced)."""
    connection = Connection.objects.filter(workspace_id=workspace_id, provider=provider).first()
    if connection is None:
        raise ConnectorError(
            f"workspace {workspace_id} has no {provider} connection",
            permanent=True,
            reason="connection_missing",
        )
    expired = connection.expires_at is not None and (
        connection.expires_at <= timezone.now() + EXPIRY_MARGIN
    )
    if force_refresh or expired:
        return _refresh(connection)
    return decrypt(connection.access_token_encrypted)


def rotate_keys() -> int:
    """Re-encrypt every stored token under the first CONNECTION_ENCRYPTION_KEYS key."""
    rotated = 0
    with transaction.atomic():
        for connection in Connection.objects.select_for_update():
            connection.access_token_encrypted = (
                _fernet().rotate(connection.access_token_encrypted.encode()).decode()
            )
            if connection.refresh_token_encrypted:
                connection.refresh_token_encrypted = (
                    _fernet().rotate(connection.refresh_token_encrypted.encode()).decode()
                )
            connection.save(update_fields=["access_token_encrypted", "refresh_token_encrypted"])
            rotated += 1
    return rotated


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return _fernet().decrypt(value.encode()).decode()
    except InvalidToken:
        # A key removed from CONNECTION_ENCRYPTION_KEYS too early: the operator must fix it.
        raise ConnectorError(
            "stored credentials cannot be decrypted with CONNECTION_ENCRYPTION_KEYS",
            permanent=True,
            reason="connection_invalid",
        ) from None


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.CONNECTION_ENCRYPTION_KEYS))


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _token_endpoint(provider: str) -> tuple[str, str, str]:
    if provider == Provider.GOOGLE:
        return (
            settings.GOOGLE_TOKEN_URL,
            settings.GOOGLE_CLIENT_ID,
            settings.GOOGLE_CLIENT_SECRET,
        )
    return (
        settings.MICROSOFT_TOKEN_URL,
        settings.MICROSOFT_CLIENT_ID,
        settings.MICROSOFT_CLIENT_SECRET,
    )


def _refresh(connection: Connection) -> str:
    """Exchange the refresh token for a new access token (OAuth 2.0, RFC 6749 section 6)."""
    if not connection.refresh_token_encrypted:
        raise ConnectorError(
            "the access token expired and there is no refresh token",
            permanent=True,
            reason="connection_invalid",
        )
    url, client_id, client_secret = _token_endpoint(connection.provider)
    response = http.post_form(
        url,
        {
            "grant_type": "refresh_token",
            "refresh_token": decrypt(connection.refresh_token_encrypted),
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )
    if response.status_code != 200:
        raise ConnectorError(
            f"token refresh refused ({response.status_code}): {http.provider_message(response)}",
            permanent=True,
            reason="connection_invalid",
        )
    try:
        body = response.json()
        new_token = str(body["access_token"])
    except (ValueError, KeyError, TypeError):
        raise ConnectorError(
            "the token endpoint answered without an access_token",
            permanent=True,
            reason="connection_invalid",
        ) from None
    set_connection(
        workspace_id=connection.workspace_id,
        provider=connection.provider,
        access_token=new_token,
        # Providers may rotate the refresh token; keep the old one when they do not.
        refresh_token=body.get("refresh_token") or decrypt(connection.refresh_token_encrypted),
        expires_in_seconds=int(body["expires_in"]) if "expires_in" in body else None,
    )
    logger.info("refreshed the %s token of %s", connection.provider, connection.workspace_id)
    return new_token
