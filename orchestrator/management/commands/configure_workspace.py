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
        # --- issue 3: approval policy ---
        parser.add_argument(
            "--approval-required",
            help="Comma-separated actions that wait for a human decision; empty clears.",
        )
        parser.add_argument(
            "--recipient-domains",
            help="Comma-separated domains e-mail may go to without approval; empty clears.",
        )

    def handle(self, *args, workspace_id, allowed_actions, **options):
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is None:
            raise CommandError(f"workspace {workspace_id!r} does not exist")
        actions = _list_option(allowed_actions)
        if actions == []:
            actions = None  # an empty value: back to ALLOW_ACTIONS_DEFAULT
        try:
            configure_workspace(
                workspace=workspace,
                allowed_actions=actions,
                # --- issue 3: approval policy ---
                approval_required=_list_option(options["approval_required"]),
                recipient_domains=_list_option(options["recipient_domains"]),
                changed_by="command:configure_workspace",
            )
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"{workspace.id}: allowed actions {workspace.effective_allowed_actions}"
            + (" (ALLOW_ACTIONS_DEFAULT)" if workspace.allowed_actions is None else "")
        )
        # --- issue 3: approval policy ---
        self.stderr.write(
            f"{workspace.id}: approval required {workspace.approval_required}, "
            f"recipient domains {workspace.recipient_domains or 'any'}"
        )
