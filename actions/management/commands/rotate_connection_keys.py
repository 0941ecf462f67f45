from django.core.management.base import BaseCommand

from actions.connections import rotate_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored connection token under the first CONNECTION_ENCRYPTION_KEYS key."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"re-encrypted {rotate_keys()} connections")
