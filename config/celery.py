"""The Celery application; its settings are the CELERY_* names in config.settings."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Flower reads FLOWER_CONF from the environment after loading this app: `celery -A config flower`
# started from any directory, without --conf, still loads flowerconfig.py and its checks.
os.environ.setdefault(
    "FLOWER_CONF", str(Path(__file__).resolve().parent.parent / "flowerconfig.py")
)

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
