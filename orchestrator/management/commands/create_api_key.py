from django.core.management.base import BaseCommand, CommandError

from orchestrator.api_keys import SCOPES, UnknownScope, expiry_in_days, issue_api_key
from orchestrator.models import Workspace


class Command(BaseCommand):
    help = "Create an API key and print it, alone on stdout, this once only."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The id of the key's workspace.")
        parser.add_argument("--scopes", required=True, help=f"Comma-separated: {','.join(SCOPES)}")
        parser.add_argument(
            "--name", default="", help="What the key is for, shown by list_api_keys; optional."
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            help="Days until the key stops working (at least 1); default: it never expires.",
        )

    def handle(self, *args, workspace, scopes, name, expires_in_days, **options):
        ws = Workspace.objects.filter(pk=workspace).first()
        if ws is None:
            raise CommandError(f"workspace {workspace!r} does not exist")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            issued = issue_api_key(
                workspace=ws,
                scopes=scope_list,
                name=name,
                expires_at=expiry_in_days(expires_in_days),
            )
        except UnknownScope as exc:
            raise CommandError(str(exc)) from None
        # stdout carries the key alone so that KEY=$(manage.py create_api_key ...) works.
        self.stdout.write(issued.plaintext)
        self.stderr.write(
            f"Created key {issued.api_key.prefix} for {ws.id} with scopes "
            f"{','.join(issued.api_key.scopes)}; it will not be shown again."
        )
