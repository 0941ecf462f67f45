from django.core.management.base import BaseCommand, CommandError

from actions.connections import set_connection
from actions.models import Connection
from orchestrator.models import Workspace


class Command(BaseCommand):
    help = (
        "Store a workspace's mail credentials, encrypted: set_connection ws-123 "
        "--provider google|microsoft --access-token T [--refresh-token R] [--expires-in SECONDS]"
    )

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", help="The workspace whose mail account this is.")
        parser.add_argument(
            "--provider",
            required=True,
            choices=Connection.Provider.values,
            help="Whose API sends the mail: google (Gmail) or microsoft (Graph).",
        )
        parser.add_argument(
            "--access-token", required=True, help="The OAuth access token; stored encrypted."
        )
        parser.add_argument(
            "--refresh-token",
            default="",
            help="The OAuth refresh token, to renew the access token when it expires; optional.",
        )
        parser.add_argument(
            "--expires-in", type=int, help="Seconds until the access token expires."
        )

    def handle(self, *args, workspace_id, provider, access_token, refresh_token, **options):
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"workspace {workspace_id!r} does not exist")
        if not access_token.strip():
            raise CommandError("--access-token must not be empty")
        expires_in = options["expires_in"]
        if expires_in is not None and expires_in <= 0:
            raise CommandError("--expires-in must be a positive number of seconds")
        connection = set_connection(
            workspace_id=workspace_id,
            provider=provider,
            access_token=access_token.strip(),
            refresh_token=refresh_token.strip(),
            expires_in_seconds=expires_in,
        )
        # Never echo a token: only what was stored and until when.
        self.stderr.write(
            f"{workspace_id}: {provider} connection stored (refresh token: "
            f"{'yes' if refresh_token else 'no'}, expires: {connection.expires_at or 'unknown'})"
        )
