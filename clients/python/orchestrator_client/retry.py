"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator_client.errors import ApiConnectionError, ApiError, OrchestratorClientError

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls (reads, submit, cancel) after a connection failure, a 429
    or a 503, with exponential backoff and jitter; Retry-After, when sent, is the wait.

    Approve and reject are never retried: a lost answer would turn a success into a 409.
    """

    max_retries: int = 3
    initial_delay: float = 0.5  # seconds; the cap doubles with each retry...
    max_delay: float = 8.0  # ...up to this
    # A longer Retry-After is not waited out: the error is raised for the caller to decide.
    max_retry_after: float = 60.0

    def delay(
        self, *, retry: int, idempotent: bool, failure: OrchestratorClientError
    ) -> float | None:
        """Seconds to wait before retry number `retry` (0 for the first), or None to give up
        and raise `failure`."""
        if retry >= self.max_retries or not idempotent:
            return None
        if isinstance(failure, ApiConnectionError):
            return self.backoff(retry)
        if not isinstance(failure, ApiError) or failure.status not in RETRIED_STATUSES:
            return None
        if failure.retry_after is None:
            return self.backoff(retry)
        return failure.retry_after if failure.retry_after <= self.max_retry_after else None

    def backoff(self, retry: int) -> float:
        """Half the capped exponential delay plus a random half: clients that failed together
        spread out, and each wait still grows (full jitter may retry at once)."""
        cap = min(self.max_delay, self.initial_delay * 2.0**retry)
        return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 - jitter, not a secret
