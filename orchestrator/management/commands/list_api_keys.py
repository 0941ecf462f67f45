from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from orchestrator.api_keys import list_api_keys
from orchestrator.models import Workspace

COLUMNS = ("prefix", "workspace", "name", "scopes", "created", "last used", "expires", "revoked")


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


class Command(BaseCommand):
    help = (
        "List API keys: prefix, workspace, name, scopes, created, last used, expiry and "
        "revocation (times in UTC). Never a secret or its digest: they cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workspace", help="Only this workspace's keys (its id); default: every workspace."
        )

    def handle(self, *args, workspace: str | None, **options):
        ws = None
        if workspace is not None:
            ws = Workspace.objects.filter(pk=workspace).first()
            if ws is None:
                raise CommandError(f"workspace {workspace!r} does not exist")
        rows = [
            (
                key.prefix,
                key.workspace_id,
                key.name or "-",
                ",".join(key.scopes) or "-",
                _time(key.created_at),
                _time(key.last_used_at),
                _time(key.expires_at),
                _time(key.revoked_at),
            )
            for key in list_api_keys(workspace=ws)
        ]
        if not rows:
            self.stderr.write("no API keys" + (f" in workspace {workspace!r}" if ws else ""))
            return
        widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
        for row in (COLUMNS, *rows):
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
