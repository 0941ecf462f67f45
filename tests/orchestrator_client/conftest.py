"""The client's tests run against gunicorn serving the app on the test database and Redis, with
a Celery worker where jobs must run."""

import json
from urllib.parse import urlsplit

import pytest

from orchestrator.webhooks import generate_webhook_secret
from tests import factories
from tests.fakes.tcp_proxy import TcpProxy
from tests.processes import start_web

# Webhooks to the local receiver: plain http on loopback.
LOCAL = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
ALL_SCOPES = ["jobs:read", "jobs:write", "actions:approve"]
TASK = {"title": "Pay the invoice", "priority": "high"}


def propose_task(title: str) -> str:
    """A prompt that makes the model simulator propose one task.create call."""
    return f"CALL task.create {json.dumps({**TASK, 'title': title})}"


@pytest.fixture(scope="module")
def web(django_db_setup):
    """gunicorn, shared by a module's tests (each test's rows are flushed after it)."""
    process, base_url = start_web(**LOCAL)
    yield base_url
    process.stop()


@pytest.fixture
def key(workspace) -> str:
    return factories.make_api_key(workspace, scopes=ALL_SCOPES)


@pytest.fixture
def local_worker(start_worker_with):
    return start_worker_with(**LOCAL)


@pytest.fixture
def approval_workspace(workspace):
    """task.create waits for a human decision in this workspace."""
    workspace.approval_required = ["task.create"]
    workspace.save()
    return workspace


@pytest.fixture
def signed_workspace(workspace):
    workspace.webhook_secret = generate_webhook_secret()
    workspace.save()
    return workspace


@pytest.fixture
def proxy(web):
    """A closed port in front of gunicorn: connections are refused until the test opens it."""
    proxy = TcpProxy(urlsplit(web).port)
    yield proxy
    proxy.close()
