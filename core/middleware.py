"""Request id and HTTP metrics around every request; a JSON 503 when a store is down."""

import logging
import time

from django.http import HttpRequest, HttpResponse

from core import log_context, metrics
from core.errors import DEPENDENCY_ERRORS, service_unavailable

logger = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    """Honours or generates X-Request-ID, returns it, and counts the request by route pattern.

    A view that fails because PostgreSQL, Redis or the broker is unreachable answers a JSON 503
    with Retry-After, in every view (API, admin, probes) and whatever DEBUG is: an outage is
    not a bug, and must not show a 500 or Django's HTML debug page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = log_context.request_id_from(request.headers.get("X-Request-ID"))
        # Every field is bound afresh, so nothing of the previous request on this thread stays.
        # Not unbound at the end: Django logs 4xx and 5xx responses after the middleware returns,
        # and those lines must carry the request's id too.
        log_context.bind(request_id=request_id, workspace=None, job_id=None, task_id=None)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        # The route pattern, not the path: job ids in the label would grow without bound.
        match = getattr(request, "resolver_match", None)
        path = f"/{match.route}" if match is not None and match.route else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        metrics.http_requests.labels(path, method, str(response.status_code)).inc()
        metrics.http_request_duration.labels(path, method).observe(elapsed)
        response["X-Request-ID"] = request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DEPENDENCY_ERRORS):
            return None  # a bug: Django's handler500 answers and logs the traceback
        # One line, no traceback: during an outage every request fails the same way.
        logger.warning(
            "%s %s answered 503: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            str(exception).strip()[:300],
        )
        return service_unavailable()
