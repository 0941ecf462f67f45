"""Signed webhooks: delivered by a real worker to a real local receiver, retried with growing
gaps, every attempt recorded; URLs the SSRF guard refuses never get a job."""

import itertools
import json
import re

import pytest
import trustme
from django.contrib.auth.models import User
from standardwebhooks import Webhook, WebhookVerificationError

from core import redis_keys
from orchestrator import webhooks
from orchestrator.models import Job, WebhookDelivery
from orchestrator.webhooks import generate_webhook_secret
from tests import factories
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import submit, wait_for_job
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# The worker may call the local receiver: development settings, as the README says.
LOCAL = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}


@pytest.fixture
def local_webhooks(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def secret(workspace) -> str:
    workspace.webhook_secret = generate_webhook_secret()
    workspace.save()
    return workspace.webhook_secret


def verified(secret: str, received) -> dict:
    """The payload, after checking its Standard Webhooks signature."""
    return Webhook(secret).verify(received.body, received.headers)


def delivery_for(job_id) -> WebhookDelivery:
    return WebhookDelivery.objects.get(job_id=job_id)


def test_finished_job_is_posted_to_its_webhook_url_with_a_valid_signature(
    api_client, secret, receiver, local_webhooks, start_worker_with
):
    worker = start_worker_with(**LOCAL)
    response = submit(
        api_client, client_request_id="wh-1", prompt="Hi", webhook_url=f"{receiver.url}/hook"
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]

    (received,) = receiver.wait_for(1)

    payload = verified(secret, received)
    assert payload["type"] == "job.succeeded"
    assert (payload["job_id"], payload["status"]) == (job_id, "succeeded")
    assert payload["id"] == received.headers["webhook-id"] == str(delivery_for(job_id).id)
    assert set(payload) == {"type", "id", "job_id", "status", "created_at"}
    assert received.path == "/hook"
    with pytest.raises(WebhookVerificationError):  # positive control: another secret fails
        Webhook(generate_webhook_secret()).verify(received.body, received.headers)
    wait_until(lambda: delivery_for(job_id).status == "delivered", timeout=10)
    delivery = delivery_for(job_id)
    assert delivery.attempts == 1
    assert [(a.status_code, a.response_excerpt) for a in delivery.tries.all()] == [(200, "ok")]
    assert wait_for_job(job_id).status == Job.Status.SUCCEEDED, worker.log()[-2000:]


def test_failed_deliveries_are_retried_with_growing_gaps_and_every_attempt_recorded(
    api_client, workspace, secret, receiver, local_webhooks, start_worker_with
):
    workspace.webhook_url = f"{receiver.url}/default"
    workspace.save()
    receiver.answer(500, b"x" * 10_000, times=3)
    start_worker_with(WEBHOOK_RETRY_BACKOFF_SECONDS="1", **LOCAL)
    job_id = submit(api_client, client_request_id="wh-2", prompt="Hi").json()["id"]

    received = receiver.wait_for(4, timeout=40)

    assert {r.headers["webhook-id"] for r in received} == {str(delivery_for(job_id).id)}
    assert all(verified(secret, r)["type"] == "job.succeeded" for r in received)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
    assert gaps[0] < gaps[1] < gaps[2], gaps
    wait_until(lambda: delivery_for(job_id).status == "delivered", timeout=10)
    delivery = delivery_for(job_id)
    assert delivery.attempts == 4
    tries = list(delivery.tries.all())
    assert [t.status_code for t in tries] == [500, 500, 500, 200]
    # The receiver's body is never stored beyond a short excerpt.
    assert all(len(t.response_excerpt) <= 300 for t in tries)
    assert tries[0].response_excerpt.startswith("xxx")


def test_redirects_are_not_followed_and_delivery_gives_up_after_its_window(
    api_client, workspace, secret, receiver, local_webhooks, start_worker_with
):
    workspace.webhook_url = f"{receiver.url}/moved"
    workspace.save()
    receiver.answer(302, headers={"Location": f"{receiver.url}/elsewhere"}, times=20)
    start_worker_with(WEBHOOK_RETRY_FOR_SECONDS="1", WEBHOOK_RETRY_BACKOFF_SECONDS="1", **LOCAL)
    job_id = submit(api_client, client_request_id="wh-3", prompt="Hi").json()["id"]

    wait_until(
        lambda: WebhookDelivery.objects.filter(job_id=job_id, status="failed").exists(),
        timeout=30,
    )

    assert [r.path for r in receiver.received] == ["/moved"] * len(receiver.received)
    assert delivery_for(job_id).tries.first().status_code == 302


def test_cancelled_job_sends_its_event(
    api_client, workspace, secret, receiver, local_webhooks, start_worker_with
):
    workspace.webhook_url = f"{receiver.url}/events"
    workspace.save()
    job = factories.make_job(workspace)
    start_worker_with(**LOCAL)

    assert api_client.post(f"/ai/jobs/{job.id}/cancel").status_code == 200

    (received,) = receiver.wait_for(1)
    assert verified(secret, received)["type"] == "job.cancelled"


def test_action_parked_for_approval_sends_its_event_then_the_job_its_own(
    api_client, workspace, secret, receiver, local_webhooks, start_worker_with
):
    workspace.webhook_url = f"{receiver.url}/events"
    workspace.approval_required = ["task.create"]
    workspace.save()
    start_worker_with(**LOCAL)

    response = submit(
        api_client,
        client_request_id="wh-approval",
        prompt='CALL task.create {"title": "Needs a human"}',
    )
    assert response.status_code == 202, response.content

    received = receiver.wait_for(2)
    events = {verified(secret, r)["type"]: verified(secret, r) for r in received}
    assert set(events) == {"action.pending_approval", "job.succeeded"}
    assert events["action.pending_approval"]["job_id"] == response.json()["id"]


def test_admin_redeliver_posts_the_same_event_again(
    secret, workspace, receiver, local_webhooks, start_worker_with, client
):
    workspace.webhook_url = f"{receiver.url}/again"
    workspace.save()
    job = factories.make_job(workspace, status=Job.Status.SUCCEEDED)
    start_worker_with(**LOCAL)
    delivery = webhooks.record_job_event(job_id=job.id)
    receiver.wait_for(1)
    wait_until(lambda: delivery_for(job.id).status == "delivered", timeout=10)
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))

    response = client.post(
        "/admin/orchestrator/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [str(delivery.id)]},
    )

    assert response.status_code == 302
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == str(delivery.id)
    wait_until(lambda: delivery_for(job.id).tries.count() == 2, timeout=10)
    # Every attempt is visible on the delivery's admin page.
    page = client.get(f"/admin/orchestrator/webhookdelivery/{delivery.id}/change/")
    assert page.status_code == 200
    cells = re.findall(r'class="field-status_code">\s*(?:<p>)?(\d+)', page.content.decode())
    assert cells == ["200", "200"], cells


# --- The SSRF guard at submission ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://user:pw@127.0.0.1/hook",
        "http://127.0.0.1/hook",
        "ftp://example.com/hook",
    ],
)
def test_private_or_non_https_webhook_url_is_refused_at_submission(api_client, secret, url):
    response = submit(api_client, client_request_id="ssrf", prompt="Hi", webhook_url=url)

    assert response.status_code == 400, response.content
    assert "webhook_url" in response.json()["error"]["fields"]
    assert not Job.objects.exists()


def test_the_same_local_url_is_accepted_when_development_settings_allow_it(
    api_client, secret, local_webhooks
):
    response = submit(
        api_client, client_request_id="ok", prompt="Hi", webhook_url="http://127.0.0.1:9/hook"
    )

    assert response.status_code == 202, response.content


def test_webhook_url_needs_a_workspace_secret(api_client, local_webhooks):
    response = submit(
        api_client, client_request_id="nosecret", prompt="Hi", webhook_url="http://127.0.0.1/x"
    )

    assert response.status_code == 400
    assert "secret" in json.dumps(response.json()["error"])
    assert not Job.objects.exists()


UNSPECIFIED = ".".join(["0"] * 4)  # 0.0.0.0, spelt so the linter knows it is not a bind


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("100.64.0.1", False),
        ("172.16.0.1", False),
        (UNSPECIFIED, False),
        ("fd00::1", False),
        ("224.0.0.1", False),
    ],
)
def test_guard_tells_public_from_internal_addresses(address, public):
    assert webhooks.is_public_address(address) is public


def test_job_failed_by_the_sweeper_records_its_event_and_publishes_its_delivery(
    workspace, secret, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from orchestrator import services
    from tests.helpers import queue_length

    workspace.webhook_url = "https://hooks.example.com/jobs"  # never called: no worker runs
    workspace.save()
    job = factories.make_job(
        workspace,
        status=Job.Status.RUNNING,
        attempts=settings.JOB_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    services.requeue_stale_jobs()

    delivery = delivery_for(job.id)
    assert (delivery.event_type, delivery.payload["status"]) == ("job.failed", "failed")
    assert delivery.url == "https://hooks.example.com/jobs"
    # The delivery's message, after the sweeper's commit, in the webhooks' own queue.
    assert queue_length(redis_keys.WEBHOOK_QUEUE) == 1
    assert queue_length() == 0


def test_https_delivery_verifies_the_hosts_certificate_on_the_checked_address(
    workspace, secret, start_worker_with, tmp_path, settings
):
    settings.WEBHOOK_RETRY_FOR_SECONDS = 1  # the window is set where the event is recorded: here
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    receiver = WebhookReceiver(tls_cert=ca.issue_cert("localhost"))
    start_worker_with(
        WEBHOOK_CA_FILE=str(ca_file),
        WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
        WEBHOOK_RETRY_FOR_SECONDS="1",
        WEBHOOK_RETRY_BACKOFF_SECONDS="1",
    )
    try:
        by_name = factories.make_job(
            workspace, status=Job.Status.SUCCEEDED, webhook_url=f"{receiver.url}/secure"
        )
        # The same server by its address, which its certificate does not name: refused.
        by_address = factories.make_job(
            workspace,
            status=Job.Status.SUCCEEDED,
            webhook_url=f"https://127.0.0.1:{receiver.port}/secure",
        )
        webhooks.record_job_event(job_id=by_name.id)
        webhooks.record_job_event(job_id=by_address.id)

        (received,) = receiver.wait_for(1)
        wait_until(
            lambda: WebhookDelivery.objects.filter(job_id=by_address.id, status="failed").exists(),
            timeout=30,
        )
    finally:
        receiver.stop()

    assert verified(secret, received)["job_id"] == str(by_name.id)
    # Connected to the checked address, yet TLS and Host name the URL's host.
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["host"] == f"localhost:{receiver.port}"
    assert "localhost" in receiver.server_names
    assert delivery_for(by_name.id).status == "delivered"
    assert "certificate" in delivery_for(by_address.id).tries.first().error.lower()
    assert len(receiver.received) == 1
