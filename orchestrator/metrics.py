"""Prometheus metrics of the web tier (exposition is the metrics issue's concern)."""

from prometheus_client import Counter

RATE_LIMIT_FAIL_OPEN = Counter(
    "orchestrator_rate_limit_fail_open",
    "Requests allowed without a rate-limit check because Redis was unreachable.",
)
