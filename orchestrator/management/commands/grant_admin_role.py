from django.core.management.base import BaseCommand, CommandError

from orchestrator.admin_roles import ROLES, RoleError, grant_role, revoke_role


class Command(BaseCommand):
    help = (
        "Give admin users a role (a group): auditor views everything and decides nothing; "
        "reviewer also approves and rejects pending actions (audit.decide_action); operator "
        "also redelivers webhooks (orchestrator.redeliver_webhook). Users become staff. "
        "Without usernames, creates or repairs the role's group only. "
        "Example: grant_admin_role reviewer alice bob"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "role",
            choices=sorted(ROLES),
            help="; ".join(f"{name}: {role.description}" for name, role in ROLES.items()),
        )
        parser.add_argument(
            "usernames",
            nargs="*",
            help="Existing users to put in the role's group; none: only create or repair it.",
        )
        parser.add_argument(
            "--revoke",
            action="store_true",
            help="Take the users out of the role's group instead (they stay staff).",
        )

    def handle(self, *args, role: str, usernames: list[str], revoke: bool, **options):
        change = revoke_role if revoke else grant_role
        try:
            group = change(role=role, usernames=usernames)
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        summary = f"group {group.name!r} ({group.permissions.count()} permissions)"
        if not usernames:
            self.stdout.write(f"{summary} ready")
            return
        verb = "removed from" if revoke else "added to"
        self.stdout.write(f"{', '.join(usernames)} {verb} {summary}")
