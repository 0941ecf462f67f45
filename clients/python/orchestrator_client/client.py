"""The synchronous client, on httpx.Client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TypeVar, Unpack

import httpx

from orchestrator_client._core import ClientBase, Done, Outcome, Plan, Request, Sleep, advance
from orchestrator_client.models import Action, Job, JobFields, JobFilters, JobSummary, Page

T = TypeVar("T")


class OrchestratorClient(ClientBase[httpx.Client]):
    """One workspace's view of the API, through its API key.

    Reads, submit and cancel are retried after a refused or dropped connection, a 429 (after
    its Retry-After) or a 503, with exponential backoff and jitter, up to `max_retries` times;
    a submission keeps its client_request_id across retries, so it never runs twice. Errors
    are ApiError subclasses, one per API error code (orchestrator_client.errors).

        with OrchestratorClient("https://orchestrator.example.com", key) as client:
            job = client.wait_for_job(client.submit(prompt="Plan my week").id)
    """

    def _new_http_client(self) -> httpx.Client:
        return httpx.Client()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OrchestratorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- Jobs -------------------------------------------------------------------------------

    def submit(self, *, client_request_id: str | None = None, **fields: Unpack[JobFields]) -> Job:
        """POST /ai/jobs; a client_request_id is made up when not given. `job.replayed` is
        True when the id had been used before and this is its original job."""
        return self._run(self._ops.submit(client_request_id, fields))

    def get_job(self, job_id: str) -> Job:
        return self._run(self._ops.get_job(job_id))

    def list_jobs(self, **filters: Unpack[JobFilters]) -> Page[JobSummary]:
        """One page of your jobs, newest first; pass page.next_cursor as `cursor` for the next."""
        return self._run(self._ops.list_jobs(filters))

    def iter_jobs(self, **filters: Unpack[JobFilters]) -> Iterator[JobSummary]:
        """Every job matching the filters, newest first, fetching page after page."""
        page = self.list_jobs(**filters)
        yield from page
        while page.next_cursor is not None:
            filters["cursor"] = page.next_cursor
            page = self.list_jobs(**filters)
            yield from page

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (JobFinishedError once it has finished)."""
        return self._run(self._ops.cancel(job_id))

    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
    ) -> Job:
        """Poll until the job is succeeded, failed or cancelled; JobWaitTimeout past `timeout`."""
        return self._run(
            self._ops.wait_for_job(
                job_id,
                timeout=timeout,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
            )
        )

    # --- Actions ----------------------------------------------------------------------------

    def list_actions(self, *, status: str | None = None) -> list[Action]:
        """Your workspace's actions, newest first (the server sends at most 200), optionally of
        one status such as "pending_approval". Needs the actions:approve scope."""
        return self._run(self._ops.list_actions(status))

    def approve(self, action_id: int, *, arguments_hash: str) -> Action:
        """Approve a pending action, naming the arguments you reviewed by their hash
        (Action.arguments_hash); ArgumentsChangedError if they are no longer those."""
        return self._run(self._ops.approve(action_id, arguments_hash))

    def reject(self, action_id: int) -> Action:
        """Reject a pending action: it never runs."""
        return self._run(self._ops.reject(action_id))

    # --- Running a plan ---------------------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        step = advance(plan, None)
        while not isinstance(step, Done):
            step = advance(plan, self._perform(step))
        return step.value

    def _perform(self, step: Request | Sleep) -> Outcome:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.send(self._http.build_request(**self._ops.http_args(step)))
        except httpx.TransportError as exc:
            return exc
