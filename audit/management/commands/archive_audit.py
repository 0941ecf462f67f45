from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.archive import ArchiveError, archive_audit


class Command(BaseCommand):
    help = (
        "Move final action_audit rows older than N days to a verified gzip JSON Lines file "
        "with a manifest, then delete exactly those rows. Safe to rerun after a crash."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.AUDIT_RETENTION_DAYS,
            help="Archive final rows created more than this many days ago "
            "(default AUDIT_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=settings.AUDIT_ARCHIVE_DIR,
            help="Absolute directory for the archive files (default AUDIT_ARCHIVE_DIR).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.AUDIT_ARCHIVE_BATCH_SIZE,
            help="Rows written and deleted per transaction (default AUDIT_ARCHIVE_BATCH_SIZE).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report; change nothing.")

    def handle(self, *args, older_than_days, output_dir, batch_size, dry_run, **options):
        if output_dir is None:
            raise CommandError("--output-dir is required when AUDIT_ARCHIVE_DIR is not set")
        try:
            report = archive_audit(
                older_than_days=older_than_days,
                output_dir=output_dir,
                batch_size=batch_size,
                dry_run=dry_run,
            )
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        cutoff = f"{report.cutoff:%Y-%m-%d %H:%M:%S} UTC"
        if dry_run:
            self.stdout.write(
                f"dry run: {report.candidates} final rows created before {cutoff} would be "
                f"archived to {output_dir}; interrupted runs to finish: {report.pending or 'none'}"
            )
            return
        for name in report.discarded:
            self.stdout.write(f"discarded unfinished file {name} (none of its rows was deleted)")
        if report.resumed:
            self.stdout.write(f"finished an interrupted run: deleted {report.resumed} rows")
        self.stdout.write(
            f"archived {report.archived} rows created before {cutoff}; "
            f"files: {', '.join(report.files) or 'none'}"
        )
