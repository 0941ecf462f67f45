"""Specification of the connector settings: backend, provider URLs, encryption keys, the lease."""

import json
import sys

import pytest
from cryptography.fernet import Fernet

from tests.config.test_settings import assert_refuses_to_start, load_settings, start

NAMES = ["ACTIONS_BACKEND", "GMAIL_API_BASE_URL", "GRAPH_API_BASE_URL", "ACTION_LEASE_SECONDS",
         "ACTION_APPROVAL_TTL_SECONDS", "SEND_MAX_RETRIES"]  # fmt: skip


def connector_settings(**variables: str) -> dict:
    code = (
        "import json, sys, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))"
    )
    result = start([sys.executable, "-c", code], **variables)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


KEY = Fernet.generate_key().decode()
LIVE = {"SECRET_KEY": "s3cret", "ACTIONS_BACKEND": "live", "CONNECTION_ENCRYPTION_KEYS": KEY}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACTIONS_BACKEND", "smtp"),
        ("GMAIL_API_BASE_URL", "gmail.googleapis.com"),
        ("GRAPH_API_BASE_URL", "ftp://graph"),
        ("GOOGLE_TOKEN_URL", "nope"),
        ("MICROSOFT_TOKEN_URL", "nope"),
        ("CONNECTION_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("OUTBOUND_READ_TIMEOUT_SECONDS", "0"),
        ("SEND_MAX_RETRIES", "-1"),
        ("ACTION_APPROVAL_TTL_SECONDS", "0"),
    ],
)
def test_a_bad_connector_value_stops_start_up_naming_the_variable(variable, value):
    assert_refuses_to_start(variable, SECRET_KEY="s3cret", **{variable: value})


def test_live_backend_in_production_requires_encryption_keys():
    assert_refuses_to_start(
        "CONNECTION_ENCRYPTION_KEYS", SECRET_KEY="s3cret", ACTIONS_BACKEND="live"
    )


def test_live_backend_requires_a_lease_above_the_longest_connector_call():
    # (SEND_MAX_RETRIES + 2) x (5 + 30 + 30) = 325 s with the defaults.
    assert_refuses_to_start("ACTION_LEASE_SECONDS", **LIVE, ACTION_LEASE_SECONDS="300")
    assert load_settings(**LIVE, ACTION_LEASE_SECONDS="326")["DEBUG"] is False


def test_defaults_are_the_sandbox_and_the_real_services():
    assert connector_settings(DEBUG="true") == {
        "ACTIONS_BACKEND": "sandbox",
        "GMAIL_API_BASE_URL": "https://gmail.googleapis.com",
        "GRAPH_API_BASE_URL": "https://graph.microsoft.com",
        "ACTION_LEASE_SECONDS": 600,
        "ACTION_APPROVAL_TTL_SECONDS": 86400,
        "SEND_MAX_RETRIES": 3,
    }
    # The default lease satisfies the live backend's rule.
    assert connector_settings(**LIVE)["ACTIONS_BACKEND"] == "live"
