"""The client's logic without I/O: what each operation asks, how its answer is read, when a
failure is retried. Each operation is a plan, a generator that yields the steps to perform
(an HTTP request, a sleep) and receives their outcomes; the sync and the async client each
run the same plans with their own HTTP client and sleep.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

import httpx

from orchestrator_client._version import __version__
from orchestrator_client.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    JobWaitTimeout,
    OrchestratorClientError,
    UnexpectedResponseError,
    error_from_response,
)
from orchestrator_client.models import (
    Action,
    Job,
    JobFields,
    JobFilters,
    JobSummary,
    Page,
    actions_from_json,
)
from orchestrator_client.retry import RetryPolicy

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None  # sent as JSON unless None
    # Safe to send twice: retried after any failure the policy names.
    idempotent: bool = False
    # One id for every attempt of a call, so the server's logs tie the retries together.
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


Step: TypeAlias = Request | Sleep
# What a step came to: the answer or the transport failure of a Request, None after a Sleep.
Outcome: TypeAlias = httpx.Response | httpx.TransportError | None
Plan: TypeAlias = Generator[Step, Outcome, T]


def advance(plan: Plan[T], outcome: Outcome) -> Step | Done[T]:
    """Hand a plan the outcome of its last step (None to start it): its next step, or Done."""
    try:
        return plan.send(outcome)
    except StopIteration as done:
        return Done(done.value)


H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class ClientBase(Generic[H]):
    """What the sync and the async client share: configuration and the HTTP client's ownership."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        http_client: H | None = None,
    ) -> None:
        """`retry_policy` overrides `max_retries`; an `http_client` passed in is used as is
        (proxies, TLS, event hooks) and left open when this client closes."""
        self._ops = Operations(
            base_url,
            api_key,
            timeout=timeout,
            retry_policy=retry_policy or RetryPolicy(max_retries=max_retries),
        )
        self._owns_http = http_client is None
        self._http: H = http_client if http_client is not None else self._new_http_client()

    def _new_http_client(self) -> H:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._ops.base_url!r})"  # never the key


class Operations:
    """The API's operations as plans, for one base URL and key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout,
        retry_policy: RetryPolicy,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry_policy = retry_policy
        # Set on each request rather than on the HTTP client, so a client the caller passes in
        # (proxies, custom TLS, event hooks) works unchanged.
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"orchestrator-client/{__version__} httpx/{httpx.__version__}",
        }

    def http_args(self, request: Request) -> dict[str, Any]:
        """Keyword arguments of httpx's build_request for a Request step."""
        return {
            "method": request.method,
            "url": self.base_url + request.path,
            "params": request.params,
            "json": request.body,
            "headers": {**self._headers, "X-Request-ID": request.request_id},
            "timeout": self.timeout,
        }

    # --- Jobs -----------------------------------------------------------------------------

    def submit(self, client_request_id: str | None, fields: JobFields) -> Plan[Job]:
        # Made up once, before the first attempt: every retry carries the same id, so a
        # submission whose answer was lost is answered with its job rather than run twice.
        body = {"client_request_id": client_request_id or f"req-{uuid.uuid4().hex}", **fields}
        response = yield from self.call(Request("POST", "/ai/jobs", body=body, idempotent=True))
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return Job.from_json(_json(response), replayed=replayed)

    def get_job(self, job_id: str) -> Plan[Job]:
        response = yield from self.call(Request("GET", f"/ai/jobs/{_segment(job_id)}"))
        return Job.from_json(_json(response))

    def list_jobs(self, filters: JobFilters) -> Plan[Page[JobSummary]]:
        response = yield from self.call(Request("GET", "/ai/jobs", params=_query(filters)))
        return Page.of_jobs(_json(response))

    def cancel(self, job_id: str) -> Plan[Job]:
        # Cancelling a cancelled job answers the same job: safe to retry.
        path = f"/ai/jobs/{_segment(job_id)}/cancel"
        response = yield from self.call(Request("POST", path, idempotent=True))
        return Job.from_json(_json(response))

    def wait_for_job(
        self, job_id: str, *, timeout: float, poll_interval: float, max_poll_interval: float
    ) -> Plan[Job]:
        """Poll until the job is final, the interval doubling up to max_poll_interval."""
        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            job = yield from self.get_job(job_id)
            if job.is_final:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobWaitTimeout(f"job {job_id} still {job.status} after {timeout}s", job=job)
            yield Sleep(min(interval, remaining))
            interval = min(interval * 2, max_poll_interval)

    # --- Actions --------------------------------------------------------------------------

    def list_actions(self, status: str | None) -> Plan[list[Action]]:
        params = {"status": status} if status is not None else None
        response = yield from self.call(Request("GET", "/ai/actions", params=params))
        return actions_from_json(_json(response))

    def approve(self, action_id: int, arguments_hash: str) -> Plan[Action]:
        path = f"/ai/actions/{_action_segment(action_id)}/approve"
        body = {"arguments_hash": arguments_hash}
        response = yield from self.call(Request("POST", path, body=body))
        return Action.from_json(_json(response))

    def reject(self, action_id: int) -> Plan[Action]:
        path = f"/ai/actions/{_action_segment(action_id)}/reject"
        response = yield from self.call(Request("POST", path))
        return Action.from_json(_json(response))

    # --- Transport ------------------------------------------------------------------------

    def call(self, request: Request) -> Plan[httpx.Response]:
        """The successful answer to `request`, retried as the policy says; else its error."""
        retry = 0
        while True:
            outcome = yield request
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                return outcome
            failure = _failure(outcome)
            delay = self.retry_policy.delay(
                retry=retry,
                idempotent=request.idempotent or request.method == "GET",
                failure=failure,
            )
            if delay is None:
                raise failure
            retry += 1
            yield Sleep(delay)


def _failure(outcome: Outcome) -> OrchestratorClientError:
    if isinstance(outcome, httpx.Response):
        if outcome.status_code >= 400:
            return error_from_response(outcome)
        return UnexpectedResponseError(
            f"unexpected HTTP {outcome.status_code} answer", status=outcome.status_code
        )
    if isinstance(outcome, httpx.TimeoutException):
        failure: ApiConnectionError = ApiTimeoutError(f"timed out: {outcome}")
    elif outcome is not None:
        failure = ApiConnectionError(f"{type(outcome).__name__}: {outcome}")
    else:
        raise RuntimeError("a request step was answered with nothing")
    failure.__cause__ = outcome
    return failure


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponseError(
            f"HTTP {response.status_code} answer is not JSON "
            f"({response.headers.get('Content-Type', 'no content type')})",
            status=response.status_code,
        ) from None


def _segment(job_id: str) -> str:
    # An id is one path segment: "x/../../actions" must not reach another route.
    return quote(job_id, safe="")


def _action_segment(action_id: int) -> str:
    if isinstance(action_id, bool) or not isinstance(action_id, int):
        raise TypeError(f"an action id is an int, not {type(action_id).__name__}")
    return str(action_id)


def _query(filters: JobFilters) -> dict[str, Any]:
    params: dict[str, Any] = {name: value for name, value in filters.items() if value is not None}
    for name in ("created_after", "created_before"):
        moment = filters.get(name)
        if isinstance(moment, datetime):
            params[name] = moment.isoformat()
    status = filters.get("status")
    if status is not None and not isinstance(status, str):
        params["status"] = list(status)  # status=a&status=b
    return params
