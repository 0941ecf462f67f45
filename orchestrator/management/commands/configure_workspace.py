from django.core.management.base import BaseCommand, CommandError

from orchestrator.models import Workspace
from orchestrator.workspaces import UNSET, WorkspaceError, configure_workspace


def _list_option(value: str | None):
    """None: option not given; "": clear the list; otherwise the comma-separated items."""
    if value is None:
        return UNSET
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Change a workspace's policy: configure_workspace ws-123 --allowed-actions a,b"

    def add_arguments(self, parser):
        parser.add_argument("workspace_id")
        parser.add_argument(
            "--allowed-actions",
            help="Comma-separated actions; an empty value returns to ALLOW_ACTIONS_DEFAULT.",
        )

    def handle(self, *args, workspace_id, allowed_actions, **options):
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is None:
            raise CommandError(f"workspace {workspace_id!r} does not exist")
        actions = _list_option(allowed_actions)
        if actions == []:
            actions = None  # an empty value: back to ALLOW_ACTIONS_DEFAULT
        try:
            configure_workspace(workspace=workspace, allowed_actions=actions)
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"{workspace.id}: allowed actions {workspace.effective_allowed_actions}"
            + (" (ALLOW_ACTIONS_DEFAULT)" if workspace.allowed_actions is None else "")
        )
