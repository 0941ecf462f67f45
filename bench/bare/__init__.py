"""A minimal Django + DRF + Celery service: the baseline `make bench` divides our figures by.

Stock settings, one model, one endpoint, one task. It imports nothing of the project, so the
baseline carries none of the project's cost (tests/bench/test_bare_is_bare.py keeps it so).
"""

# As Celery's "First steps with Django" has it: importing the app here makes it the current
# app in every process that loads the project, web included, so `shared_task`s publish through
# its broker (BARE_REDIS_URL). Without it the web process publishes through Celery's default
# app, to amqp://localhost.
from bench.bare.celery_app import app as celery_app

__all__ = ("celery_app",)
