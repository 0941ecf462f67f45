"""The client's exceptions: one class per error code the API sends, all under ApiError, plus the
failures that never got an API answer (connection, timeout) and the client's own checks."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx


class OrchestratorClientError(Exception):
    """The base of every exception this package raises."""


class ApiError(OrchestratorClientError):
    """An error answer of the API, in its one format: {"error": {status, code, message, fields}}.

    `request_id` is the X-Request-ID the server logged the request under (quote it in a support
    request); `retry_after` is the Retry-After header in seconds, when the answer carried one.
    """

    code: str = ""  # the API's code of the class; an instance holds the code it received

    def __init__(
        self,
        *,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.fields: Mapping[str, Any] = fields or {}
        self.request_id = request_id
        self.retry_after = retry_after
        text = f"{status} {code}: {message}"
        super().__init__(f"{text} (request id {request_id})" if request_id else text)


# --- 400 --------------------------------------------------------------------------------------


class InvalidRequestError(ApiError):
    """A field or query parameter was refused; `fields` maps each name to its messages."""

    code = "invalid_request"


class MalformedJsonError(ApiError):
    code = "malformed_json"


class CredentialsInUrlError(ApiError):
    """An API key appeared in the URL: treat it as leaked and revoke it."""

    code = "credentials_in_url"


class BadRequestError(ApiError):
    """A request the server could not take at all (e.g. an unknown Host)."""

    code = "bad_request"


# --- 401, 403, 404, 405, 406 ------------------------------------------------------------------


class AuthenticationError(ApiError):
    """Missing, unknown, wrong, revoked or expired API key (all look alike)."""

    code = "unauthenticated"


class InsufficientScopeError(ApiError):
    """The key lacks a scope this operation needs (the message names it)."""

    code = "insufficient_scope"


class ForbiddenError(ApiError):
    code = "forbidden"


class NotFoundError(ApiError):
    """No such job or action in this workspace (another workspace's looks the same)."""

    code = "not_found"


class MethodNotAllowedError(ApiError):
    code = "method_not_allowed"


class NotAcceptableError(ApiError):
    code = "not_acceptable"


# --- 409 --------------------------------------------------------------------------------------


class ConflictError(ApiError):
    """The object is no longer in a state where this operation applies."""


class JobFinishedError(ConflictError):
    """The job had already finished: it cannot be cancelled."""

    code = "job_finished"


class ActionNotPendingError(ConflictError):
    """The action was already decided, or was never waiting for approval."""

    code = "action_not_pending"


class ApprovalExpiredError(ConflictError):
    """Nobody decided before the approval expired; the action will not run."""

    code = "approval_expired"


class ArgumentsChangedError(ConflictError):
    """arguments_hash does not match the arguments awaiting approval."""

    code = "arguments_changed"


# --- 413, 415, 422, 429 -----------------------------------------------------------------------


class RequestTooLargeError(ApiError):
    code = "request_too_large"


class UnsupportedMediaTypeError(ApiError):
    code = "unsupported_media_type"


class IdempotencyKeyReusedError(ApiError):
    """This client_request_id was used before with a different body."""

    code = "idempotency_key_reused"


class RateLimitedError(ApiError):
    """Over the workspace's rate limit (or too many wrong keys): see `retry_after`."""

    code = "rate_limited"


# --- 5xx --------------------------------------------------------------------------------------


class ServerError(ApiError):
    """The server failed (5xx); a 5xx other than 500 and 503 has this class itself."""


class InternalServerError(ServerError):
    code = "internal_error"


class ServiceUnavailableError(ServerError):
    """A dependency of the server is down for now; worth retrying after `retry_after`."""

    code = "service_unavailable"


# --- Failures without an API answer -----------------------------------------------------------


class ApiConnectionError(OrchestratorClientError):
    """The request got no HTTP answer: refused or dropped connection, DNS, TLS; the httpx
    exception is its __cause__."""


class ApiTimeoutError(ApiConnectionError):
    """Connecting, sending or reading took longer than the client's timeout."""


class UnexpectedResponseError(OrchestratorClientError):
    """A success status whose body is not what this API sends (a proxy's page, another API)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebhookVerificationError(OrchestratorClientError):
    """A webhook request whose headers, age or signature do not check out: do not trust it."""


class JobWaitTimeout(OrchestratorClientError, TimeoutError):
    """wait_for_job gave up; `job` is the last state seen."""

    def __init__(self, message: str, *, job: Any) -> None:
        super().__init__(message)
        self.job = job


ERROR_CLASSES: Mapping[str, type[ApiError]] = {
    cls.code: cls
    for cls in [
        InvalidRequestError,
        MalformedJsonError,
        CredentialsInUrlError,
        BadRequestError,
        AuthenticationError,
        InsufficientScopeError,
        ForbiddenError,
        NotFoundError,
        MethodNotAllowedError,
        NotAcceptableError,
        JobFinishedError,
        ActionNotPendingError,
        ApprovalExpiredError,
        ArgumentsChangedError,
        RequestTooLargeError,
        UnsupportedMediaTypeError,
        IdempotencyKeyReusedError,
        RateLimitedError,
        InternalServerError,
        ServiceUnavailableError,
    ]
}

# For a code this version does not know (a newer server), or an answer not in the API's format
# (a proxy's 503 page): the class of its status, so `except RateLimitedError` still works.
_BY_STATUS: Mapping[int, type[ApiError]] = {
    409: ConflictError,
    429: RateLimitedError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception of an error answer: by its code, else by its status."""
    error = _error_object(response)
    code = error.get("code")
    message = error.get("message")
    fields = error.get("fields")
    status = response.status_code
    if isinstance(code, str) and code in ERROR_CLASSES:
        cls = ERROR_CLASSES[code]
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    else:
        cls = ServerError if status >= 500 else ApiError
    return cls(
        status=status,
        code=code if isinstance(code, str) else f"http_{status}",  # not the API's format
        message=message if isinstance(message, str) else response.reason_phrase,
        fields=fields if isinstance(fields, Mapping) else None,
        request_id=response.headers.get("X-Request-ID"),
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _error_object(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:  # not JSON, or not UTF-8
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
