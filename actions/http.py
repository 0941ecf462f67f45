"""The one outbound HTTP client of the connectors: timeouts, no hidden retries, safe retrying.

A send is retried only when the provider certainly did not accept it: it answered 429 or 5xx,
or the connection could not be made. Any other transport failure (a read timeout, a dropped
connection) may come after the provider accepted the message, so it is never retried.
"""

import email.utils
import logging
import random
import time
from collections.abc import Callable
from functools import cache

import httpx2
from django.conf import settings

from actions.connectors.base import ConnectorError, OutcomeUnknown

logger = logging.getLogger(__name__)

# Nothing was sent on these: the request never left (connect failed, or no pooled connection).
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
BACKOFF_BASE_SECONDS = 0.5


@cache
def client() -> httpx2.Client:
    """The process-wide client: bounded timeouts, no redirects, no transport retries."""
    return httpx2.Client(
        timeout=httpx2.Timeout(
            settings.OUTBOUND_READ_TIMEOUT_SECONDS,
            connect=settings.OUTBOUND_CONNECT_TIMEOUT_SECONDS,
        ),
        follow_redirects=False,
        transport=httpx2.HTTPTransport(retries=0),
        headers={"User-Agent": "ai-orchestrator"},
    )


def post_form(url: str, data: dict) -> httpx2.Response:
    """POST a form (token endpoints); has no side effect, so any transport failure is retryable."""
    try:
        return client().post(url, data=data)
    except httpx2.TransportError as exc:
        raise ConnectorError(
            f"token endpoint unreachable: {type(exc).__name__}", permanent=False
        ) from None


def send(request: Callable[[], httpx2.Response]) -> httpx2.Response:
    """Call `request` until it gets an answer that is not 429/5xx, at most SEND_MAX_RETRIES more.

    Waits honour Retry-After (seconds or an HTTP date) up to SEND_RETRY_MAX_WAIT_SECONDS, else
    exponential backoff with full jitter. Raises OutcomeUnknown when the provider may have acted.
    """
    for attempt in range(settings.SEND_MAX_RETRIES + 1):
        last_try = attempt == settings.SEND_MAX_RETRIES
        try:
            response = request()
        except _NOT_SENT as exc:
            if last_try:
                raise ConnectorError(
                    f"provider unreachable: {type(exc).__name__}", permanent=False
                ) from None
            wait = _backoff(attempt)
        except httpx2.TransportError as exc:
            raise OutcomeUnknown(
                f"no answer after the request was sent ({type(exc).__name__})"
            ) from None
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            if last_try:
                return response
            wait = _retry_after(response)
            if wait is None:
                wait = _backoff(attempt)
            elif wait > settings.SEND_RETRY_MAX_WAIT_SECONDS:
                return response  # the provider asks for longer than we may wait: give up now
        logger.info("provider busy or unreachable; retry %d in %.2fs", attempt + 1, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises on its last try


def provider_message(response: httpx2.Response) -> str:
    """The provider's own error message (Google and Graph both use {"error": {"message"}})."""
    try:
        error = response.json().get("error")
    except ValueError:
        return response.text[:300]
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:300]
    return str(error)[:300] if error else response.text[:300]


def _backoff(attempt: int) -> float:
    ceiling = min(settings.SEND_RETRY_MAX_WAIT_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
