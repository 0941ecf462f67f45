from django.core.management.base import BaseCommand

from orchestrator.services import requeue_stale_jobs


class Command(BaseCommand):
    help = "Republish stale queued jobs and reclaim expired running ones (what beat runs)."

    def handle(self, *args, **options):
        count = requeue_stale_jobs()
        self.stdout.write(f"republished {count} jobs")
