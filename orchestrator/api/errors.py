"""The one error format: {"error": {"status", "code", "message", "fields"}}."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import error_body
from core.exceptions import OrchestratorError

logger = logging.getLogger(__name__)

UNAUTHENTICATED_MESSAGE = "A valid API key is required (Authorization: Bearer <key>)."


def handle_exception(exc, context) -> Response | None:
    """DRF exception handler: domain, DRF and Django errors in the one format."""
    headers = {}
    if isinstance(exc, OrchestratorError):
        status, code, message, fields = exc.status, exc.code, exc.message, exc.fields
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # Missing, unknown, wrong, revoked and expired keys all look alike to the caller.
        status, code, message, fields = 401, "unauthenticated", UNAUTHENTICATED_MESSAGE, {}
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, RequestDataTooBig):
        status, code, fields = 413, "request_too_large", {}
        message = f"The request body exceeds {settings.MAX_REQUEST_BODY_BYTES // 1024} KiB."
    elif isinstance(exc, exceptions.ParseError):
        # The parser's own words (parsers.py): where the JSON breaks, or which literal it refused.
        status, code, message, fields = 400, "malformed_json", str(exc.detail), {}
    elif isinstance(exc, exceptions.ValidationError):
        status, code, message = 400, "invalid_request", "The request has invalid fields."
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    elif isinstance(exc, Http404 | exceptions.NotFound):
        status, code, message, fields = 404, "not_found", "Not found.", {}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        status = exc.status_code
        code = codes if isinstance(codes, str) else exc.default_code
        message, fields = str(exc.detail), {}
    else:
        return None  # a bug: Django's handler500 answers, and the traceback is logged
    if status >= 500:
        logger.error("request failed with %s: %s", status, code)
    return Response(error_body(status, code, message, fields), status=status, headers=headers)


def _json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, message), status=status)


def not_found(request, exception=None) -> JsonResponse:
    return _json_error(404, "not_found", "Not found.")


def bad_request(request, exception=None) -> JsonResponse:
    return _json_error(400, "bad_request", "Bad request.")


def forbidden(request, exception=None) -> JsonResponse:
    return _json_error(403, "forbidden", "Forbidden.")


def server_error(request) -> JsonResponse:
    return _json_error(500, "internal_error", "Internal server error.")
