"""The Python client against the real stack: gunicorn, a Celery worker, a webhook receiver."""

import pytest
from standardwebhooks import WebhookVerificationError

from orchestrator.webhooks import generate_webhook_secret
from orchestrator_client import ApiError, OrchestratorClient, verify_webhook
from tests import factories
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.processes import start_web

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}


@pytest.fixture
def web():
    process, base_url = start_web(**LOCAL)
    yield base_url
    process.stop()


def test_submit_wait_list_cancel_and_verify_a_webhook(web, workspace, start_worker_with):
    workspace.webhook_secret = generate_webhook_secret()
    workspace.save()
    receiver = WebhookReceiver()
    start_worker_with(**LOCAL)
    client = OrchestratorClient(web, factories.make_api_key(workspace))
    try:
        submitted = client.submit(prompt="Plan my week", webhook_url=f"{receiver.url}/hook")
        assert submitted["client_request_id"].startswith("req-")  # made up by the client
        done = client.wait(submitted["id"], first_delay=0.1, timeout=30)
        assert done["status"] == "succeeded" and done["output_text"]

        replay = client.submit(
            client_request_id=submitted["client_request_id"],
            prompt="Plan my week",
            webhook_url=f"{receiver.url}/hook",
        )
        assert replay["id"] == submitted["id"]

        slow = client.submit(prompt="SLEEP 3000\nTake your time")
        assert client.cancel(slow["id"])["status"] == "cancelled"
        assert client.cancel(slow["id"])["status"] == "cancelled"  # idempotent

        listed = [job["id"] for job in client.iter_jobs(limit=1)]
        assert listed == [slow["id"], submitted["id"]]
        assert [j["id"] for j in client.list(status="cancelled").jobs] == [slow["id"]]

        (received,) = receiver.wait_for(1)
        event = verify_webhook(workspace.webhook_secret, received.body, received.headers)
        assert (event["type"], event["job_id"]) == ("job.succeeded", submitted["id"])
        with pytest.raises(WebhookVerificationError):
            verify_webhook(workspace.webhook_secret, received.body + b" ", received.headers)
    finally:
        client.close()
        receiver.stop()


def test_errors_are_api_errors_and_a_429_carries_retry_after(web, workspace):
    workspace.rate_limit_per_minute = 1
    workspace.save()
    client = OrchestratorClient(web, factories.make_api_key(workspace), max_retries=0)
    stranger = OrchestratorClient(web, "aio_000000000000_wrong")
    try:
        client.list()
        with pytest.raises(ApiError) as limited:
            client.list()
        with pytest.raises(ApiError) as unauthenticated:
            stranger.get("00000000-0000-0000-0000-000000000000")
    finally:
        client.close()
        stranger.close()

    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert limited.value.retry_after and limited.value.retry_after >= 1
    assert (unauthenticated.value.status, unauthenticated.value.code) == (401, "unauthenticated")
