"""The jobs' domain errors; each OrchestratorError carries a code and an HTTP status."""

from core.exceptions import OrchestratorError


class CredentialsUnconfirmed(Exception):
    """A cached API key could not be confirmed current: the credentials generation moved, or
    Redis could not say. Nothing was counted or reserved; the request must be answered again
    from the key's row (api/base.py), so this never reaches a client."""


class IdempotencyKeyReused(OrchestratorError):
    code = "idempotency_key_reused"
    status = 422


class ModelUnavailable(Exception):
    """The model could not answer now (timeout, connection, 429, 5xx): worth retrying later."""


class ModelRequestFailed(Exception):
    """The model refused the request for good (4xx other than 429): retrying cannot help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(OrchestratorError):
    """The workspace (or client address) is over its rate limit; `rate_limit` says until when."""

    code = "rate_limited"
    status = 429

    def __init__(self, rate_limit, message: str | None = None) -> None:
        super().__init__(
            message
            or f"Rate limit of {rate_limit.limit} requests a minute exceeded; "
            f"retry in {max(rate_limit.reset_seconds, 1)} s."
        )
        self.rate_limit = rate_limit


class CredentialsInUrl(OrchestratorError):
    code = "credentials_in_url"
    status = 400
