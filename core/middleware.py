"""Request id and HTTP metrics around every request."""

import time

from django.http import HttpRequest, HttpResponse

from core import log_context, metrics

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    """Honours or generates X-Request-ID, returns it, and counts the request by route pattern."""

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
