"""Which Celery workers are alive: heartbeats in Redis, read by /ready and /metrics."""

import time
from typing import cast

from core import redis_keys
from core.redis_client import get_redis

# Celery sends a heartbeat every 2 s: a worker silent for this long is dead or cut off. Worker
# clocks must agree within a few seconds (NTP), as the score is the worker's own time.
HEARTBEAT_TIMEOUT_SECONDS = 10


def record_heartbeat(hostname: str, *, now: float | None = None) -> None:
    """Mark a worker alive now, and forget the workers silent for too long."""
    now = time.time() if now is None else now
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(redis_keys.WORKERS, {hostname: now})
    pipe.zremrangebyscore(redis_keys.WORKERS, "-inf", now - HEARTBEAT_TIMEOUT_SECONDS)
    pipe.execute()


def forget_worker(hostname: str) -> None:
    """A worker shutting down cleanly leaves at once instead of after the timeout."""
    get_redis().zrem(redis_keys.WORKERS, hostname)


def live_workers(*, now: float | None = None) -> list[str]:
    """Hostnames of the workers heard from within HEARTBEAT_TIMEOUT_SECONDS."""
    now = time.time() if now is None else now
    members = get_redis().zrangebyscore(redis_keys.WORKERS, now - HEARTBEAT_TIMEOUT_SECONDS, "+inf")
    return cast("list[str]", members)  # the client decodes replies (redis_client)
