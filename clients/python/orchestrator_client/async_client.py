"""The asynchronous client, on httpx.AsyncClient: the surface of OrchestratorClient, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar, Unpack

import httpx

from orchestrator_client._core import ClientBase, Done, Outcome, Plan, Request, Sleep, advance
from orchestrator_client.models import Action, Job, JobFields, JobFilters, JobSummary, Page

T = TypeVar("T")


class AsyncOrchestratorClient(ClientBase[httpx.AsyncClient]):
    """OrchestratorClient for asyncio: the same operations, retries and errors, as coroutines
    (iter_jobs is an async iterator).

        async with AsyncOrchestratorClient("https://orchestrator.example.com", key) as client:
            job = await client.wait_for_job((await client.submit(prompt="Plan my week")).id)
    """

    def _new_http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncOrchestratorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- Jobs -------------------------------------------------------------------------------

    async def submit(
        self, *, client_request_id: str | None = None, **fields: Unpack[JobFields]
    ) -> Job:
        return await self._run(self._ops.submit(client_request_id, fields))

    async def get_job(self, job_id: str) -> Job:
        return await self._run(self._ops.get_job(job_id))

    async def list_jobs(self, **filters: Unpack[JobFilters]) -> Page[JobSummary]:
        return await self._run(self._ops.list_jobs(filters))

    async def iter_jobs(self, **filters: Unpack[JobFilters]) -> AsyncIterator[JobSummary]:
        page = await self.list_jobs(**filters)
        for job in page:
            yield job
        while page.next_cursor is not None:
            filters["cursor"] = page.next_cursor
            page = await self.list_jobs(**filters)
            for job in page:
                yield job

    async def cancel(self, job_id: str) -> Job:
        return await self._run(self._ops.cancel(job_id))

    async def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
    ) -> Job:
        plan = self._ops.wait_for_job(
            job_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )
        return await self._run(plan)

    # --- Actions ----------------------------------------------------------------------------

    async def list_actions(self, *, status: str | None = None) -> list[Action]:
        return await self._run(self._ops.list_actions(status))

    async def approve(self, action_id: int, *, arguments_hash: str) -> Action:
        return await self._run(self._ops.approve(action_id, arguments_hash))

    async def reject(self, action_id: int) -> Action:
        return await self._run(self._ops.reject(action_id))

    # --- Running a plan ---------------------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        step = advance(plan, None)
        while not isinstance(step, Done):
            step = advance(plan, await self._perform(step))
        return step.value

    async def _perform(self, step: Request | Sleep) -> Outcome:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.send(self._http.build_request(**self._ops.http_args(step)))
        except httpx.TransportError as exc:
            return exc
