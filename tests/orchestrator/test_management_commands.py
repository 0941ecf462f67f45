"""Specifies the operator commands: create_workspace, create_api_key, ensure_demo_workspace and
requeue_stale_jobs, as the runbook runs them (stdout, stderr, CommandError, a real shell call)."""

import io
import re
import stat
import subprocess
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from orchestrator.api_keys import revoke_api_key
from orchestrator.models import ApiKey, Job, Workspace
from tests.factories import make_job, make_workspace
from tests.helpers import queue_length
from tests.processes import ROOT, process_env

KEY_PATTERN = re.compile(r"aio_[0-9a-f]+_[A-Za-z0-9_-]+")


# --- Local helpers --------------------------------------------------------------------------


def run(command: str, *args: str) -> tuple[str, str]:
    """call_command with captured output; returns (stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def manage_py(*args: str) -> subprocess.CompletedProcess:
    """`.venv/bin/python manage.py ...` as an operator's shell runs it, on the test database."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT,
        env=process_env(),  # ENV_FILE="", test DATABASE_URL, REDIS_URL, SECRET_KEY
        capture_output=True,
        text=True,
        timeout=60,
    )


def key_row(plaintext: str) -> ApiKey:
    return ApiKey.objects.get(prefix=plaintext.split("_", 2)[1])


def assert_key_works(key: str, workspace_id: str) -> None:
    """The key submits and reads a job of its workspace through the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    created = client.post("/ai/jobs", {"client_request_id": "cmd-1", "prompt": "Hi"}, format="json")
    assert created.status_code == 202, created.content
    assert client.get(f"/ai/jobs/{created.json()['id']}").status_code == 200
    assert Job.objects.get(pk=created.json()["id"]).workspace_id == workspace_id


def assert_key_refused(key: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.post("/ai/jobs", {"client_request_id": "x", "prompt": "Hi"}).status_code == 401


@pytest.fixture
def ws_123(db) -> Workspace:
    return make_workspace("ws-123", name="Acme")


# --- create_workspace --------------------------------------------------------------------------


def test_create_workspace_follows_the_default_actions(db, settings):
    settings.ALLOW_ACTIONS_DEFAULT = ["task.create"]

    run("create_workspace", "ws-123", "--name", "Acme")

    workspace = Workspace.objects.get(pk="ws-123")
    assert workspace.name == "Acme"
    assert workspace.allowed_actions is None
    assert workspace.effective_allowed_actions == ["task.create"]
    # A later change of the default reaches the workspace.
    settings.ALLOW_ACTIONS_DEFAULT = ["gmail.send", "task.create"]
    assert workspace.effective_allowed_actions == ["gmail.send", "task.create"]


def test_create_workspace_with_allowed_actions_keeps_its_own_list(db, settings):
    settings.ALLOW_ACTIONS_DEFAULT = ["task.create"]

    run("create_workspace", "ws-123", "--name", "Acme", "--allowed-actions", "gmail.send")

    workspace = Workspace.objects.get(pk="ws-123")
    assert workspace.allowed_actions == ["gmail.send"]
    assert workspace.effective_allowed_actions == ["gmail.send"]


@pytest.mark.parametrize(
    ("args", "message_parts"),
    [
        (["ws-123", "--name", "Again"], ["ws-123", "already exists"]),
        (["ws 123", "--name", "Acme"], ["ws 123", "letters, digits"]),
        (["ws/123", "--name", "Acme"], ["ws/123", "letters, digits"]),
        (
            ["ws-456", "--name", "Acme", "--allowed-actions", "task.create,gmail.delete"],
            ["gmail.delete", "unknown"],
        ),
    ],
    ids=["existing id", "space in id", "slash in id", "unknown action"],
)
def test_create_workspace_refuses_with_a_clear_message(ws_123, args, message_parts):
    with pytest.raises(CommandError) as error:
        run("create_workspace", *args)

    for part in message_parts:
        assert part in str(error.value)
    # Nothing new, and the existing workspace is untouched.
    assert list(Workspace.objects.values_list("pk", "name")) == [("ws-123", "Acme")]


# --- create_api_key ----------------------------------------------------------------------------


def test_create_api_key_prints_only_a_working_key(ws_123):
    stdout, stderr = run(
        "create_api_key", "--workspace", "ws-123", "--scopes", "jobs:read,jobs:write"
    )

    key = stdout.removesuffix("\n")
    assert stdout == key + "\n"
    assert KEY_PATTERN.fullmatch(key)
    assert key not in stderr  # shown once, on stdout only
    row = key_row(key)
    assert row.workspace_id == "ws-123"
    assert sorted(row.scopes) == ["jobs:read", "jobs:write"]
    assert row.expires_at is None
    assert_key_works(key, "ws-123")


def test_create_api_key_with_name_and_expiry(ws_123):
    stdout, _ = run(
        "create_api_key",
        "--workspace=ws-123",
        "--scopes=jobs:read",
        "--name=ci",
        "--expires-in-days=7",
    )

    row = key_row(stdout.strip())
    assert row.name == "ci"
    assert row.scopes == ["jobs:read"]
    assert abs(row.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("args", "message_part"),
    [
        (["--workspace", "ws-nope", "--scopes", "jobs:read"], "ws-nope"),
        (["--workspace", "ws-123", "--scopes", "jobs:read,jobs:delete"], "jobs:delete"),
        (
            ["--workspace", "ws-123", "--scopes", "jobs:read", "--expires-in-days", "0"],
            "--expires-in-days",
        ),
        (
            ["--workspace", "ws-123", "--scopes", "jobs:read", "--expires-in-days", "-3"],
            "--expires-in-days",
        ),
    ],
    ids=["unknown workspace", "unknown scope", "zero days", "negative days"],
)
def test_create_api_key_refuses_with_a_clear_message(ws_123, args, message_part):
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=re.escape(message_part)):
        call_command("create_api_key", *args, stdout=stdout, stderr=stderr)

    assert stdout.getvalue() == ""
    assert not ApiKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_create_api_key_in_a_shell_gives_the_key_alone_on_stdout(ws_123):
    # KEY=$(python manage.py create_api_key ...) must capture exactly the key.
    result = manage_py(
        "create_api_key", "--workspace", "ws-123", "--scopes", "jobs:read,jobs:write"
    )

    assert result.returncode == 0, result.stderr
    key = result.stdout.removesuffix("\n")
    assert result.stdout == key + "\n"
    assert KEY_PATTERN.fullmatch(key), result.stdout
    assert_key_works(key, "ws-123")


@pytest.mark.django_db(transaction=True)
def test_create_api_key_in_a_shell_fails_with_nothing_on_stdout(ws_123):
    result = manage_py("create_api_key", "--workspace", "ws-nope", "--scopes", "jobs:read")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "ws-nope" in result.stderr


# --- ensure_demo_workspace ---------------------------------------------------------------------


def test_ensure_demo_workspace_creates_the_workspace_and_a_working_key(db, tmp_path):
    key_file = tmp_path / "run" / "demo-api-key"

    stdout, _ = run("ensure_demo_workspace", "--key-file", str(key_file))

    key = stdout.removesuffix("\n")
    assert KEY_PATTERN.fullmatch(key)
    assert Workspace.objects.filter(pk="ws-demo").exists()
    assert key_file.read_text().strip() == key
    # The key file is a secret: readable by its owner only.
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert_key_works(key, "ws-demo")


def test_ensure_demo_workspace_second_run_prints_the_same_key(db, tmp_path):
    key_file = tmp_path / "demo-api-key"
    first, _ = run("ensure_demo_workspace", "--key-file", str(key_file))

    second, _ = run("ensure_demo_workspace", "--key-file", str(key_file))

    assert second == first
    assert ApiKey.objects.count() == 1
    assert Workspace.objects.count() == 1


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_ensure_demo_workspace_replaces_a_dead_key(db, tmp_path, how):
    key_file = tmp_path / "demo-api-key"
    old_key = run("ensure_demo_workspace", "--key-file", str(key_file))[0].strip()
    if how == "revoked":
        revoke_api_key(api_key=key_row(old_key))
    else:
        ApiKey.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    new_key = run("ensure_demo_workspace", "--key-file", str(key_file))[0].strip()

    assert new_key != old_key
    assert key_file.read_text().strip() == new_key
    assert ApiKey.objects.count() == 2
    assert_key_refused(old_key)
    assert_key_works(new_key, "ws-demo")


# --- requeue_stale_jobs ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("queued_minutes_ago", "republished"), [(10, 1), (0, 0)])
def test_requeue_stale_jobs_reports_and_publishes_what_it_republished(
    workspace, queued_minutes_ago, republished
):
    make_job(workspace, enqueued_at=timezone.now() - timedelta(minutes=queued_minutes_ago))
    assert queue_length() == 0

    stdout, _ = run("requeue_stale_jobs")

    assert stdout == f"republished {republished} jobs\n"
    assert queue_length() == republished


# --- configure_workspace ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [("task.create,gmail.send", ["task.create", "gmail.send"]), ("", None)],
    ids=["own-list", "empty-returns-to-default"],
)
def test_configure_workspace_sets_or_clears_the_allowed_actions(ws_123, value, stored):
    ws_123.allowed_actions = ["outlook.send"]
    ws_123.save()

    run("configure_workspace", "ws-123", "--allowed-actions", value)

    ws_123.refresh_from_db()
    assert ws_123.allowed_actions == stored


def test_configure_workspace_refuses_unknown_actions_and_workspaces(ws_123):
    with pytest.raises(CommandError, match=r"sms\.send"):
        run("configure_workspace", "ws-123", "--allowed-actions", "sms.send")
    with pytest.raises(CommandError, match="ws-nope"):
        run("configure_workspace", "ws-nope", "--allowed-actions", "task.create")
    ws_123.refresh_from_db()
    assert ws_123.allowed_actions is None


@pytest.mark.parametrize(
    ("value", "stored"), [("250", 250), ("0", 0), ("", None)], ids=["own", "unlimited", "default"]
)
def test_configure_workspace_sets_or_clears_the_rate_limit(ws_123, value, stored):
    ws_123.rate_limit_per_minute = 7
    ws_123.save()

    _, stderr = run("configure_workspace", "ws-123", "--rate-limit-per-minute", value)

    ws_123.refresh_from_db()
    assert ws_123.rate_limit_per_minute == stored
    assert "rate limit" in stderr


@pytest.mark.parametrize("value", ["-1", "100001", "ten"])
def test_configure_workspace_refuses_a_bad_rate_limit(ws_123, value):
    with pytest.raises(CommandError):
        run("configure_workspace", "ws-123", "--rate-limit-per-minute", value)
    ws_123.refresh_from_db()
    assert ws_123.rate_limit_per_minute is None


def test_configure_workspace_rotates_the_webhook_secret_printing_it_alone(ws_123, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    first, _ = run("configure_workspace", "ws-123", "--webhook-url", "https://127.0.0.1/hook")
    ws_123.refresh_from_db()
    assert first.strip() == ws_123.webhook_secret and first.startswith("whsec_")
    assert ws_123.webhook_url == "https://127.0.0.1/hook"

    second, _ = run("configure_workspace", "ws-123", "--rotate-webhook-secret")
    unchanged, _ = run("configure_workspace", "ws-123", "--rate-limit-per-minute", "5")

    ws_123.refresh_from_db()
    assert second.strip() == ws_123.webhook_secret != first.strip()
    assert unchanged == ""  # no rotation, nothing on stdout


def test_configure_workspace_refuses_a_private_webhook_url(ws_123):
    with pytest.raises(CommandError, match="non-public"):
        run("configure_workspace", "ws-123", "--webhook-url", "https://10.0.0.1/hook")
    ws_123.refresh_from_db()
    assert ws_123.webhook_url == "" and ws_123.webhook_secret == ""
