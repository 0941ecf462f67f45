"""Every error the API sends is raised as the client class of its code: the server's own error
rendering (core.errors, the DRF handler, the Django handlers) is the input."""

import json
import time
from email.utils import formatdate

import httpx
import pytest
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions

import orchestrator.api.urls  # noqa: F401 - imports every module that defines a domain error
from core.exceptions import OrchestratorError
from orchestrator.api import errors as server_errors
from orchestrator.api.permissions import InsufficientScope
from orchestrator_client import (
    ApiError,
    ConflictError,
    InternalServerError,
    OrchestratorClientError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
)
from orchestrator_client.errors import ERROR_CLASSES, error_from_response


def _subclasses(cls: type) -> list[type]:
    return [cls, *[sub for direct in cls.__subclasses__() for sub in _subclasses(direct)]]


def _from_server(status: int, body: bytes) -> ApiError:
    """The client's exception for an error the server rendered."""
    headers = {"Content-Type": "application/json", "X-Request-ID": "req-1"}
    return error_from_response(httpx.Response(status, content=body, headers=headers))


def test_every_domain_error_code_of_the_server_has_its_class():
    domain = [cls for cls in _subclasses(OrchestratorError) if cls is not OrchestratorError]
    assert len(domain) >= 10  # the modules defining them were imported

    for cls in domain:
        client_class = ERROR_CLASSES.get(cls.code)
        assert client_class is not None, f"no client class for {cls.__name__} ({cls.code})"
        body = {"error": {"status": cls.status, "code": cls.code, "message": "m", "fields": {}}}
        raised = error_from_response(httpx.Response(cls.status, json=body))
        assert type(raised) is client_class and raised.status == cls.status


@pytest.mark.parametrize(
    "exc",
    [
        exceptions.NotAuthenticated(),
        exceptions.AuthenticationFailed(),
        InsufficientScope("missing jobs:write"),
        exceptions.ParseError("bad JSON"),
        exceptions.ValidationError({"prompt": ["required"]}),
        exceptions.NotFound(),
        exceptions.MethodNotAllowed("PUT"),
        exceptions.NotAcceptable(),
        exceptions.UnsupportedMediaType("text/plain"),
        RequestDataTooBig(),
    ],
)
def test_every_error_the_drf_handler_renders_has_its_class(exc):
    rendered = server_errors.handle_exception(exc, {})
    code = rendered.data["error"]["code"]

    raised = _from_server(rendered.status_code, json.dumps(rendered.data).encode())

    assert type(raised) is ERROR_CLASSES[code], code
    assert (raised.status, raised.code, raised.request_id) == (rendered.status_code, code, "req-1")
    assert raised.message == rendered.data["error"]["message"]
    assert dict(raised.fields) == rendered.data["error"]["fields"]


@pytest.mark.parametrize(
    "handler", [server_errors.not_found, server_errors.bad_request, server_errors.forbidden]
)
def test_every_error_the_django_handlers_render_has_its_class(rf, handler):
    rendered = handler(rf.get("/"))
    code = json.loads(rendered.content)["error"]["code"]
    assert type(_from_server(rendered.status_code, rendered.content)) is ERROR_CLASSES[code]


def test_a_500_is_an_internal_server_error(rf):
    rendered = server_errors.server_error(rf.get("/"))
    raised = _from_server(rendered.status_code, rendered.content)
    assert type(raised) is InternalServerError and isinstance(raised, ServerError)


def test_an_answer_outside_the_format_gets_the_class_of_its_status():
    proxy_page = error_from_response(httpx.Response(503, text="<html>down</html>"))
    newer_conflict = error_from_response(
        httpx.Response(409, json={"error": {"code": "job_archived", "message": "archived"}})
    )
    gateway = error_from_response(httpx.Response(502, text="Bad Gateway"))
    teapot = error_from_response(httpx.Response(418, json={"detail": "no"}))

    assert type(proxy_page) is ServiceUnavailableError and proxy_page.code == "http_503"
    assert type(newer_conflict) is ConflictError and newer_conflict.code == "job_archived"
    assert type(gateway) is ServerError and gateway.message == "Bad Gateway"
    assert type(teapot) is ApiError and teapot.code == "http_418"


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    in_seconds = error_from_response(httpx.Response(429, headers={"Retry-After": "7"}))
    as_date = error_from_response(
        httpx.Response(429, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    )
    garbage = error_from_response(httpx.Response(429, headers={"Retry-After": "soon"}))

    assert type(in_seconds) is RateLimitedError and in_seconds.retry_after == 7
    assert 28 <= as_date.retry_after <= 30
    assert garbage.retry_after is None


def test_one_base_for_every_exception_of_the_client():
    assert all(issubclass(cls, ApiError) for cls in ERROR_CLASSES.values())
    assert issubclass(ApiError, OrchestratorClientError)
    assert len(set(ERROR_CLASSES.values())) == len(ERROR_CLASSES)  # one class per code
