"""Credentials never logged: a key or token a client puts in a URL is refused as before and
reaches no log line (Django's request logger, gunicorn's error and access logs), in the log
file or on stdout. /metrics compares its token as bytes: any other header is a 401."""

import io
import json
import logging
import socket
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from django.test import Client, override_settings

from tests.helpers import http
from tests.processes import start_web, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

METRICS_TOKEN = "mt-5f0c2e9a7b41d3c8"


def json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def raw_request(base_url: str, request: bytes) -> bytes:
    """Send bytes as they are (no client library would send a broken request line)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_a_key_or_token_in_a_query_string_reaches_no_log_line(tmp_path, api_key):
    log_file = tmp_path / "app.log"
    secrets = [api_key, api_key.split("_", 2)[2], METRICS_TOKEN]
    # An access log as an operator would turn it on.
    web, base_url = start_web(
        LOG_FILE=str(log_file),
        METRICS_TOKEN=METRICS_TOKEN,
        GUNICORN_CMD_ARGS="--access-logfile -",
    )
    try:
        status, _, text = http(f"{base_url}/ai/jobs?api_key={api_key}&limit=5")
        assert status == 400
        assert json.loads(text)["error"]["code"] == "credentials_in_url"
        status, _, text = http(f"{base_url}/ai/jobs?{api_key}")  # a bare key as the query
        assert status == 400
        status, _, text = http(f"{base_url}/metrics?token={METRICS_TOKEN}")
        assert status == 401
        assert json.loads(text)["error"]["code"] == "unauthenticated"
        status, _, _ = http(f"{base_url}/ai/jobs/{api_key}")  # a key in the path
        assert status == 401
        # A request line gunicorn refuses (a control character): its error log quotes it.
        answer = raw_request(
            base_url, f"GET /ai/jobs?api_key={api_key}&x=\x7f HTTP/1.1\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 400")
        wait_until(lambda: "Invalid HTTP request line" in log_file.read_text(), timeout=10)
    finally:
        web.stop()

    everything = log_file.read_text() + web.log()
    for secret in secrets:
        assert secret not in everything
    # The lines are all there, only without the secrets.
    messages = [line["message"] for line in json_lines(log_file)]
    assert messages.count("Bad Request: /ai/jobs") == 2
    assert "Unauthorized: /metrics" in messages
    prefix = "_".join(api_key.split("_", 2)[:2])  # aio_<public prefix>
    assert f"Unauthorized: /ai/jobs/{prefix}_[removed]" in messages  # the public prefix stays
    assert any('"GET /metrics HTTP/1.1" 401' in message for message in messages)
    assert any("Invalid HTTP request line: 'GET /ai/jobs?[removed]" in m for m in messages)


@pytest.fixture
def console():
    """What the configured console handler (LOGGING in settings) writes, during the test."""
    (handler,) = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_every_field_of_any_loggers_record_is_scrubbed_its_traceback_too(console):
    secret = "s3cr3t-callback-token"
    try:
        raise ValueError(f"callback https://hooks.example/cb?token={secret} refused")
    except ValueError:
        logging.getLogger("celery.app.trace").error(
            "task failed for %s",
            f"/cb?token={secret}",
            exc_info=True,
            extra={"url": f"https://hooks.example/cb?token={secret}"},
        )

    out = console.getvalue()
    assert secret not in out
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert line["message"] == "task failed for /cb?[removed]"
    assert line["url"] == "https://hooks.example/cb?[removed]"
    assert "https://hooks.example/cb?[removed] refused" in line["exc_info"]


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
@pytest.mark.parametrize(
    "header",
    [
        "Bearer m\u00e9trics",
        f"Bearer {METRICS_TOKEN}\u00e9",
        "Bearer \u2603",
        "Bearer",
        "bearer  ",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
    ],
    ids=["non-ascii", "token-plus-non-ascii", "non-latin-1", "no-token", "blank", "basic", "bare"],
)
def test_metrics_answers_401_to_any_other_authorization(header):
    response = Client().get("/metrics", headers={"Authorization": header})

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_answers_401_to_a_non_ascii_token_through_gunicorn():
    web, base_url = start_web(METRICS_TOKEN=METRICS_TOKEN)
    try:
        parts = urlsplit(base_url)
        connection = HTTPConnection(parts.hostname, parts.port, timeout=10)
        answers = []
        # The WSGI layer hands these bytes to Django decoded as latin-1.
        for value in (b"Bearer m\xc3\xa9trics", b"Bearer " + METRICS_TOKEN.encode() + b"\xff"):
            connection.putrequest("GET", "/metrics")
            connection.putheader("Authorization", value)
            connection.endheaders()
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
        connection.putrequest("GET", "/metrics")
        connection.putheader("Authorization", f"Bearer {METRICS_TOKEN}")
        connection.endheaders()
        allowed = connection.getresponse()
        allowed.read()
        connection.close()
    finally:
        web.stop()

    for status, body in answers:
        assert status == 401
        assert body["error"]["code"] == "unauthenticated"
    assert allowed.status == 200
