from datetime import UTC

from django.core.management.base import BaseCommand, CommandError

from orchestrator.api_keys import find_api_key, revoke_api_key


class Command(BaseCommand):
    help = (
        "Revoke an API key, found by its public prefix (list_api_keys shows it), else by its id. "
        "Every web process refuses it from its next request; revoking twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "key",
            help="The key's prefix (the part after aio_ in the key) or its numeric id; "
            "never the whole key, which would end up in the shell's history.",
        )

    def handle(self, *args, key: str, **options):
        api_key = find_api_key(key)
        if api_key is None:
            raise CommandError(f"no API key has the prefix or id {key!r}")
        if api_key.revoked_at is not None:
            when = api_key.revoked_at.astimezone(UTC).isoformat(timespec="seconds")
            self.stdout.write(f"key {api_key.prefix} was already revoked at {when}")
            return
        revoke_api_key(api_key=api_key)
        api_key.refresh_from_db()
        when = api_key.revoked_at.astimezone(UTC).isoformat(timespec="seconds")
        self.stdout.write(
            f"revoked key {api_key.prefix} of workspace {api_key.workspace_id} "
            f"({api_key.name or 'unnamed'}) at {when}"
        )
