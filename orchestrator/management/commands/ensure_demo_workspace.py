from pathlib import Path

from django.core.management.base import BaseCommand

from orchestrator.api_keys import authenticate_api_key, issue_api_key
from orchestrator.models import Workspace


class Command(BaseCommand):
    help = "Ensure the local demo workspace and a working key (kept in --key-file); print the key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workspace", default="ws-demo", help="The demo workspace's id (default ws-demo)."
        )
        parser.add_argument(
            "--key-file",
            default=".run/demo-api-key",
            help="Where the demo key is kept between runs (default .run/demo-api-key).",
        )

    def handle(self, *args, workspace, key_file, **options):
        ws, _ = Workspace.objects.get_or_create(pk=workspace, defaults={"name": "Demo"})
        path = Path(key_file)
        key = path.read_text().strip() if path.is_file() else ""
        valid = authenticate_api_key(key, use_cache=False) if key else None
        if valid is None or valid.api_key.workspace_id != ws.id:
            key = issue_api_key(
                workspace=ws, scopes=["jobs:read", "jobs:write"], name="make run demo"
            ).plaintext
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(key + "\n")
            path.chmod(0o600)
        self.stdout.write(key)
