"""Liveness (/health), readiness (/ready) and metrics (/metrics) for operators and probes.

/health touches nothing: it answers while PostgreSQL and Redis are down. /ready probes each
store within a short timeout of its own and says which one is down."""

import hmac
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from audit.metrics import PendingApprovalsCollector
from core import metrics, redis_keys, workers
from core.errors import error_body
from core.redis_client import get_redis

# The longest /ready waits for Redis. The database probe is bounded by the pool's timeout,
# short in web processes (WEB_DB_POOL_TIMEOUT_SECONDS).
READY_PROBE_TIMEOUT_SECONDS = 1.0
# Checks that read a store are not run while it is down: they would fail the same way, each
# after its own wait.
NEEDS = {"queue": "redis", "workers": "redis", "redis_policy": "redis", "migrations": "database"}

_migrations_applied = False
_approvals = PendingApprovalsCollector()


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _redis() -> dict:
    # A client of its own with a short timeout: a Redis that accepts connections but does not
    # answer would hold the shared client for its full command timeout.
    probe = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=READY_PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=READY_PROBE_TIMEOUT_SECONDS,
    )
    try:
        probe.ping()
    finally:
        probe.close()
    return {}


def _queue() -> dict:
    depths = metrics.queue_depths(get_redis())
    # The webhook backlog is for information: deliveries waiting delay no job, so it fails nothing.
    return {
        "depth": depths[redis_keys.JOB_QUEUE],
        "webhook_depth": depths[redis_keys.WEBHOOK_QUEUE],
    }


def _workers() -> dict:
    live = workers.live_workers()
    if not live:
        raise RuntimeError(
            f"no Celery worker heard from in {workers.HEARTBEAT_TIMEOUT_SECONDS}s: jobs will wait"
        )
    return {"live": len(live)}


def _redis_policy() -> dict:
    # INFO works where managed Redis services disable CONFIG. Any eviction policy may drop the
    # queue list itself, so the runbook's allkeys-lru tip is refused here.
    policy = get_redis().info("memory").get("maxmemory_policy")
    if policy != "noeviction":
        raise RuntimeError(f"maxmemory-policy is {policy!r}; the broker needs noeviction")
    return {"maxmemory_policy": policy}


def _migrations() -> dict:
    global _migrations_applied
    # Once applied, migrations stay applied for the life of the process: check until then.
    if not _migrations_applied:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise RuntimeError(f"{len(pending)} migrations not applied")
        _migrations_applied = True
    return {}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": _database,
    "redis": _redis,
    "queue": _queue,
    "workers": _workers,
    "redis_policy": _redis_policy,
    "migrations": _migrations,
}


def run_checks() -> dict[str, dict]:
    """Run every readiness check; each reports ok, latency_ms, error and its own details."""
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        needed = NEEDS.get(name)
        if needed and not results[needed]["ok"]:
            results[name] = {"ok": False, "latency_ms": 0, "error": f"{needed} is unavailable"}
            continue
        started = time.perf_counter()
        try:
            details, error = check(), None
        except Exception as exc:
            details, error = {}, f"{type(exc).__name__}: {exc}"[:300]
        results[name] = {
            "ok": error is None,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": error,
            **details,
        }
    return results


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    is_ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": is_ready, "checks": checks}, status=200 if is_ready else 503)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"alive": True})


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; with METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # As bytes: compare_digest refuses str with non-ASCII characters, which any client can
        # send. surrogatepass: every str encodes, so no header can raise here.
        given_bytes = given.strip().encode("utf-8", "surrogatepass")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given_bytes, token.encode()):
            body = error_body(401, "unauthenticated", "A valid metrics token is required.")
            response = JsonResponse(body, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(metrics.render(_approvals), content_type=CONTENT_TYPE_LATEST)
