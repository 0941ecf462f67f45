"""The process-wide Redis client for idempotency keys and readiness checks."""

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    """One pooled client per process, with the runbook's timeout and pool size."""
    # A blocking pool makes a thread wait for a free connection instead of failing when the
    # worker's threads outnumber the pool.
    pool = redis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)
