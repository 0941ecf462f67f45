"""Prometheus metrics: per-process HTTP series, and series shared by every process on every host.

Web processes run under gunicorn (several per host) and Celery workers run on other hosts, so a
job's counters cannot live in one process's memory. Shared counters and histograms are Redis
hash fields (one HINCRBY per event, pipelined); /metrics reads them at scrape together with
the depth of every queue and the live workers. HTTP series are per web host: prometheus_client's
multiprocess mode sums a host's gunicorn workers and Prometheus sums the hosts.

Two families of HTTP series: the runbook's exact names, http_requests_total{path,method,status}
and http_request_duration_seconds{path,method} (core/middleware.py), and django-prometheus's
django_http_* (by view) and django_db_* (its database backend, config/settings.py), which the
standard Django dashboards read. Both are prometheus_client series of the default registry, so
the same multiprocess mode sums them. Celery workers record django_db_* in their own memory
only: no one scrapes a worker, and what workers do is in the shared ai_* series.
"""

import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core import redis_keys, workers
from core.redis_client import get_redis

logger = logging.getLogger(__name__)

# --- Per-process HTTP series (the runbook's names) ----------------------------------------------

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
http_requests = Counter(
    "http_requests",
    "HTTP requests by route pattern, method and status.",
    ["path", "method", "status"],
)
http_request_duration = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route pattern and method.",
    ["path", "method"],
    buckets=HTTP_BUCKETS,
)
# Per process on purpose: it counts the moments Redis, where the shared series live, is down.
RATE_LIMIT_FAIL_OPEN = Counter(
    "ai_rate_limit_fail_open",
    "Requests allowed without a rate-limit check because Redis was unreachable.",
)


# --- Shared series ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    kind: str  # "counter" or "histogram"
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Names without the _total suffix, which the exposition adds to counters. A workspace label
# only on the opt-in series (METRICS_WORKSPACE_LABEL): its cardinality is the number of tenants.
SHARED: dict[str, Spec] = {
    "ai_queue_enqueue": Spec("counter", "Job messages published to ai:queue:pending."),
    "ai_queue_dequeue": Spec("counter", "Job messages a worker took from ai:queue:pending."),
    "ai_job_redeliveries": Spec("counter", "Job messages delivered again by the broker."),
    "ai_jobs_finished": Spec("counter", "Jobs that reached a final status.", ("status",)),
    "ai_job_duration_seconds": Spec(
        "histogram", "From a job's claim to its final status.", (), DURATION_BUCKETS
    ),
    "ai_job_queue_wait_seconds": Spec(
        "histogram", "From a job's (re)publication to its claim by a worker.", (), WAIT_BUCKETS
    ),
    "ai_model_requests": Spec("counter", "Model requests by outcome.", ("outcome",)),
    "ai_model_request_duration_seconds": Spec(
        "histogram", "Model request latency.", (), MODEL_BUCKETS
    ),
    "ai_model_tokens": Spec("counter", "Tokens used, by kind.", ("kind",)),
    # reason: the code the trail keeps (approval_required, invalid_arguments, ...), a set our
    # code bounds; never text a model or a provider wrote.
    "ai_actions": Spec(
        "counter",
        "Proposed actions by action, final status and reason.",
        ("action", "status", "reason"),
    ),
    "ai_sweeper_republished": Spec("counter", "Jobs the sweeper published again."),
    "ai_webhook_attempts": Spec(
        "counter",
        "Webhook delivery attempts: delivered, retrying (failed, tried again), failed (given up).",
        ("outcome",),
    ),
    "ai_workspace_jobs_finished": Spec(
        "counter", "Jobs finished, by workspace (METRICS_WORKSPACE_LABEL).", ("workspace", "status")
    ),
}


def _field(name: str, labels: dict[str, str]) -> str:
    return _field_of(name, tuple(sorted(labels.items())))


@lru_cache(maxsize=4096)  # series are few (bounded labels), and a job records a dozen of them
def _field_of(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    return f"{name}|{json.dumps(dict(labels), separators=(',', ':'))}"


def _labels(name: str, labels: dict[str, str]) -> dict[str, str]:
    spec = SHARED[name]
    if set(labels) != set(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {sorted(labels)}")
    return {key: str(value) for key, value in labels.items()}


Command = tuple[str, str, float]


def count(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a shared counter; a Redis failure is logged, never raised into the job."""
    record(counted(name, amount, **labels))


def observe(name: str, value: float, **labels: str) -> None:
    """Record one observation of a shared histogram."""
    record(observed(name, value, **labels))


def record(*commands: list[Command]) -> None:
    """Apply several counts and observations in one round trip (in a worker: the next flush)."""
    flat = [command for group in commands for command in group]
    if _coalescer is not None:
        _coalescer.add(flat)
    else:
        _write(flat)


# How often a worker process writes what its jobs recorded (see _Coalescer).
WORKER_FLUSH_SECONDS = 0.1


class _Coalescer:
    """Sums what a worker process records and writes it every `interval` seconds.

    Written as they happen, a job's dequeue, model calls and outcome cost three Redis round
    trips, a tenth of the job's CPU. Summed per field, a process makes one write per interval
    whatever the rate of jobs; a series lags by at most the interval, and a process killed with
    SIGKILL loses at most that much of it.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._pid: int | None = None  # of the process whose thread flushes (forks start anew)

    def add(self, commands: list[Command]) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._pending = os.getpid(), {}
                threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
            for command, field, amount in commands:
                key = (command, field)
                self._pending[key] = self._pending.get(key, 0) + amount

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            _write([(command, field, amount) for (command, field), amount in pending.items()])

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()


_coalescer: _Coalescer | None = None


def coalesce_writes(interval: float) -> None:
    """From now on, sum what this process records and write it every `interval` seconds."""
    global _coalescer
    _coalescer = _Coalescer(interval)


def flush() -> None:
    """Write what is waiting now (a worker shutting down)."""
    if _coalescer is not None:
        _coalescer.flush()


def counted(name: str, amount: float = 1, **labels: str) -> list[Command]:
    if SHARED[name].kind != "counter":
        raise ValueError(f"{name} is not a counter")
    return [("hincrbyfloat", _field(name, _labels(name, labels)), amount)]


def observed(name: str, value: float, **labels: str) -> list[Command]:
    spec = SHARED[name]
    if spec.kind != "histogram":
        raise ValueError(f"{name} is not a histogram")
    labels = _labels(name, labels)
    # The bucket holding the value only; /metrics makes the buckets cumulative at scrape, so an
    # observation costs three commands instead of one per bucket.
    bound = next((b for b in spec.buckets if value <= b), None)
    le = "+Inf" if bound is None else repr(float(bound))
    return [
        ("hincrbyfloat", _field(f"{name}:bucket", {**labels, "le": le}), 1),
        ("hincrbyfloat", _field(f"{name}:sum", labels), value),
        ("hincrbyfloat", _field(f"{name}:count", labels), 1),
    ]


def add_to(pipe: redis.client.Pipeline, *commands: list[Command]) -> None:
    """Queue counts and observations on a pipeline the caller executes with its own commands."""
    for command, field, amount in (command for group in commands for command in group):
        getattr(pipe, command)(redis_keys.METRICS, field, amount)


def _write(commands: list[Command]) -> None:
    try:
        pipe = get_redis().pipeline(transaction=False)
        add_to(pipe, commands)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("metrics not recorded, Redis unavailable: %s", exc)


# --- Exposition -------------------------------------------------------------------------------


def queue_names() -> list[str]:
    """Every queue the platform publishes to: the ones Celery declares (jobs, webhooks)."""
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in each queue, in one round trip (Celery's Redis transport keeps a
    queue as a list under its name)."""
    names = queue_names()
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    return dict(zip(names, pipe.execute(), strict=True))


class SharedCollector:
    """Reads the shared series, the queue depths and the live workers from Redis at scrape."""

    def collect(self) -> Iterator[Metric]:
        client = get_redis()
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(redis_keys.METRICS)
            for name in queue_names():
                pipe.llen(name)
            fields, *depths = pipe.execute()
            live = workers.live_workers()
        except redis.RedisError as exc:
            logger.warning("shared metrics unavailable, Redis unreachable: %s", exc)
            yield _gauge("ai_metrics_store_up", "1 if Redis answered the scrape.", 0)
            return
        yield _gauge("ai_metrics_store_up", "1 if Redis answered the scrape.", 1)
        depth = GaugeMetricFamily(
            "ai_queue_depth_total", "Messages waiting in each queue.", labels=["queue"]
        )
        for name, value in zip(queue_names(), depths, strict=True):
            depth.add_metric([name], value)
        yield depth
        yield _gauge("ai_queue_workers", "Live Celery workers consuming the queue.", len(live))
        yield from _families(fields)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _families(fields: dict[str, str]) -> Iterator[Metric]:
    values: dict[str, dict[tuple, float]] = defaultdict(dict)
    for field, raw in fields.items():
        key, _, labels = field.partition("|")
        try:
            values[key][tuple(sorted(json.loads(labels).items()))] = float(raw)
        except ValueError:
            continue  # a field written by another version: skip rather than fail the scrape
    for name, spec in SHARED.items():
        if spec.kind == "counter":
            family = CounterMetricFamily(name, spec.help, labels=spec.labels)
            for pairs, value in sorted(values[name].items()):
                label_map = dict(pairs)
                if set(label_map) == set(spec.labels):  # else a field of another version
                    family.add_metric([label_map[k] for k in spec.labels], value)
            if not spec.labels and not values[name]:
                family.add_metric([], 0)  # a counter exists from the start: rate() needs it
            yield family
        else:
            yield _histogram(name, spec, values)


def _histogram(name: str, spec: Spec, values: dict[str, dict[tuple, float]]) -> Metric:
    family = HistogramMetricFamily(name, spec.help, labels=spec.labels)
    series = values[f"{name}:count"] or ({(): 0.0} if not spec.labels else {})
    for labels, total in sorted(series.items()):
        label_map = dict(labels)
        cumulative, buckets = 0.0, []
        for bound in (*(repr(float(b)) for b in spec.buckets), "+Inf"):
            cumulative += values[f"{name}:bucket"].get(
                tuple(sorted({**label_map, "le": bound}.items())), 0
            )
            buckets.append((bound, cumulative))
        buckets[-1] = ("+Inf", total)
        family.add_metric(
            [label_map[k] for k in spec.labels],
            buckets=buckets,
            sum_value=values[f"{name}:sum"].get(labels, 0.0),
        )
    return family


_shared = SharedCollector()


def render(*collectors: Collector) -> bytes:
    """The text exposition of every series this host serves, and of `collectors` (series an app
    computes at scrape)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # django-prometheus's series are in these registries too: they are prometheus_client's.
    parts = [generate_latest(registry), generate_latest(_shared)]
    parts.extend(generate_latest(collector) for collector in collectors)
    return b"".join(parts)
