"""Specification of stored provider credentials: encrypted at rest with rotatable keys, managed
by the set_connection and rotate_connection_keys commands, never printed."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db

from actions.connections import access_token, decrypt, set_connection
from actions.connectors.base import ConnectorError
from actions.models import Connection

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw_columns(pk: int) -> tuple[str, str]:
    """The token columns exactly as PostgreSQL stores them."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token_encrypted, refresh_token_encrypted FROM actions_connection "
            "WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_set_connection_stores_tokens_encrypted_and_prints_none(workspace):
    stdout, stderr = run(
        "set_connection", workspace.id, "--provider", "google", "--access-token", "AT-secret-1",
        "--refresh-token", "RT-secret-1", "--expires-in", "3600",
    )  # fmt: skip

    row = Connection.objects.get(workspace=workspace, provider="google")
    access, refresh = raw_columns(row.pk)
    assert "AT-secret-1" not in access and "RT-secret-1" not in refresh
    assert (decrypt(access), decrypt(refresh)) == ("AT-secret-1", "RT-secret-1")
    assert access_token(workspace_id=workspace.id, provider="google") == "AT-secret-1"
    assert "secret" not in stdout + stderr
    assert "google connection stored" in stderr


def test_set_connection_replaces_the_workspaces_connection(workspace):
    run("set_connection", workspace.id, "--provider", "microsoft", "--access-token", "one")
    run("set_connection", workspace.id, "--provider", "microsoft", "--access-token", "two")

    assert Connection.objects.count() == 1
    assert access_token(workspace_id=workspace.id, provider="microsoft") == "two"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ws-nope", "--provider", "google", "--access-token", "t"], "ws-nope"),
        (["ws-a", "--provider", "google", "--access-token", " "], "access-token"),
        (["ws-a", "--provider", "google", "--access-token", "t", "--expires-in", "0"], "expires"),
    ],
)
def test_set_connection_refuses_bad_input_and_stores_nothing(workspace, args, message):
    with pytest.raises(CommandError, match=message):
        run("set_connection", *args)
    assert not Connection.objects.exists()


def test_unknown_provider_is_refused_by_the_parser(workspace):
    with pytest.raises(CommandError, match="provider"):
        run("set_connection", workspace.id, "--provider", "yahoo", "--access-token", "t")


def test_keys_rotate_without_losing_a_token(workspace, settings):
    settings.CONNECTION_ENCRYPTION_KEYS = [OLD_KEY]
    row = set_connection(workspace_id=workspace.id, provider="google", access_token="AT",
                         refresh_token="RT")  # fmt: skip
    before = raw_columns(row.pk)

    # The new key first: it encrypts, the old one still decrypts.
    settings.CONNECTION_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert access_token(workspace_id=workspace.id, provider="google") == "AT"
    stdout, _ = run("rotate_connection_keys")
    assert stdout == "re-encrypted 1 connections\n"
    assert raw_columns(row.pk) != before

    # The old key removed: the rotated tokens still decrypt.
    settings.CONNECTION_ENCRYPTION_KEYS = [NEW_KEY]
    assert access_token(workspace_id=workspace.id, provider="google") == "AT"
    assert decrypt(raw_columns(row.pk)[1]) == "RT"


def test_a_token_under_a_removed_key_is_a_clear_connection_error(workspace, settings):
    settings.CONNECTION_ENCRYPTION_KEYS = [OLD_KEY]
    set_connection(workspace_id=workspace.id, provider="google", access_token="AT")
    settings.CONNECTION_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(ConnectorError) as caught:
        access_token(workspace_id=workspace.id, provider="google")
    assert caught.value.reason == "connection_invalid"
    assert "CONNECTION_ENCRYPTION_KEYS" in caught.value.message


def test_admin_stores_a_connection_encrypted_and_never_shows_a_token(workspace, admin_client):
    response = admin_client.post(
        "/admin/actions/connection/add/",
        {"workspace": workspace.pk, "provider": "google", "access_token": "AT-admin-1",
         "refresh_token": "RT-admin-1", "expires_in": "600"},
    )  # fmt: skip

    assert response.status_code == 302, response.context["adminform"].form.errors
    row = Connection.objects.get(workspace=workspace, provider="google")
    assert "AT-admin-1" not in raw_columns(row.pk)[0]
    assert access_token(workspace_id=workspace.id, provider="google") == "AT-admin-1"
    page = admin_client.get(f"/admin/actions/connection/{row.pk}/change/").content.decode()
    assert "AT-admin-1" not in page and row.access_token_encrypted not in page
