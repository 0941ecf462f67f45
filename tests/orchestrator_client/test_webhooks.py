"""verify_webhook against deliveries the platform really sent (a worker posting to a local
receiver), and against the platform's signer for what a real delivery cannot show."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from orchestrator.webhooks import generate_webhook_secret
from orchestrator_client import OrchestratorClient, WebhookVerificationError, verify_webhook
from tests.orchestrator_client.conftest import propose_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delivery(web, key, signed_workspace, receiver, local_worker):
    """One real job.succeeded delivery: (secret, received request, job id)."""
    with OrchestratorClient(web, key) as client:
        job = client.submit(prompt="Notify me", webhook_url=f"{receiver.url}/hook")
        client.wait_for_job(job.id, poll_interval=0.1, timeout=30)
    (received,) = receiver.wait_for(1)
    return signed_workspace.webhook_secret, received, job.id


def resigned(secret: str, body: bytes, sent_at: datetime, message_id: str = "msg_1") -> dict:
    """Headers as the platform's signer writes them for `body` sent at `sent_at`."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, body.decode()),
    }


def test_a_real_delivery_verifies_into_its_event_and_nothing_else_does(delivery):
    secret, received, job_id = delivery
    headers = received.headers

    event = verify_webhook(secret, received.body, headers)

    assert (event.type, event.job_id, event.status) == ("job.succeeded", job_id, "succeeded")
    assert event.id == headers["webhook-id"]  # the same on every retry: deduplicate on it
    # Header names in any case, the body as bytes or text.
    upper = {name.upper(): value for name, value in headers.items()}
    assert verify_webhook(secret, received.body.decode(), upper) == event

    without_signature = {k: v for k, v in headers.items() if k.lower() != "webhook-signature"}
    for body, key, sent in [
        (received.body.replace(b"succeeded", b"cancelled"), secret, headers),
        (received.body + b" ", secret, headers),
        (received.body, generate_webhook_secret(), headers),
        (received.body, secret, without_signature),
    ]:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(key, body, sent)

    # A replay: the same delivery, once older than the tolerance.
    while time.time() < int(headers["webhook-timestamp"]) + 1.5:
        time.sleep(0.1)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(secret, received.body, headers, tolerance_seconds=1)


def test_timestamps_beyond_five_minutes_either_way_are_refused():
    secret, body = generate_webhook_secret(), b'{"type":"job.failed"}'
    now = datetime.now(UTC)

    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(secret, body, resigned(secret, body, now - timedelta(minutes=6)))
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify_webhook(secret, body, resigned(secret, body, now + timedelta(minutes=6)))


@pytest.mark.parametrize(
    "signature",
    ["v1", "v1,", "v1,!!not-base64!!", "v2,c2lnbmF0dXJl", "", "   "],
)
def test_a_malformed_signature_header_is_a_verification_error_not_a_crash(signature):
    secret, body = generate_webhook_secret(), b'{"type":"job.failed"}'
    headers = {**resigned(secret, body, datetime.now(UTC)), "webhook-signature": signature}

    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, body, headers)


# The last is in Arabic-Indic digits, which str.isdigit() accepts and int() would read.
@pytest.mark.parametrize("timestamp", ["soon", "-5", "1e9", "\u0661\u0667" + "\u0660" * 8])
def test_a_malformed_timestamp_is_refused(timestamp):
    secret, body = generate_webhook_secret(), b"{}"
    headers = {**resigned(secret, body, datetime.now(UTC)), "webhook-timestamp": timestamp}

    with pytest.raises(WebhookVerificationError, match="Unix time"):
        verify_webhook(secret, body, headers)


def test_any_one_matching_signature_of_several_is_enough():
    """During a secret rotation a sender may sign with the old and the new secret."""
    secret = generate_webhook_secret()
    body = (
        b'{"type":"action.pending_approval","id":"d","job_id":"j","status":"pending_approval",'
        b'"created_at":"2026-01-02T03:04:05+00:00"}'
    )
    headers = resigned(secret, body, datetime.now(UTC))
    other = resigned(generate_webhook_secret(), body, datetime.now(UTC))["webhook-signature"]
    headers["webhook-signature"] = f"{other} {headers['webhook-signature']}"

    assert verify_webhook(secret, body, headers).type == "action.pending_approval"


def test_a_held_action_is_announced_by_a_verifiable_webhook(
    web, key, signed_workspace, approval_workspace, receiver, local_worker
):
    with OrchestratorClient(web, key) as client:
        job = client.submit(prompt=propose_task("Hold"), webhook_url=f"{receiver.url}/hook")
        client.wait_for_job(job.id, poll_interval=0.1, timeout=30)
    received = receiver.wait_for(2)
    events = [verify_webhook(signed_workspace.webhook_secret, r.body, r.headers) for r in received]

    assert sorted(event.type for event in events) == ["action.pending_approval", "job.succeeded"]
    assert {event.job_id for event in events} == {job.id}
