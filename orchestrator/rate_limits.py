"""Per-workspace and per-address rate limits: a sliding window log in Redis, one round trip.

One Lua script trims the window, counts and records the request atomically, so concurrent
requests on any number of web processes and hosts share one exact count. The clock is Redis's
own (TIME), so web hosts with skewed clocks agree. The submit path runs the same script with the
idempotency `SET NX` folded in: a refused request reserves nothing, and an accepted one costs a
single round trip for both. The same round trip confirms a cached API key: the script first
checks that the credentials generation is still the one the key was cached at, and does nothing
if it is not (api_keys.py).
"""

import logging
import math
import uuid
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from core import redis_keys
from core.metrics import RATE_LIMIT_FAIL_OPEN
from core.redis_client import get_redis
from orchestrator.exceptions import CredentialsUnconfirmed
from orchestrator.models import Workspace

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000

# KEYS[1] window; KEYS[2] credentials generation; KEYS[3] optional idempotency key. ARGV: limit,
# window ms, member, the generation to confirm ('' for none), and for the idempotency key its
# value and TTL. limit 0 means unlimited (no window kept). Returns {allowed, remaining, ms until
# a slot frees, reserved}; reserved is -1 without an idempotency key; allowed is -1 when the
# generation has moved, and then nothing was counted or reserved.
_SCRIPT = """
if ARGV[4] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[4] then
  return {-1, 0, 0, -1}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local remaining, reset = 0, 0
if limit > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[1])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, 0, tonumber(oldest[2]) + window - now, -1}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  remaining = limit - count - 1
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window - now
end
local reserved = -1
if KEYS[3] then
  reserved = redis.call('SET', KEYS[3], ARGV[5], 'NX', 'EX', ARGV[6]) and 1 or 0
end
return {1, remaining, reset, reserved}
"""


# KEYS[1] idempotency key; ARGV[1] the job id this request reserved it with. Deletes the key
# only while it still names that job: a request that has reserved the id since keeps it.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class RateLimit:
    """The outcome of one check, and what the RateLimit-* headers say."""

    limit: int
    remaining: int
    reset_seconds: int
    allowed: bool = True
    # True, False, or None when no idempotency key was asked for or Redis was unreachable.
    reserved: bool | None = None
    # False when Redis was unreachable and the request went through unchecked.
    checked: bool = True

    def headers(self) -> dict[str, str]:
        """The RateLimit-* headers; none for an unlimited workspace or an unchecked request,
        which have no budget to tell."""
        if self.limit == 0 or not self.checked:
            return {}
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(self.reset_seconds, 1))
        return headers


@cache
def _script():
    return get_redis().register_script(_SCRIPT)


def workspace_limit(workspace: Workspace) -> int:
    """Requests a minute the workspace may make: its own figure or RATE_LIMIT_PER_MINUTE."""
    if workspace.rate_limit_per_minute is not None:
        return workspace.rate_limit_per_minute
    return settings.RATE_LIMIT_PER_MINUTE


def hit_workspace_limit(
    *,
    workspace: Workspace,
    reserve: tuple[str, str] | None = None,
    confirm_generation: str | None = None,
) -> RateLimit:
    """Count one request of the workspace; with `reserve` (client_request_id, job id), also
    reserve the idempotency key, only if the request is allowed.

    With `confirm_generation` (a cached key's), raise CredentialsUnconfirmed, having done
    nothing, unless the credentials generation is still that one.
    """
    idempotency = None
    if reserve is not None:
        idempotency = (redis_keys.idempotency_key(workspace.id, reserve[0]), reserve[1])
    return _hit(
        redis_keys.rate_limit_key(workspace.id),
        workspace_limit(workspace),
        idempotency,
        confirm_generation,
    )


def release_reservation(*, workspace: Workspace, client_request_id: str, job_id: str) -> None:
    """Free a client_request_id this request reserved for `job_id` and then did not store."""
    key = redis_keys.idempotency_key(workspace.id, client_request_id)
    try:
        # Not cached: only failed submissions come here.
        get_redis().register_script(_RELEASE_SCRIPT)(keys=[key], args=[job_id])
    except redis.RedisError as exc:
        # Harmless if it stays: a key naming no job sends the next request to the constraint.
        logger.warning("could not release an idempotency reservation: %s", exc)


def hit_auth_failure_limit(*, client_address: str) -> RateLimit:
    """Count one failed authentication from a client address."""
    key = redis_keys.auth_failure_key(client_address)
    return _hit(key, settings.AUTH_FAILURES_PER_MINUTE, None, None)


def _hit(
    key: str, limit: int, idempotency: tuple[str, str] | None, confirm_generation: str | None
) -> RateLimit:
    keys = [key, redis_keys.CREDENTIALS_GENERATION]
    args = [limit, WINDOW_MS, uuid.uuid4().hex, confirm_generation or ""]
    if idempotency is not None:
        keys.append(idempotency[0])
        args += [idempotency[1], settings.IDEMPOTENCY_TTL_SECONDS]
    try:
        allowed, remaining, reset_ms, reserved = _script()(keys=keys, args=args)
    except redis.RedisError as exc:
        if confirm_generation is not None:
            raise CredentialsUnconfirmed() from exc  # the key's row decides, then fail open
        # Fail open: a Redis outage must not take the API down with it. The database still
        # guards idempotency; only throttling is lost until Redis is back.
        RATE_LIMIT_FAIL_OPEN.inc()
        logger.warning("rate limiter unavailable, allowing the request: %s", exc)
        return RateLimit(limit=limit, remaining=limit, reset_seconds=0, checked=False)
    if allowed == -1:
        raise CredentialsUnconfirmed()
    return RateLimit(
        limit=limit,
        remaining=max(int(remaining), 0),
        reset_seconds=math.ceil(int(reset_ms) / 1000),
        allowed=bool(allowed),
        reserved=None if reserved == -1 else bool(reserved),
    )
