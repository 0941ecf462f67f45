"""Webhook addresses: an IPv6 address that wraps an internal IPv4 address (NAT64, 6to4,
IPv4-compatible, IPv4-mapped, Teredo) is as internal as the address it wraps. Refused when a
job names it, when a workspace is configured with it, and at every delivery attempt, where
nothing connects to it."""

import pytest

from orchestrator import webhooks
from orchestrator.models import Job, WebhookAttempt
from orchestrator.webhooks import WebhookDeliveryFailed, generate_webhook_secret
from orchestrator.workspaces import WorkspaceError, configure_workspace
from tests import factories
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import submit

pytestmark = pytest.mark.django_db(transaction=True)

METADATA = "a9fe:a9fe"  # 169.254.169.254, the cloud metadata service, in hex
# Teredo: server 65.54.227.120 (public), client 10.0.0.1 stored inverted (0xf5fffffe).
TEREDO_PRIVATE_CLIENT = "2001:0:4136:e378:8000:63bf:f5ff:fffe"

INTERNAL = [
    pytest.param(f"64:ff9b::{METADATA}", id="nat64-metadata"),
    pytest.param("64:ff9b::7f00:1", id="nat64-loopback"),
    pytest.param(f"64:ff9b:1::{METADATA}", id="nat64-local-use"),
    pytest.param(f"2002:{METADATA}::1", id="6to4-metadata"),
    pytest.param("2002:a00:1::1", id="6to4-private"),
    pytest.param("::169.254.169.254", id="ipv4-compatible-metadata"),
    pytest.param("::ffff:127.0.0.1", id="ipv4-mapped-loopback"),
    pytest.param(TEREDO_PRIVATE_CLIENT, id="teredo-private-client"),
    pytest.param("fec0::1", id="site-local"),
    pytest.param("3fff::1", id="documentation-3fff"),
    pytest.param("ff0e::1", id="global-multicast"),
]

PUBLIC = [
    pytest.param("2606:4700:4700::1111", id="global-ipv6"),
    pytest.param("64:ff9b::808:808", id="nat64-of-a-public-address"),
    pytest.param("::ffff:8.8.8.8", id="ipv4-mapped-public"),
]


@pytest.fixture
def secret(workspace) -> str:
    workspace.webhook_secret = generate_webhook_secret()
    workspace.save()
    return workspace.webhook_secret


@pytest.mark.parametrize("address", INTERNAL)
def test_a_job_naming_an_internal_address_in_ipv6_clothing_is_refused(api_client, secret, address):
    response = submit(
        api_client, client_request_id="ssrf", prompt="Hi", webhook_url=f"https://[{address}]/hook"
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "non-public address" in " ".join(error["fields"]["webhook_url"])
    assert not Job.objects.exists()


@pytest.mark.parametrize("address", PUBLIC)
def test_a_job_naming_a_public_address_is_accepted(api_client, secret, address):
    response = submit(
        api_client, client_request_id="ok", prompt="Hi", webhook_url=f"https://[{address}]/hook"
    )

    assert response.status_code == 202, response.content


@pytest.mark.parametrize("address", INTERNAL)
def test_a_workspace_cannot_be_configured_with_such_an_address(workspace, address):
    with pytest.raises(WorkspaceError, match="non-public address"):
        configure_workspace(workspace=workspace, webhook_url=f"https://[{address}]/hook")

    workspace.refresh_from_db()
    assert workspace.webhook_url == ""


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "address",
    [
        # Each of these reaches (or is translated to) the receiver's 127.0.0.1.
        pytest.param("64:ff9b::7f00:1", id="nat64-loopback"),
        pytest.param("::127.0.0.1", id="ipv4-compatible-loopback"),
        pytest.param("2002:7f00:1::1", id="6to4-loopback"),
        pytest.param("::ffff:127.0.0.1", id="ipv4-mapped-loopback"),
    ],
)
def test_a_delivery_to_such_an_address_is_refused_without_connecting(
    workspace, secret, receiver, settings, address
):
    # Stored before the name resolved there (DNS changes): the attempt checks again.
    settings.WEBHOOK_ALLOW_HTTP = True  # the receiver speaks http; addresses are still checked
    job = factories.make_job(
        workspace,
        status=Job.Status.SUCCEEDED,
        webhook_url=f"http://[{address}]:{receiver.port}/hook",
    )
    delivery = webhooks.record_job_event(job_id=job.id)

    with pytest.raises(WebhookDeliveryFailed):
        webhooks.deliver_webhook(delivery_id=str(delivery.pk))

    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert "non-public address" in attempt.error
    assert attempt.status_code is None
    assert receiver.received == []
