"""Issuing and checking workspace API keys.

A key reads `aio_<prefix>_<secret>`: the fixed tag makes leaked keys greppable, the prefix finds
the row, and only HMAC-SHA256(API_KEY_PEPPER, secret) is stored. The plaintext exists once, in
the return value of `issue_api_key`.

Each web process keeps the keys it has authenticated, with their workspace, so a request costs
no database query: the key's row was a quarter of the submit path. Every request still checks
its digest, scopes and expiry. Any change to a key or a workspace bumps the credentials
generation in Redis, and a cached key is only provisional until the request's rate-limit round
trip has found the generation it was cached at (rate_limits.py): the check costs no round trip
of its own, and a revocation still holds on the very next request in every process. When the
generation has moved, or Redis cannot say, the request is answered again from the key's row
(api/base.py). Past API_KEY_CACHE_SECONDS the row is read again in any case.
"""

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import redis_keys
from core.redis_client import get_redis
from orchestrator.models import ApiKey, Workspace

logger = logging.getLogger(__name__)

KEY_TAG = "aio"
SCOPES: tuple[str, ...] = ("jobs:read", "jobs:write", "actions:approve")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class UnknownScope(ValueError):
    """A scope name that no view checks: refused so a typo cannot mint a useless key."""


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str


def digest_secret(secret: str) -> str:
    """HMAC-SHA256 of a key's secret part under the pepper; fast, so fine on every request."""
    return hmac.new(settings.API_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def issue_api_key(
    *,
    workspace: Workspace,
    scopes: list[str],
    name: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create a key and return it with its plaintext, which is never available again."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scopes {unknown}; known scopes are {list(SCOPES)}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=prefix,
        digest=digest_secret(secret),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    return IssuedKey(api_key=api_key, plaintext=f"{KEY_TAG}_{prefix}_{secret}")


@dataclass(frozen=True)
class Authenticated:
    """A key that matched, and whether it still has to be confirmed current."""

    api_key: ApiKey
    # For a key served from this process's cache: the credentials generation it was cached at,
    # which the request's rate-limit round trip must still find (hit_workspace_limit's
    # confirm_generation). None when the key's row was read for this request.
    unconfirmed_generation: str | None = None


def authenticate_api_key(plaintext: str, *, use_cache: bool = True) -> Authenticated | None:
    """The active key matching `plaintext`, or None; the caller cannot tell why it failed.

    A key from the cache comes back unconfirmed: the caller must confirm its generation before
    acting on it. `use_cache=False` reads the key's row.
    """
    tag, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    if tag != KEY_TAG or not prefix or not secret:
        return None
    entry = _cached(prefix) if use_cache else None
    if entry is not None:
        api_key = entry.api_key
    else:
        # Read before the row, so a change committed after the row was read bumps it past this.
        generation = _generation()
        api_key = ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
    # Digest even when the prefix is unknown, so an unknown prefix and a wrong secret take as
    # long. (A cached key answers sooner than a row read: timing may tell a prefix in use, 48
    # random bits that are worth nothing without the secret.)
    candidate = digest_secret(secret)
    if api_key is None or not hmac.compare_digest(candidate, api_key.digest):
        return None
    now = timezone.now()
    if not api_key.is_active(now):
        return None
    _touch_last_used(api_key, now)
    if entry is not None:
        return Authenticated(api_key, unconfirmed_generation=entry.generation)
    if generation is not None:
        _remember(api_key, generation)
    return Authenticated(api_key)


def forget_cached_keys() -> None:
    """Make every process read keys and workspaces again (after a change to either)."""
    forget_cached_keys_here()
    try:
        get_redis().incr(redis_keys.CREDENTIALS_GENERATION)
    except redis.RedisError as exc:
        # Other processes keep what they hold for at most API_KEY_CACHE_SECONDS.
        logger.warning("credentials generation not bumped, Redis unavailable: %s", exc)


def forget_cached_keys_here() -> None:
    """Drop this process's cached keys (once the generation is known to have moved)."""
    _cache.clear()


def forget_cached_keys_on_commit() -> None:
    """Forget this process's keys now, and every process's once the current transaction
    commits (at once in autocommit), when the change is there to be read."""
    forget_cached_keys_here()
    transaction.on_commit(forget_cached_keys, robust=True)


@dataclass(frozen=True)
class _Entry:
    api_key: ApiKey
    generation: str
    loaded_at: float


# By prefix, in this process; only keys that authenticated, so its size is bounded by the keys
# in use. Plain dict operations: safe under the GIL for threaded servers too.
_cache: dict[str, _Entry] = {}
_CACHE_LIMIT = 10_000


def _generation() -> str | None:
    if not settings.API_KEY_CACHE_SECONDS:
        return None  # no cache to check: the row is read anyway, so no round trip for this
    try:
        return get_redis().get(redis_keys.CREDENTIALS_GENERATION) or "0"
    except redis.RedisError:
        return None  # unknown: read the row, cache nothing


def _cached(prefix: str) -> _Entry | None:
    entry = _cache.get(prefix)
    if entry is None or time.monotonic() - entry.loaded_at >= settings.API_KEY_CACHE_SECONDS:
        return None
    return entry


def _remember(api_key: ApiKey, generation: str) -> None:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[api_key.prefix] = _Entry(api_key, generation, time.monotonic())


def _touch_last_used(api_key: ApiKey, now: datetime) -> None:
    # At most one write a minute per key: last use is for humans, not worth a write per request.
    stale_before = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at >= stale_before:
        return
    # A cached copy may not know yet that the key was revoked: never record a use after that.
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before)
    ).update(last_used_at=now)
    api_key.last_used_at = now


def list_api_keys(*, workspace: Workspace | None = None) -> list[ApiKey]:
    """Keys of one workspace, or of all, oldest first (for operators: never a secret)."""
    keys = ApiKey.objects.order_by("workspace_id", "created_at", "pk")
    if workspace is not None:
        keys = keys.filter(workspace=workspace)
    return list(keys)


def find_api_key(reference: str) -> ApiKey | None:
    """The key whose public prefix is `reference`, else the key whose id it is."""
    reference = reference.strip()
    # The prefix first: a prefix of digits only would otherwise name two keys.
    api_key = ApiKey.objects.filter(prefix=reference).first()
    if api_key is None and reference.isdigit() and len(reference) <= 18:  # ids fit a bigint
        api_key = ApiKey.objects.filter(pk=int(reference)).first()
    return api_key


def revoke_api_key(*, api_key: ApiKey) -> None:
    """Revoke a key from now on; revoking twice keeps the first time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    forget_cached_keys_on_commit()


def expiry_in_days(days: int | None) -> datetime | None:
    """The expiry `days` from now, or None for a key that does not expire."""
    return None if days is None else timezone.now() + timedelta(days=days)
