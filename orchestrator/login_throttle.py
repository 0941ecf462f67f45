"""Admin login throttle: failed attempts per client address and per username, in Redis.

Each attempt is counted, atomically with the check, in two sliding windows (the address's and the
username's) before the password is checked, so parallel guesses cannot slip past the limit; a
successful attempt is taken back out. Once either window holds ADMIN_LOGIN_MAX_FAILURES, attempts
are refused without checking a password until the oldest failure is ADMIN_LOGIN_WINDOW_SECONDS
old. A success removes only its own attempt: it never clears failures counted elsewhere.

With Redis unreachable the throttle fails open (a warning and ai_rate_limit_fail_open): the admin
is where operators work through an incident, a Redis outage included, and every login still
needs the password.
"""

import logging
import math
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings

from core import redis_keys
from core.metrics import RATE_LIMIT_FAIL_OPEN
from core.redis_client import get_redis

logger = logging.getLogger(__name__)

# KEYS: the windows. ARGV: limit, window ms, member. Returns 0 after counting the attempt in
# every window, or the ms until each full window has room again (nothing counted).
_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(freeing[2]) + window - now, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


@dataclass(frozen=True)
class LoginAttempt:
    """One counted attempt, or a refusal saying how long to wait."""

    allowed: bool
    retry_after_seconds: int = 0
    keys: tuple[str, ...] = ()
    member: str = ""


def begin_login_attempt(*, client_address: str, username: str) -> LoginAttempt:
    """Count an attempt for the address and the username, unless either is locked out."""
    keys = (
        redis_keys.admin_login_address_key(client_address),
        redis_keys.admin_login_user_key(username),
    )
    member = uuid.uuid4().hex
    window_ms = settings.ADMIN_LOGIN_WINDOW_SECONDS * 1000
    try:
        # Registered per call (a local hash, no round trip): logins are rare, and the script is
        # then always bound to the current client.
        script = get_redis().register_script(_SCRIPT)
        wait_ms = script(keys=keys, args=[settings.ADMIN_LOGIN_MAX_FAILURES, window_ms, member])
    except redis.RedisError as exc:
        RATE_LIMIT_FAIL_OPEN.inc()
        logger.warning("admin login throttle unavailable, allowing the attempt: %s", exc)
        return LoginAttempt(allowed=True)
    if wait_ms:
        logger.warning("admin login refused for %s: too many failed attempts", client_address)
        return LoginAttempt(allowed=False, retry_after_seconds=math.ceil(int(wait_ms) / 1000))
    return LoginAttempt(allowed=True, keys=keys, member=member)


def forget_login_attempt(attempt: LoginAttempt) -> None:
    """A successful attempt is no failure: take it back out of its windows, and only it."""
    if not attempt.member:
        return
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for key in attempt.keys:
                pipe.zrem(key, attempt.member)
            pipe.execute()
    except redis.RedisError as exc:
        logger.warning("admin login throttle unavailable, a success stays counted: %s", exc)
