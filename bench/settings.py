"""Settings of the benchmark processes: the project's, plus the reference endpoint and task."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
CELERY_IMPORTS = ["bench.reference"]
