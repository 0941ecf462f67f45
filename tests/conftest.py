"""Shared fixtures: workspaces and keys, API clients, and the real processes end-to-end tests
need (model simulator, Celery workers). Redis is the real one, in a database of its own."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from actions.connections import set_connection
from core.redis_client import get_redis
from orchestrator import rate_limits
from tests import factories
from tests.fakes.mail_providers import FakeMailProviders
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.private_postgres import start_private_postgres
from tests.processes import RedisServer, Simulator, free_port, start_worker

# Every file, directory and process a test makes is gone after it, unless the test failed.
pytest_plugins = ["tests.housekeeping"]


@pytest.fixture(autouse=True)
def redis_db():
    """A clean Redis database for every test; refuses to wipe database 0."""
    client = get_redis()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0, "tests must run on their own Redis database (make test sets REDIS_URL)"
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def dead_redis(settings):
    """Point this process's Redis client at a server that is stopped."""
    server = RedisServer(free_port())
    server.stop()
    settings.REDIS_URL = server.url
    settings.REDIS_SOCKET_TIMEOUT_SECONDS = 0.5
    get_redis.cache_clear()
    rate_limits._script.cache_clear()
    yield
    get_redis.cache_clear()
    rate_limits._script.cache_clear()


@pytest.fixture
def workspace(db):
    return factories.make_workspace("ws-a")


@pytest.fixture
def other_workspace(db):
    return factories.make_workspace("ws-b")


@pytest.fixture
def api_key(workspace) -> str:
    return factories.make_api_key(workspace)


@pytest.fixture
def client_for():
    def build(key: str | None) -> APIClient:
        client = APIClient()
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return build


@pytest.fixture
def api_client(client_for, api_key) -> APIClient:
    return client_for(api_key)


@pytest.fixture(scope="session")
def simulator():
    sim = Simulator()
    yield sim
    sim.stop()


@pytest.fixture
def start_worker_with(transactional_db, simulator):
    """Start real Celery workers with extra environment; all are stopped after the test.

    Depends on transactional_db so workers stop before the database is flushed."""
    started = []

    def start(*, beat: bool = False, **env: str):
        worker = start_worker(simulator, beat=beat, **env)
        started.append(worker)
        return worker

    simulator.reset()
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker_with):
    return start_worker_with()


# --- Fake mail providers (Gmail API, Microsoft Graph) ---------------------------------------

GOOGLE_TOKEN = "ya29.test-google-token"
MS_TOKEN = "eyJ0.test-graph-token"


@pytest.fixture(scope="session")
def providers():
    fake = FakeMailProviders()
    yield fake
    fake.stop()


@pytest.fixture
def connected(providers, workspace):
    """The workspace holds valid Google and Microsoft connections the fake accepts."""
    providers.reset()
    providers.grant("google", GOOGLE_TOKEN, "google-refresh")
    providers.grant("microsoft", MS_TOKEN, "ms-refresh")
    set_connection(workspace_id=workspace.id, provider="google", access_token=GOOGLE_TOKEN,
                   refresh_token="google-refresh", expires_in_seconds=3600)  # fmt: skip
    set_connection(workspace_id=workspace.id, provider="microsoft", access_token=MS_TOKEN,
                   refresh_token="ms-refresh", expires_in_seconds=3600)  # fmt: skip
    return workspace


@pytest.fixture
def start_live_worker(start_worker_with, providers):
    def start(*, beat: bool = False, **env: str):
        return start_worker_with(
            beat=beat,
            ACTIONS_BACKEND="live",
            CONNECTION_ENCRYPTION_KEYS=",".join(settings.CONNECTION_ENCRYPTION_KEYS),
            **{**providers.env(), **env},
        )

    return start


# --- A webhook receiver; a PostgreSQL of a module's own -------------------------------------


@pytest.fixture
def receiver():
    """A real HTTP server recording the webhook deliveries it receives."""
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_postgres():
    """A migrated cluster of the module's own, which its tests may stop, kill and restart."""
    database = start_private_postgres()
    yield database
    database.server.stop()


@pytest.fixture
def postgres(private_postgres):
    """The module's cluster, running when the test starts and after it ends."""
    if not private_postgres.server.running:
        private_postgres.server.start()
    yield private_postgres
    if not private_postgres.server.running:
        private_postgres.server.start()
