"""The client: submit (idempotent, retried), get, list, cancel, wait; verify a webhook."""

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from standardwebhooks import Webhook

Job = dict[str, Any]
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class ApiError(Exception):
    """An error answer of the API, in its one format."""

    def __init__(
        self, status: int, body: Mapping[str, Any], retry_after: float | None = None
    ) -> None:
        error = body.get("error", {}) if isinstance(body, Mapping) else {}
        self.status = status
        self.code: str = error.get("code", "unknown")
        self.message: str = error.get("message", "")
        self.fields: dict[str, Any] = error.get("fields", {})
        self.retry_after = retry_after
        super().__init__(f"{status} {self.code}: {self.message}")


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


@dataclass
class OrchestratorClient:
    """One workspace's view of the API. 429s are waited out (Retry-After) up to `max_retries`
    times; a submission is retried with the same client_request_id, so it never runs twice."""

    base_url: str
    api_key: str
    timeout: float = 30.0
    max_retries: int = 3
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "OrchestratorClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- Operations ---------------------------------------------------------------------------

    def submit(self, *, client_request_id: str | None = None, **fields: Any) -> Job:
        """POST /ai/jobs (prompt or messages, actions, model, max_output_tokens, metadata,
        webhook_url); a client_request_id is made up when not given."""
        body = {"client_request_id": client_request_id or f"req-{uuid.uuid4().hex}", **fields}
        return _job(self._request("POST", "/ai/jobs", json=body))

    def get(self, job_id: str) -> Job:
        return _job(self._request("GET", f"/ai/jobs/{job_id}"))

    def list(self, **filters: Any) -> Page:
        """One page of GET /ai/jobs: limit, cursor, status (str or list), created_after,
        created_before, client_request_id."""
        params = {name: value for name, value in filters.items() if value is not None}
        body = self._request("GET", "/ai/jobs", params=params)
        return Page(jobs=body["results"], next_cursor=body["next_cursor"])

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job matching the filters, newest first, page after page."""
        cursor = None
        while True:
            page = self.list(**filters, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, job_id: str) -> Job:
        return _job(self._request("POST", f"/ai/jobs/{job_id}/cancel"))

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 300.0,
        first_delay: float = 0.5,
        max_delay: float = 10,
    ) -> Job:
        """Poll until the job is final, with exponential backoff; TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        delay = first_delay
        while True:
            job = self.get(job_id)
            if job["status"] in FINAL_STATUSES:
                return job
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, max_delay)

    # --- Transport ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.max_retries + 1):
            response = self._http.request(method, path, **kwargs)
            if response.status_code < 400:
                return response.json()
            retry_after = _retry_after(response)
            if response.status_code != 429 or attempt == self.max_retries:
                raise ApiError(response.status_code, _json(response), retry_after)
            time.sleep(retry_after or 1.0)
        raise AssertionError("unreachable")


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The event of a webhook request after checking its signature and age (Standard Webhooks);
    raises standardwebhooks.WebhookVerificationError otherwise."""
    event: dict[str, Any] = Webhook(secret).verify(body, dict(headers))
    return event


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _job(body: Any) -> Job:
    # The API answers a job as a JSON object; anything else is not this API.
    if not isinstance(body, dict):
        raise TypeError(f"expected a job object, the API sent {type(body).__name__}")
    return body
