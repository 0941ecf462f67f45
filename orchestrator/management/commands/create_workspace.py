from django.core.management.base import BaseCommand, CommandError

from orchestrator.workspaces import WorkspaceError, create_workspace


class Command(BaseCommand):
    help = "Create a workspace: create_workspace ws-123 --name 'Acme'"

    def add_arguments(self, parser):
        parser.add_argument(
            "workspace_id", help="The workspace's id, e.g. ws-123 (letters, digits, - and _)."
        )
        parser.add_argument("--name", required=True, help="A name people recognise.")
        parser.add_argument(
            "--allowed-actions",
            help="Comma-separated actions; omit to follow ALLOW_ACTIONS_DEFAULT.",
        )

    def handle(self, *args, workspace_id, name, allowed_actions, **options):
        actions = None
        if allowed_actions is not None:
            actions = [a.strip() for a in allowed_actions.split(",") if a.strip()]
        try:
            workspace = create_workspace(
                workspace_id=workspace_id, name=name, allowed_actions=actions
            )
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Created workspace {workspace.id} ({workspace.name})")
