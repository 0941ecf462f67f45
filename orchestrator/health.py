"""Liveness (/health), readiness (/ready) and metrics (/metrics) for operators and probes."""

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from core import metrics, redis_keys, workers
from core.errors import error_body
from core.redis_client import get_redis

_migrations_applied = False


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _redis() -> dict:
    get_redis().ping()
    return {}


def _queue() -> dict:
    return {"depth": get_redis().llen(redis_keys.JOB_QUEUE)}


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
    results = {}
    for name, check in CHECKS.items():
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
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
