"""Specification of list_api_keys and revoke_api_key: what an operator sees of a key (never its
secret or digest), and a revocation that every web process honours from its next request."""

import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orchestrator.api_keys import issue_api_key
from orchestrator.models import ApiKey
from tests.factories import make_api_key
from tests.helpers import http
from tests.processes import ROOT, process_env, start_web

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def row_of(output: str, prefix: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(prefix)]
    return line


# --- list_api_keys ------------------------------------------------------------------------------


def test_lists_every_key_with_what_an_operator_needs_and_no_secret(workspace, other_workspace):
    issued = issue_api_key(workspace=workspace, scopes=["jobs:read"], name="billing-sync")
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=timezone.now())
    theirs = issue_api_key(workspace=other_workspace, scopes=["jobs:write"], name="crm")
    secret = issued.plaintext.split("_", 2)[2]

    stdout, _ = run("list_api_keys")

    header = stdout.splitlines()[0].split()
    assert header[:4] == ["prefix", "workspace", "name", "scopes"]
    line = row_of(stdout, issued.api_key.prefix)
    assert "ws-a" in line and "billing-sync" in line and "jobs:read" in line
    assert row_of(stdout, theirs.api_key.prefix)
    # Never the secret, nor its digest.
    assert secret not in stdout
    assert issued.api_key.digest not in stdout and theirs.api_key.digest not in stdout


def test_shows_created_last_used_expiry_and_revocation_in_utc(workspace):
    key = issue_api_key(workspace=workspace, scopes=["jobs:read"]).api_key
    revoked_at = timezone.now().replace(microsecond=0)
    ApiKey.objects.filter(pk=key.pk).update(
        revoked_at=revoked_at, expires_at=revoked_at + timedelta(days=30)
    )

    stdout, _ = run("list_api_keys")

    line = row_of(stdout, key.prefix)
    cells = line.split()
    assert cells[-1] == revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # revoked
    assert cells[-2] == (revoked_at + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cells[-3] == "-"  # never used
    assert cells[-4] == key.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_workspace_option_lists_that_workspace_only(workspace, other_workspace):
    ours = issue_api_key(workspace=workspace, scopes=["jobs:read"]).api_key
    theirs = issue_api_key(workspace=other_workspace, scopes=["jobs:read"]).api_key

    stdout, _ = run("list_api_keys", "--workspace", "ws-a")

    assert ours.prefix in stdout
    assert theirs.prefix not in stdout


def test_an_unknown_workspace_is_an_error(workspace):
    with pytest.raises(CommandError, match="does not exist"):
        run("list_api_keys", "--workspace", "ws-nobody")


def test_no_keys_says_so(workspace):
    stdout, stderr = run("list_api_keys", "--workspace", "ws-a")

    assert stdout == ""
    assert "no API keys" in stderr


# --- revoke_api_key -----------------------------------------------------------------------------


def test_revoking_by_prefix_or_id_stops_the_key(workspace, client_for):
    by_prefix, by_id = make_api_key(workspace), make_api_key(workspace)
    for key in (by_prefix, by_id):
        assert client_for(key).get("/ai/jobs").status_code == 200
    prefix = by_prefix.split("_")[1]
    row_id = ApiKey.objects.get(prefix=by_id.split("_")[1]).pk

    stdout, _ = run("revoke_api_key", prefix)
    run("revoke_api_key", str(row_id))

    assert f"revoked key {prefix} of workspace ws-a" in stdout
    for key in (by_prefix, by_id):
        assert client_for(key).get("/ai/jobs").status_code == 401
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2


def test_revoking_twice_keeps_the_first_time(workspace):
    key = issue_api_key(workspace=workspace, scopes=["jobs:read"]).api_key
    run("revoke_api_key", key.prefix)
    first = ApiKey.objects.get(pk=key.pk).revoked_at

    stdout, _ = run("revoke_api_key", key.prefix)

    assert "already revoked" in stdout
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


def test_a_digit_only_prefix_names_its_key_before_any_id(workspace):
    other = issue_api_key(workspace=workspace, scopes=["jobs:read"]).api_key
    key = issue_api_key(workspace=workspace, scopes=["jobs:read"]).api_key
    ApiKey.objects.filter(pk=key.pk).update(prefix=str(other.pk))

    run("revoke_api_key", str(other.pk))

    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=other.pk).revoked_at is None


@pytest.mark.parametrize("reference", ["0123456789ab", "999999999", "", "aio_x_y"])
def test_an_unknown_key_is_an_error_and_changes_nothing(workspace, reference):
    make_api_key(workspace)

    with pytest.raises(CommandError, match="no API key"):
        run("revoke_api_key", reference)

    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_revocation_reaches_every_web_process_at_once(workspace):
    key = make_api_key(workspace)
    # Failed authentications are limited per address: not what this test is about.
    web, base_url = start_web(AUTH_FAILURES_PER_MINUTE="1000")
    try:
        auth = {"Authorization": f"Bearer {key}"}

        def status(_) -> int:
            return http(f"{base_url}/ai/jobs", headers=auth)[0]

        # Enough concurrent requests that every gunicorn process has cached the key.
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(status, range(40))) == {200}

        prefix = key.split("_")[1]
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "revoke_api_key", prefix],
            cwd=ROOT,
            env=process_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr

        # At once, well within API_KEY_CACHE_SECONDS, whichever process answers.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(status, range(40)))
        assert set(statuses) == {401}
        body = json.loads(http(f"{base_url}/ai/jobs", headers=auth)[2])
        assert body["error"]["status"] == 401
    finally:
        web.stop()
