"""Specification of configuration: read from the environment (and an optional .env file), with
documented defaults, and a bad value stops start-up with an error naming the variable.

Every case runs a fresh interpreter, so the settings are parsed exactly as a process would at
start-up, with none of the test run's own variables inherited.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"

# Only what an interpreter needs to run; no configuration variable of the test run leaks in.
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYTHONDONTWRITEBYTECODE")

# The settings a defaults check reads, as a JSON object printed by the child.
_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "DB_NAME": db["NAME"], "DB_HOST": db["HOST"], "DB_PORT": int(db["PORT"]),
    "DB_USER": db["USER"], "DB_ENGINE": db["ENGINE"],
    **{name: getattr(s, name) for name in NAMES},
}))
"""
_NAMES = [
    "DEBUG",
    "REDIS_URL",
    "ACTIONS_ENABLED",
    "ALLOW_ACTIONS_DEFAULT",
    "AI_MODEL",
    "AI_MAX_OUTPUT_TOKENS",
    "OPENAI_BASE_URL",
    "REDIS_SOCKET_TIMEOUT_SECONDS",
    "REDIS_MAX_CONNECTIONS",
    "IDEMPOTENCY_TTL_SECONDS",
    "JOB_LEASE_SECONDS",
    "BROKER_VISIBILITY_TIMEOUT_SECONDS",
    "RATE_LIMIT_PER_MINUTE",
    "AUTH_FAILURES_PER_MINUTE",
    "WEBHOOK_ALLOW_HTTP",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
    "WEBHOOK_RETRY_FOR_SECONDS",
]


def child_env(**variables: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
    env.update(ENV_FILE="", DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    env.update(variables)
    return env


def start(command: list[str], **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=child_env(**variables), capture_output=True, text=True, timeout=60
    )


def load_settings(**variables: str) -> dict:
    """The settings a process started with exactly `variables` ends up with."""
    code = f"NAMES = {_NAMES!r}\n{_PROBE}"
    result = start([sys.executable, "-c", code], **variables)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refuses_to_start(variable: str, **variables: str) -> str:
    """Start-up stops with ImproperlyConfigured naming `variable`; returns the error output."""
    result = start([sys.executable, "-c", "import django; django.setup()"], **variables)
    assert result.returncode != 0, f"started with {variables}"
    assert "ImproperlyConfigured" in result.stderr, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert variable in message, message
    return message


# --- Defaults ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def defaults():
    return load_settings(DEBUG="true")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DEBUG", True),
        ("DB_ENGINE", "django_prometheus.db.backends.postgresql"),
        ("DB_NAME", "orchestrator"),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", 5432),
        ("DB_USER", "postgres"),
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("ACTIONS_ENABLED", True),
        ("ALLOW_ACTIONS_DEFAULT", ["gmail.send", "outlook.send", "task.create"]),
        ("AI_MODEL", "gpt-4o-mini"),
        ("AI_MAX_OUTPUT_TOKENS", 800),
        ("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1"),
        ("REDIS_SOCKET_TIMEOUT_SECONDS", 5),
        ("REDIS_MAX_CONNECTIONS", 10),
        ("IDEMPOTENCY_TTL_SECONDS", 86400),
        ("RATE_LIMIT_PER_MINUTE", 100),
        ("AUTH_FAILURES_PER_MINUTE", 20),
        ("WEBHOOK_ALLOW_HTTP", False),
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False),
        ("WEBHOOK_RETRY_FOR_SECONDS", 86400),
    ],
)
def test_local_development_needs_no_variable_but_debug(defaults, name, expected):
    assert defaults[name] == expected


def test_default_job_lease_and_visibility_timeout_satisfy_their_own_rules(defaults):
    # The defaults (lease 600 s, visibility 3600 s) must pass the checks start-up applies.
    assert defaults["BROKER_VISIBILITY_TIMEOUT_SECONDS"] > defaults["JOB_LEASE_SECONDS"]


def test_an_openai_api_key_switches_the_default_model_endpoint_to_openai():
    settings = load_settings(DEBUG="true", OPENAI_API_KEY="sk-test")
    assert settings["OPENAI_BASE_URL"] == "https://api.openai.com/v1"


def test_an_explicit_openai_base_url_wins_over_the_default():
    settings = load_settings(
        DEBUG="true", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9999/v1"
    )
    assert settings["OPENAI_BASE_URL"] == "http://127.0.0.1:9999/v1"


def test_production_settings_start_with_the_required_variables():
    """Positive control for the refusals below: DEBUG false plus the required variables."""
    settings = load_settings(
        SECRET_KEY="s3cret",
        DATABASE_URL="postgres://app:pw@db.internal:6543/orch",
        REDIS_URL="rediss://cache.internal:6380/2",
    )
    assert settings["DEBUG"] is False
    assert (settings["DB_HOST"], settings["DB_PORT"], settings["DB_NAME"]) == (
        "db.internal",
        6543,
        "orch",
    )
    assert settings["REDIS_URL"] == "rediss://cache.internal:6380/2"


# --- Booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_actions_enabled_accepts_the_usual_spellings_in_any_case(raw, expected):
    assert load_settings(DEBUG="true", ACTIONS_ENABLED=raw)["ACTIONS_ENABLED"] is expected


# --- Refusals ---------------------------------------------------------------------------------


def test_secret_key_is_required_when_debug_is_false():
    assert_refuses_to_start("SECRET_KEY", DEBUG="false")


def test_debug_unset_means_production_and_requires_a_secret_key():
    assert_refuses_to_start("SECRET_KEY")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "perhaps"),
        ("ACTIONS_ENABLED", "maybe"),
        ("ACTIONS_ENABLED", "flase"),
        ("ALLOW_ACTIONS_DEFAULT", "gmail.send,sms.send"),
        ("AI_MAX_OUTPUT_TOKENS", "abc"),
        ("AI_MAX_OUTPUT_TOKENS", "0"),
        ("AI_MAX_OUTPUT_TOKENS", "-5"),
        ("DATABASE_URL", "mysql://x/y"),
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://x"),
        ("OPENAI_BASE_URL", "ftp://x"),
        ("AI_REQUEST_TIMEOUT_SECONDS", "abc"),
        ("AI_REQUEST_TIMEOUT_SECONDS", "0"),
        ("AI_REQUEST_TIMEOUT_SECONDS", "nan"),
        ("REDIS_SOCKET_TIMEOUT_SECONDS", "nan"),
        ("REDIS_SOCKET_TIMEOUT_SECONDS", "inf"),
        ("IDEMPOTENCY_TTL_SECONDS", "0"),
        ("LOG_FILE_MAX_BYTES", "10"),
        ("METRICS_WORKSPACE_LABEL", "maybe"),
        ("LOG_FILE_BACKUPS", "many"),
        ("LOG_FILE", "/proc/no-such-dir/app.log"),
        ("RATE_LIMIT_PER_MINUTE", "-1"),
        ("RATE_LIMIT_PER_MINUTE", "lots"),
        ("AUTH_FAILURES_PER_MINUTE", "0"),
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "sometimes"),
        ("WEBHOOK_RETRY_BACKOFF_SECONDS", "0"),
        ("WEBHOOK_CA_FILE", "/nonexistent/ca.pem"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, balancer.internal"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value):
    # A secret key is given so that only the variable under test can stop start-up.
    message = assert_refuses_to_start(variable, SECRET_KEY="s3cret", **{variable: value})
    if variable == "ALLOW_ACTIONS_DEFAULT":
        assert "sms.send" in message


@pytest.mark.parametrize(
    ("rounds", "timeout", "lease", "starts"),
    [
        # The longest job is (AI_MAX_TOOL_ROUNDS + 1) x AI_REQUEST_TIMEOUT_SECONDS = 60 s.
        ("1", "30", "59", False),
        ("1", "30", "60", False),
        ("1", "30", "61", True),
        # The defaults: 4 model calls of 60 s = 240 s.
        (None, None, "200", False),
    ],
)
def test_job_lease_must_outlast_the_longest_job(rounds, timeout, lease, starts):
    variables = {"DEBUG": "true", "JOB_LEASE_SECONDS": lease}
    if rounds is not None:
        variables.update(AI_MAX_TOOL_ROUNDS=rounds, AI_REQUEST_TIMEOUT_SECONDS=timeout)
    if starts:
        assert load_settings(**variables)["JOB_LEASE_SECONDS"] == int(lease)
    else:
        assert_refuses_to_start("JOB_LEASE_SECONDS", **variables)


@pytest.mark.parametrize(("visibility", "starts"), [("299", False), ("300", False), ("301", True)])
def test_broker_visibility_timeout_must_exceed_the_job_lease(visibility, starts):
    variables = {
        "DEBUG": "true",
        "JOB_LEASE_SECONDS": "300",
        "BROKER_VISIBILITY_TIMEOUT_SECONDS": visibility,
    }
    if starts:
        settings = load_settings(**variables)
        assert settings["BROKER_VISIBILITY_TIMEOUT_SECONDS"] == int(visibility)
    else:
        assert_refuses_to_start("BROKER_VISIBILITY_TIMEOUT_SECONDS", **variables)


# --- The .env file ----------------------------------------------------------------------------


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "local.env"
    path.write_text("AI_MODEL=from-file\nDEBUG=true\n")
    return path


def test_the_env_file_named_by_env_file_is_read(env_file):
    settings = load_settings(ENV_FILE=str(env_file))
    assert (settings["AI_MODEL"], settings["DEBUG"]) == ("from-file", True)


def test_a_variable_in_the_environment_wins_over_the_env_file(env_file):
    assert load_settings(ENV_FILE=str(env_file), AI_MODEL="from-env")["AI_MODEL"] == "from-env"


# --- Celery -----------------------------------------------------------------------------------


def test_celery_refuses_to_start_with_a_bad_value_naming_the_variable():
    result = start([str(CELERY), "-A", "config", "report"], DEBUG="true", ACTIONS_ENABLED="maybe")
    assert result.returncode != 0
    assert "ACTIONS_ENABLED" in result.stdout + result.stderr


def test_celery_loads_the_project_with_good_values():
    """Positive control: the same command succeeds when the configuration is valid."""
    result = start([str(CELERY), "-A", "config", "report"], DEBUG="true", ACTIONS_ENABLED="false")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("token", ["tökén", "two\tparts", "nul\x01"])
def test_a_metrics_token_no_scraper_could_send_stops_start_up(token):
    assert_refuses_to_start("METRICS_TOKEN", DEBUG="true", METRICS_TOKEN=token)


@pytest.mark.parametrize(("lease", "starts"), [("300", False), ("325", False), ("326", True)])
def test_with_live_connectors_the_job_lease_must_outlast_the_longest_connector_call(lease, starts):
    # The defaults: (SEND_MAX_RETRIES 3 + 2) x (connect 5 + read 30 + retry wait 30) = 325 s.
    variables = {"DEBUG": "true", "ACTIONS_BACKEND": "live", "JOB_LEASE_SECONDS": lease}
    if starts:
        assert load_settings(**variables)["JOB_LEASE_SECONDS"] == int(lease)
    else:
        assert_refuses_to_start("JOB_LEASE_SECONDS", **variables)
