"""Checking a webhook request (Standard Webhooks) before trusting what it says."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from orchestrator_client.errors import WebhookVerificationError
from orchestrator_client.models import WebhookEvent

DEFAULT_TOLERANCE_SECONDS = 300.0
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret


def verify_webhook(
    secret: str,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> WebhookEvent:
    """The event of a webhook request, once its signature and age check out.

    `secret` is the workspace's `whsec_...` webhook secret, `body` the request body exactly as
    received (before any JSON parsing), `headers` its headers (any letter case). Raises
    WebhookVerificationError for a missing or malformed header, a timestamp more than
    `tolerance_seconds` away from now (a replay) or no matching v1 signature.
    """
    key = _secret_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (message_id and timestamp and signatures):
        raise WebhookVerificationError(
            "missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookVerificationError("webhook-timestamp is not a Unix time in seconds")
    age = time.time() - int(timestamp)
    if age > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if age < -tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is in the future")

    payload = body.encode() if isinstance(body, str) else body
    # The timestamp as sent is what was signed: "{id}.{timestamp}.{body}".
    signed = f"{message_id}.{timestamp}.".encode() + payload
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    # Several signatures may be sent (e.g. during a secret rotation); any v1 one may match.
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, signature):
            return _event(payload)
    raise WebhookVerificationError("no matching webhook signature")


def _secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not a whsec_<base64> secret") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _event(payload: bytes) -> WebhookEvent:
    try:
        data = json.loads(payload)
    except ValueError:
        raise WebhookVerificationError("the signed body is not JSON") from None
    return WebhookEvent.from_json(data)
