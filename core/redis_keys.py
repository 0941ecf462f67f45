"""The one place that knows the Redis key names (importable before Django is configured)."""

import hashlib

# Celery's Redis transport keeps the queue as a list under its own name, so the runbook's
# `redis-cli LLEN ai:queue:pending` counts the jobs waiting for a worker.
JOB_QUEUE = "ai:queue:pending"
# Webhook deliveries wait in a list of their own, so the runbook's count stays a count of jobs.
WEBHOOK_QUEUE = "ai:queue:webhooks"


def idempotency_key(workspace_id: str, client_request_id: str) -> str:
    """Key marking a client_request_id as taken in a workspace (value: the job id)."""
    return f"ai:idempotency:{workspace_id}:{client_request_id}"


# Counters and histograms shared by every process on every host (web, workers), one hash field
# per series; /metrics reads them all at scrape.
METRICS = "ai:metrics"

# Bumped (INCR) by every change to an API key or a workspace: web processes drop the keys they
# cached once it moves (api_keys.py).
CREDENTIALS_GENERATION = "ai:auth:generation"

# Live Celery workers: a sorted set of worker hostnames scored by their last heartbeat (epoch s).
WORKERS = "ai:workers"


def rate_limit_key(workspace_id: str) -> str:
    """Sorted set of a workspace's requests in the last minute (sliding window log)."""
    return f"ai:ratelimit:workspace:{workspace_id}"


def auth_failure_key(client_address: str) -> str:
    """Sorted set of one client address's failed authentications in the last minute."""
    return f"ai:ratelimit:auth-failures:{client_address}"


def admin_login_address_key(client_address: str) -> str:
    """Sorted set of one client address's recent failed admin logins (sliding window)."""
    return f"ai:ratelimit:admin-login:address:{client_address}"


def admin_login_user_key(username: str) -> str:
    """Sorted set of one username's recent failed admin logins, from any address."""
    # Hashed: a typed username is any text of any length; case-folded, so "Admin" counts too.
    digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    return f"ai:ratelimit:admin-login:user:{digest}"
