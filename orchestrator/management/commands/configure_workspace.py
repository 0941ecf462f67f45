import argparse

from django.core.management.base import BaseCommand, CommandError

from orchestrator.models import Workspace
from orchestrator.rate_limits import workspace_limit
from orchestrator.workspaces import UNSET, WorkspaceError, configure_workspace


def _list_option(value: str | None):
    """None: option not given; "": clear the list; otherwise the comma-separated items."""
    if value is None:
        return UNSET
    return [item.strip() for item in value.split(",") if item.strip()]


def _limit_option(value: str) -> int | None:
    """Empty: back to RATE_LIMIT_PER_MINUTE; else a whole number (the service checks its range)."""
    if value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


class Command(BaseCommand):
    help = (
        "Change a workspace's policy: configure_workspace ws-123 --allowed-actions a,b "
        "--approval-required a --recipient-domains acme.com --rate-limit-per-minute N "
        "--webhook-url URL --rotate-webhook-secret"
    )

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", help="The workspace to change.")
        parser.add_argument(
            "--allowed-actions",
            help="Comma-separated actions; an empty value returns to ALLOW_ACTIONS_DEFAULT.",
        )
        parser.add_argument(
            "--approval-required",
            help="Comma-separated actions that wait for a human decision; empty clears.",
        )
        parser.add_argument(
            "--recipient-domains",
            help="Comma-separated domains e-mail may go to without approval; empty clears.",
        )
        parser.add_argument(
            "--rate-limit-per-minute",
            type=_limit_option,
            default=UNSET,
            help="Requests a minute; 0 is unlimited, an empty value returns to "
            "RATE_LIMIT_PER_MINUTE.",
        )
        parser.add_argument(
            "--webhook-url",
            default=UNSET,
            help="Default URL of the workspace's job events; an empty value removes it.",
        )
        parser.add_argument(
            "--rotate-webhook-secret",
            action="store_true",
            help="Replace the signing secret and print the new one alone on stdout.",
        )

    def handle(self, *args, workspace_id, allowed_actions, **options):
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is None:
            raise CommandError(f"workspace {workspace_id!r} does not exist")
        secret_before = workspace.webhook_secret
        actions = _list_option(allowed_actions)
        if actions == []:
            actions = None  # an empty value: back to ALLOW_ACTIONS_DEFAULT
        try:
            configure_workspace(
                workspace=workspace,
                allowed_actions=actions,
                approval_required=_list_option(options["approval_required"]),
                recipient_domains=_list_option(options["recipient_domains"]),
                rate_limit_per_minute=options["rate_limit_per_minute"],
                webhook_url=options["webhook_url"],
                rotate_webhook_secret=options["rotate_webhook_secret"],
                changed_by="command:configure_workspace",
            )
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"{workspace.id}: allowed actions {workspace.effective_allowed_actions}"
            + (" (ALLOW_ACTIONS_DEFAULT)" if workspace.allowed_actions is None else "")
        )
        self.stderr.write(
            f"{workspace.id}: approval required {workspace.approval_required}, "
            f"recipient domains {workspace.recipient_domains or 'any'}"
        )
        self.stderr.write(
            f"{workspace.id}: rate limit {workspace_limit(workspace)} a minute (0: unlimited)"
            + (" (RATE_LIMIT_PER_MINUTE)" if workspace.rate_limit_per_minute is None else "")
        )
        self.stderr.write(f"{workspace.id}: webhook URL {workspace.webhook_url or '(none)'}")
        if workspace.webhook_secret != secret_before:
            # Alone on stdout, like create_api_key's key, for SECRET=$(manage.py ...).
            self.stdout.write(workspace.webhook_secret)
