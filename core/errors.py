"""The one error format: {"error": {"status", "code", "message", "fields"}}."""

import kombu.exceptions
import redis
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

# A store the request needs did not answer: PostgreSQL (Django wraps psycopg's errors, the
# pool's timeout included), Redis where nothing falls back, or the broker past its retries.
# The client is told to come back later, not that the service is broken.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
)
RETRY_AFTER_SECONDS = 5


def error_body(status: int, code: str, message: str, fields: dict | None = None) -> dict:
    """The body of every error response this service sends."""
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}


def service_unavailable() -> JsonResponse:
    """503 `service_unavailable` with Retry-After: a store the request needs is down."""
    body = error_body(
        503,
        "service_unavailable",
        "A service this request needs is unavailable; try again shortly.",
    )
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
