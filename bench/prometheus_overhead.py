"""What django-prometheus adds per request and per query, measured in one process, alternately.

    ENV_FILE= DEBUG=true python -m bench.prometheus_overhead

As under gunicorn (config/gunicorn.py), series are written to PROMETHEUS_MULTIPROC_DIR's files.
Requests go through Django's test client to GET /health with the shipped middleware and with
the same list less django-prometheus's two; queries are `SELECT 1` through the shipped backend
and through Django's own. Rounds alternate so both sides see the same machine load; the figure
is the median round, in CPU time of this process. No server, no network: the difference is
django-prometheus's own cost.
"""

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prom-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

PROMETHEUS = (
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
)
REQUESTS = 2000
ROUNDS = 8


def _client(middleware: list[str]) -> Client:
    client = Client()
    with override_settings(MIDDLEWARE=middleware):
        assert client.get("/health").status_code == 200  # builds its middleware chain now
    return client


def _per_call_us(call, count: int) -> float:
    # CPU time of this process: on a shared machine, wall time would count other processes' turns.
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count * 1e6


def _alternate(with_it, without_it, count: int) -> tuple[float, float]:
    per_round = count // ROUNDS
    on, off = [], []
    for _ in range(ROUNDS):
        on.append(_per_call_us(with_it, per_round))
        off.append(_per_call_us(without_it, per_round))
    return statistics.median(on), statistics.median(off)


def main() -> int:
    shipped = list(settings.MIDDLEWARE)
    with_mw = _client(shipped)
    without_mw = _client([name for name in shipped if name not in PROMETHEUS])
    on, off = _alternate(
        lambda: with_mw.get("/health"), lambda: without_mw.get("/health"), REQUESTS
    )
    print(f"GET /health x{REQUESTS}: {on:.1f} us with django-prometheus, {off:.1f} us without: "
          f"+{on - off:.1f} us per request")  # fmt: skip

    plain = {**settings.DATABASES["default"], "ENGINE": "django.db.backends.postgresql"}
    connections.settings["plain"] = plain
    counted_cursor = connections["default"].cursor()
    plain_cursor = connections["plain"].cursor()
    on, off = _alternate(
        lambda: counted_cursor.execute("SELECT 1"), lambda: plain_cursor.execute("SELECT 1"), 2000
    )
    print(f"SELECT 1 x2000: {on:.1f} us counted, {off:.1f} us plain: +{on - off:.1f} us per query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
