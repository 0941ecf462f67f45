"""Workspace and API key admin: a new key's plaintext is shown once, the digest never; revoking
works; both are recorded in the admin's history; superusers can be created from the environment;
grant_admin_role gives users the auditor, reviewer and operator roles."""

import io
import re
import subprocess
import sys

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestrator.api_keys import authenticate_api_key
from orchestrator.models import ApiKey
from tests import factories
from tests.processes import ROOT, process_env

KEYS = "/admin/orchestrator/apikey/"
pytestmark = pytest.mark.django_db


def create_key(admin_client, workspace, scopes=("jobs:read",)):
    response = admin_client.post(
        KEYS + "add/", {"workspace": workspace.pk, "name": "ci", "scopes": list(scopes)}
    )
    assert response.status_code == 200, response.content[:2000]
    page = response.content.decode()
    plaintext = re.search(r'<pre id="api-key-plaintext">([^<]+)</pre>', page).group(1)
    return response, plaintext


def test_creating_a_key_shows_its_plaintext_once(admin_client, admin_user, workspace):
    response, plaintext = create_key(admin_client, workspace, ["jobs:read", "jobs:write"])

    api_key = authenticate_api_key(plaintext).api_key
    assert api_key.workspace_id == workspace.pk
    assert api_key.scopes == ["jobs:read", "jobs:write"]
    assert "no-cache" in response["Cache-Control"]
    # Never again: not on the list, not on the key's page, and never the digest.
    for url in (KEYS, f"{KEYS}{api_key.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert api_key.prefix in page
        # aio_<prefix>_<secret>: the secret may itself contain "_", so split from the left.
        assert plaintext not in page and plaintext.split("_", 2)[2] not in page
        assert api_key.digest not in page
    entry = LogEntry.objects.get(object_id=str(api_key.pk), action_flag=ADDITION)
    assert entry.user == admin_user


def test_an_unknown_scope_is_refused_and_creates_nothing(admin_client, workspace):
    response = admin_client.post(
        KEYS + "add/", {"workspace": workspace.pk, "name": "x", "scopes": ["jobs:delete"]}
    )
    assert response.status_code == 200
    assert "api-key-plaintext" not in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_list_shows_prefix_scopes_last_use_and_state(admin_client, workspace):
    active = factories.make_api_key(workspace, name="active")
    revoked = factories.make_api_key(workspace, name="old")
    authenticate_api_key(active)
    revoked_key = authenticate_api_key(revoked).api_key
    ApiKey.objects.filter(pk=revoked_key.pk).update(revoked_at=revoked_key.last_used_at)

    response = admin_client.get(KEYS)

    rows = {key.name: key for key in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert admin.state(rows["active"]) == "active" and admin.state(rows["old"]) == "revoked"
    assert rows["active"].last_used_at is not None
    assert "jobs:read" in response.content.decode()


def test_revoking_keys_stops_them_and_is_recorded(admin_client, admin_user, workspace):
    plaintext = factories.make_api_key(workspace)
    keep = factories.make_api_key(workspace)
    api_key = authenticate_api_key(plaintext).api_key

    response = admin_client.post(
        KEYS, {"action": "revoke", "_selected_action": [api_key.pk]}, follow=True
    )

    assert "Revoked 1 API key(s)." in response.content.decode()
    assert authenticate_api_key(plaintext) is None
    assert authenticate_api_key(keep) is not None  # positive control: the other still works
    entry = LogEntry.objects.get(object_id=str(api_key.pk), action_flag=CHANGE)
    assert (entry.user, entry.get_change_message()) == (admin_user, "Revoked.")


def test_keys_cannot_be_edited_or_deleted(admin_client, workspace):
    api_key = authenticate_api_key(factories.make_api_key(workspace)).api_key
    url = f"{KEYS}{api_key.pk}/change/"
    assert admin_client.post(url, {"name": "renamed", "scopes": ["jobs:write"]}).status_code == 403
    assert admin_client.post(f"{KEYS}{api_key.pk}/delete/", {"post": "yes"}).status_code == 403
    api_key.refresh_from_db()
    assert (api_key.name, api_key.revoked_at) == ("", None)


def test_createsuperuser_runs_without_prompts_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "auditor")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password-1")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "auditor@example.com")

    call_command("createsuperuser", "--noinput", verbosity=0)

    user = User.objects.get(username="auditor")
    assert user.is_staff and user.is_superuser
    assert user.check_password("a-long-enough-password-1")


def test_workspace_admin_refuses_unknown_actions(admin_client, workspace):
    url = f"/admin/orchestrator/workspace/{workspace.pk}/change/"
    refused = admin_client.post(
        url, {"id": workspace.pk, "name": "A", "allowed_actions": "sms.send"}
    )
    assert refused.status_code == 200 and "unknown actions" in refused.content.decode()
    workspace.refresh_from_db()
    assert workspace.allowed_actions is None
    # Positive control: a known action is saved.
    saved = admin_client.post(
        url, {"id": workspace.pk, "name": "A", "allowed_actions": "task.create"}
    )
    assert saved.status_code == 302
    workspace.refresh_from_db()
    assert workspace.allowed_actions == ["task.create"]


# --- Admin roles: manage.py grant_admin_role -------------------------------------------------


def grant(*args: str) -> str:
    out = io.StringIO()
    call_command("grant_admin_role", *args, stdout=out)
    return out.getvalue()


def test_granting_a_reviewer_lets_them_decide_and_nothing_more():
    user = User.objects.create_user("rita", password="pw-rita-1")

    output = grant("reviewer", "rita")

    assert "rita added to group 'reviewers'" in output
    user = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("audit.decide_action")
    assert user.has_perm("audit.view_actionaudit") and user.has_perm("orchestrator.view_job")
    assert not user.has_perm("orchestrator.redeliver_webhook")
    assert not user.has_perm("audit.change_actionaudit")


@pytest.mark.parametrize(
    ("role", "decide", "redeliver"),
    [("auditor", False, False), ("operator", False, True)],
)
def test_auditors_view_only_and_operators_redeliver(role, decide, redeliver):
    User.objects.create_user("sam")

    grant(role, "sam")

    user = User.objects.get(username="sam")
    assert user.has_perm("audit.view_actionaudit") and user.has_perm("actions.view_connection")
    assert user.has_perm("audit.decide_action") is decide
    assert user.has_perm("orchestrator.redeliver_webhook") is redeliver
    assert not any(p.startswith(("add_", "change_", "delete_")) for p in _codenames(user))


def _codenames(user) -> set[str]:
    return {name.split(".", 1)[1] for name in user.get_all_permissions()}


def test_without_usernames_the_group_is_created_and_repaired():
    assert "group 'reviewers'" in grant("reviewer")
    group = Group.objects.get(name="reviewers")
    group.permissions.add(Permission.objects.get(codename="delete_workspace"))  # by hand

    grant("reviewer")

    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "decide_action" in codenames and "view_webhookdelivery" in codenames
    assert "delete_workspace" not in codenames


def test_an_unknown_user_changes_nothing():
    User.objects.create_user("rita")

    with pytest.raises(CommandError, match="no such user: ghost"):
        grant("reviewer", "rita", "ghost")

    assert not Group.objects.filter(name="reviewers").exists()
    assert not User.objects.get(username="rita").is_staff


def test_revoking_a_role_takes_its_permissions_away():
    User.objects.create_user("rita")
    grant("reviewer", "rita")

    assert "rita removed from group 'reviewers'" in grant("reviewer", "rita", "--revoke")

    user = User.objects.get(username="rita")
    assert not user.has_perm("audit.decide_action")
    assert user.is_staff  # still staff: other groups may give them something


def test_the_command_documents_every_role_and_flag():
    result = subprocess.run(
        [sys.executable, "manage.py", "grant_admin_role", "--help"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for role in ("auditor: views everything", "reviewer: views", "operator: views"):
        assert role in text
    assert "--revoke Take the users out" in text
    assert "usernames Existing users" in text
