import json

from django.core.management.base import BaseCommand, CommandError

from audit.report import BadPeriod, build_report, parse_period, render_text


class Command(BaseCommand):
    help = (
        "Summarise the audit trail per workspace: actions by status, denied/rejected/unknown "
        "against the previous period, new recipient domains, busiest API keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", default="7d", help="Period: 24h, 7d, 2w (default 7d).")
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="text for people (default), json for programs.",
        )

    def handle(self, *args, since, format, **options):
        try:
            period = parse_period(since)
        except BadPeriod as exc:
            raise CommandError(str(exc)) from None
        report = build_report(period=period)
        if format == "json":
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(render_text(report), ending="")
