"""The banner `make run` prints once /ready answers: every address a newcomer needs."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.run_stack import RUN_DIR, Banner, display
from scripts.stores import Stores


class GrafanaHealth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def banner(*, flower_generated: bool = True) -> Banner:
    return Banner(
        ports={"WEB_PORT": 8123, "FLOWER_PORT": 5600, "SIMULATOR_PORT": 8124},
        api_key="aio_demo_key",
        flower_user="admin",
        flower_generated=flower_generated,
        stores=Stores(
            "postgres://postgres:pw@127.0.0.1:5432/orchestrator",
            "redis://127.0.0.1:6380/0",
            "system",
            "project-local",
        ),
    )


def test_the_banner_lists_api_docs_admin_flower_and_the_stores(monkeypatch):
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:9")  # nothing there
    text = banner().text()

    assert "API         http://127.0.0.1:8123/ai/jobs" in text
    assert "API docs    http://127.0.0.1:8123/api/docs/" in text
    assert "Admin       http://127.0.0.1:8123/admin/" in text
    assert "create a user: .venv/bin/python manage.py createsuperuser" in text
    flower_file = display(RUN_DIR / "flower-password")
    assert f"Flower      http://127.0.0.1:5600/   user admin, password in {flower_file}" in text
    assert "postgres://postgres:***@127.0.0.1:5432/orchestrator (system)" in text
    assert "redis://127.0.0.1:6380/0 (project-local)" in text
    assert "pw@" not in text
    assert "Bearer aio_demo_key" in text
    assert "Grafana" not in text


@pytest.fixture
def grafana():
    server = ThreadingHTTPServer(("127.0.0.1", 0), GrafanaHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_banner_lists_grafana_when_compose_runs_it(monkeypatch, grafana):
    monkeypatch.setenv("GRAFANA_URL", grafana)

    assert (
        f"Grafana     {grafana}/   user admin, password GRAFANA_ADMIN_PASSWORD" in banner().text()
    )


def test_flower_credentials_from_the_environment_are_not_pointed_at_a_file(monkeypatch):
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:9")

    text = banner(flower_generated=False).text()

    assert "password from FLOWER_BASIC_AUTH" in text
    assert "flower-password" not in text
