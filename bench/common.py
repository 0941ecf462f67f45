"""What the benchmarks share: their own database and Redis, process accounting, PG sampling.

Importing this module configures Django for the bench (database orchestrator_bench, Redis db 8,
the project's own settings) so the measured processes never touch development or test data.
"""

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orchestrator_bench"
        ),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"),
    }
)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from orchestrator.models import Job, Workspace  # noqa: E402
from scripts.run_stack import ensure_database  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def prepare() -> Workspace:
    """Create and migrate the bench database; return the bench workspace."""
    ensure_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0)
    # Unlimited (0): the bench measures throughput, not the API's rate limit (which still runs).
    workspace, _ = Workspace.objects.update_or_create(
        pk="ws-bench", defaults={"name": "Bench", "rate_limit_per_minute": 0}
    )
    return workspace


def clear_jobs(workspace: Workspace) -> None:
    """Delete the workspace's jobs a chunk at a time. In one delete() of a few hundred thousand
    rows, Django's collector binds more parameters than PostgreSQL accepts (65,535)."""
    jobs = Job.objects.filter(workspace=workspace)
    while chunk := list(jobs.values_list("pk", flat=True)[:10_000]):
        Job.objects.filter(pk__in=chunk).delete()


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in _tree(int(child)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants, from /proc."""
    total = 0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def store_cpu_seconds() -> dict[str, float]:
    """User + system CPU of every PostgreSQL and Redis server process on the machine, by store.

    The stores share the cores with the web server: what a request costs them counts too.
    """
    totals = {"postgres": 0.0, "redis": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        name = head.partition("(")[2]
        store = (
            "postgres"
            if name.startswith("postgres")
            else "redis"
            if name.startswith("redis-server")
            else None
        )
        if store:
            fields = rest.split()
            totals[store] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


def largest_rss_mb(pid: int) -> float:
    """The largest resident set among a process and its descendants, in MB."""
    largest = 0
    for each in _tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                largest = max(largest, int(line.split()[1]))
    return largest / 1024


class PeakConnections(threading.Thread):
    """Samples pg_stat_activity for one database (the bench's by default) every 50 ms; `peak`
    is the maximum."""

    def __init__(self, database: str | None = None) -> None:
        super().__init__(daemon=True)
        self.database = database or settings.DATABASES["default"]["NAME"]
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        import psycopg

        # Autocommit: inside one transaction PostgreSQL answers every sample from the snapshot
        # of pg_stat_activity it took first, and the peak stayed at its first value.
        with psycopg.connect(
            dbname="postgres", host="127.0.0.1", user="postgres", autocommit=True
        ) as conn:
            while not self._done.wait(0.05):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.database]
                ).fetchone()
                self.peak = max(self.peak, row[0])

    def __enter__(self) -> "PeakConnections":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(timeout=2)
