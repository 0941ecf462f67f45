"""Signed webhooks (Standard Webhooks): recording events, the SSRF guard, delivering them.

An event is a row (WebhookDelivery) written when the job reaches a final state or an action
awaits approval, then posted by a Celery task that retries with exponential backoff for up to
WEBHOOK_RETRY_FOR_SECONDS; every attempt is a row of its own.
"""

import base64
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook

from core import metrics
from core.exceptions import OrchestratorError
from core.publish import publish_on_commit
from orchestrator.models import Job, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

DELIVER_WEBHOOK = "orchestrator.tasks.deliver_webhook"

EXCERPT_BYTES = 300
Delivery = WebhookDelivery.Status


class WebhookUrlRefused(OrchestratorError):
    code = "invalid_request"
    status = 400


class WebhookDeliveryFailed(Exception):
    """This attempt failed; the task retries it later."""


def generate_webhook_secret() -> str:
    """A new `whsec_` secret: 24 random bytes, base64, as Standard Webhooks expects."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# --- The SSRF guard ---------------------------------------------------------------------------


def check_webhook_url(url: str) -> list[str]:
    """Refuse a URL the platform must not call; return the addresses it resolves to.

    https only (http with WEBHOOK_ALLOW_HTTP); every address the name resolves to must be
    public (not loopback, private, link-local such as cloud metadata, or reserved) unless
    WEBHOOK_ALLOW_PRIVATE_NETWORKS.
    """
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise WebhookUrlRefused(f"A webhook URL must be {' or '.join(schemes)} with a host.")
    if parts.username or parts.password:
        raise WebhookUrlRefused("A webhook URL must not carry credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise WebhookUrlRefused(f"The webhook host {parts.hostname!r} does not resolve.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise WebhookUrlRefused(
                f"The webhook host resolves to a non-public address ({refused[0]})."
            )
    return addresses


# IPv6 forms that carry an IPv4 address in their low 32 bits: reaching them reaches (or is
# translated to) that IPv4 address. The mapped (::ffff:0:0/96), 6to4 and Teredo forms have
# properties of their own in ipaddress.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated (RFC 4291); holds :: and ::1 too
# Global unicast is 2000::/3 (IANA); within it, ipaddress's is_global knows the special
# registry except the documentation prefix of RFC 9637, newer than Python 3.11's table.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_DOCUMENTATION_RFC9637 = ipaddress.IPv6Network("3fff::/20")


def is_public_address(address: str) -> bool:
    """Whether the platform may connect to `address`: a globally routable unicast address,
    judged by the IPv4 address inside any IPv4-in-IPv6 form (mapped, compatible, 6to4, Teredo
    server and client, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 4:
        return _is_public_ipv4(ip)
    embedded = _embedded_ipv4(ip)
    if embedded:
        return all(_is_public_ipv4(ipv4) for ipv4 in embedded)
    # Outside 2000::/3 lie loopback, unique-local, link-local, site-local, multicast, the
    # local-use NAT64 prefix 64:ff9b:1::/48 and everything not yet allocated.
    return ip in _GLOBAL_UNICAST and ip not in _DOCUMENTATION_RFC9637 and ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # (server, client): the packet goes through both
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _is_public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast


# --- Recording events -------------------------------------------------------------------------


def record_job_event(*, job_id, webhook_url: str | None = None) -> WebhookDelivery | None:
    """Record `job.<status>` for a job that reached a final state, if it has a webhook URL.

    A caller that already knows the job's effective URL passes it: "" then costs no query.
    """
    if webhook_url == "":
        return None
    job = Job.objects.select_related("workspace").get(pk=job_id)
    return _record(job=job, event_type=f"job.{job.status}", status=job.status)


def record_action_event(*, job_id, status: str) -> WebhookDelivery | None:
    """Record `action.<status>` (such as action.pending_approval) for one of a job's actions."""
    job = Job.objects.select_related("workspace").get(pk=job_id)
    return _record(job=job, event_type=f"action.{status}", status=status)


def _record(*, job: Job, event_type: str, status: str) -> WebhookDelivery | None:
    url = job.webhook_url or job.workspace.webhook_url
    if not url or not job.workspace.webhook_secret:
        return None
    now = timezone.now()
    delivery = WebhookDelivery(workspace=job.workspace, job=job, event_type=event_type, url=url)
    # Thin on purpose: the receiver fetches the job with its key, so nothing sensitive travels.
    delivery.payload = {
        "type": event_type,
        "id": str(delivery.id),
        "job_id": str(job.id),
        "status": status,
        "created_at": now.isoformat(),
    }
    delivery.created_at = now
    delivery.retry_until = now + timedelta(seconds=settings.WEBHOOK_RETRY_FOR_SECONDS)
    with transaction.atomic():
        delivery.save(force_insert=True)
        publish_on_commit(DELIVER_WEBHOOK, str(delivery.id))
    return delivery


def redeliver_webhook(*, delivery: WebhookDelivery) -> None:
    """Post a delivery again (the admin's action), with a fresh retry window."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.PENDING,
            retry_until=timezone.now() + timedelta(seconds=settings.WEBHOOK_RETRY_FOR_SECONDS),
        )
        publish_on_commit(DELIVER_WEBHOOK, str(delivery.pk))


# --- Delivering -------------------------------------------------------------------------------


def deliver_webhook(*, delivery_id: str) -> None:
    """Post a pending delivery once; raise WebhookDeliveryFailed to be retried later."""
    delivery = WebhookDelivery.objects.select_related("workspace").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.PENDING:
        return
    attempt = _post(delivery)
    attempt.save()
    delivered = attempt.status_code is not None and 200 <= attempt.status_code < 300
    now = timezone.now()
    if delivered:
        new_status = Delivery.DELIVERED
    elif now >= delivery.retry_until:
        new_status = Delivery.FAILED
    else:
        new_status = Delivery.PENDING
    moved = WebhookDelivery.objects.filter(pk=delivery.pk, status=Delivery.PENDING).update(
        status=new_status,
        attempts=F("attempts") + 1,
        delivered_at=now if delivered else None,
    )
    if moved:  # a redelivered message that lost the race records nothing twice
        outcome = "retrying" if new_status == Delivery.PENDING else new_status
        metrics.count("ai_webhook_attempts", outcome=outcome)
    if new_status == Delivery.FAILED:
        logger.warning("webhook %s given up after %d attempts", delivery.pk, delivery.attempts + 1)
    elif new_status == Delivery.PENDING:
        raise WebhookDeliveryFailed(attempt.error or f"HTTP {attempt.status_code}")


def _post(delivery: WebhookDelivery) -> WebhookAttempt:
    attempt = WebhookAttempt(delivery=delivery)
    started = time.monotonic()
    body = json.dumps(delivery.payload, separators=(",", ":"))
    sent_at = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "ai-orchestrator-webhooks",
        "webhook-id": str(delivery.pk),
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(delivery.workspace.webhook_secret).sign(
            str(delivery.pk), sent_at, body
        ),
    }
    try:
        # Checked again at each attempt: the name may resolve elsewhere since submission.
        addresses = check_webhook_url(delivery.url)
    except WebhookUrlRefused as exc:
        attempt.error = exc.message[:300]
        addresses = []
    for address in addresses:  # in resolver order, like any client; the next if one refuses
        try:
            attempt.status_code, attempt.response_excerpt = _send(
                delivery.url, address, body, headers
            )
            attempt.error = ""
            break
        except httpx.ConnectError as exc:
            attempt.error = f"ConnectError: {exc}"[:300]
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:300]
            break
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    return attempt


def _send(url: str, address: str, body: str, headers: dict) -> tuple[int, str]:
    """POST to one checked address; (status, excerpt of the answer)."""
    pinned_url, extensions = _pinned(url, address, headers)
    with (
        httpx.Client(
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the checked address or none
            verify=ssl.create_default_context(cafile=settings.WEBHOOK_CA_FILE or certifi.where()),
        ) as client,
        client.stream(
            "POST", pinned_url, content=body, headers=headers, extensions=extensions
        ) as response,
    ):
        return response.status_code, _excerpt(response)


def _pinned(url: str, address: str, headers: dict) -> tuple[str, dict]:
    """Connect to the address the guard checked, not to a second DNS answer (rebinding)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    headers["host"] = parts.netloc
    return urlunsplit(parts._replace(netloc=netloc)), {"sni_hostname": parts.hostname}


def _excerpt(response: httpx.Response) -> str:
    # Read no more than the excerpt: a receiver's body is never stored beyond it.
    for chunk in response.iter_bytes(EXCERPT_BYTES):
        return chunk[:EXCERPT_BYTES].decode(errors="replace")
    return ""
