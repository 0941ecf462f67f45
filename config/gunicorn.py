"""gunicorn settings (`gunicorn -c config/gunicorn.py config.wsgi`): the web workers of a host
share their HTTP metrics through prometheus_client's multiprocess mode."""

import os
import shutil
import tempfile
from pathlib import Path

# Settings read this before the app loads in each worker: requests wait at most
# WEB_DB_POOL_TIMEOUT_SECONDS for a database connection, so an outage answers 503 at once
# instead of holding a sync worker (and the /health queued behind it) for the pool's full wait.
os.environ["ORCHESTRATOR_WEB_PROCESS"] = "1"

# prometheus_client picks its storage when first imported, so the directory is set before any
# worker imports the app. Each master starts from an empty one: stale files of a previous run
# would be summed into the new counters.
_created = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _created:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-multiproc-")
else:
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


# Off unless turned on (--access-logfile); then the request line without its query string,
# which may carry a key (%(r)s and %(q)s would log it), and without the Referer, which may too.
# In a worker the line goes through the app's logging (JSON, scrubbed: config/settings.py).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'


def post_fork(server, worker) -> None:
    # The shared ai_* series a web process records (each job it publishes counts an enqueue)
    # are summed and written every WORKER_FLUSH_SECONDS by a thread, as in the Celery workers,
    # rather than in a Redis round trip of their own on every POST /ai/jobs.
    from core import metrics

    metrics.coalesce_writes(metrics.WORKER_FLUSH_SECONDS)


def worker_exit(server, worker) -> None:
    from core import metrics

    metrics.flush()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _created:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
