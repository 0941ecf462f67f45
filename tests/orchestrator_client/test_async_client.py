"""AsyncOrchestratorClient against the real stack: the sync client's surface, awaited. Rows are
set up and checked outside the event loop (Django's ORM is synchronous)."""

import asyncio
import uuid

import httpx
import pytest

from orchestrator.models import Job as JobRow
from orchestrator_client import (
    ActionNotPendingError,
    ArgumentsChangedError,
    AsyncOrchestratorClient,
    InvalidRequestError,
    Job,
    JobSummary,
    NotFoundError,
    RetryPolicy,
)
from tests.orchestrator_client.conftest import propose_task

pytestmark = pytest.mark.django_db(transaction=True)

QUICK_RETRIES = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.2)


def test_jobs_pages_approvals_and_errors(web, key, approval_workspace, local_worker):
    async def scenario() -> None:
        async with AsyncOrchestratorClient(web, key) as client:
            submitted = await client.submit(prompt="Plan my week")
            done = await client.wait_for_job(submitted.id, poll_interval=0.1, timeout=30)
            assert isinstance(done, Job) and done.status == "succeeded" and done.output_text
            replay = await client.submit(
                client_request_id=submitted.client_request_id, prompt="Plan my week"
            )
            assert (replay.id, replay.replayed) == (submitted.id, True)

            slow = await client.submit(prompt="SLEEP 3000\nTake your time")
            assert (await client.cancel(slow.id)).status == "cancelled"

            held = await client.submit(prompt=propose_task("Approve me"))
            await client.wait_for_job(held.id, poll_interval=0.1, timeout=30)

            listed = [job async for job in client.iter_jobs(limit=1)]  # three pages
            assert all(isinstance(job, JobSummary) for job in listed)
            assert [job.id for job in listed] == [held.id, slow.id, submitted.id]
            assert [j.id for j in await client.list_jobs(status="cancelled")] == [slow.id]

            (pending,) = await client.list_actions(status="pending_approval")
            with pytest.raises(ArgumentsChangedError):
                await client.approve(pending.id, arguments_hash="0" * 64)
            approved = await client.approve(pending.id, arguments_hash=pending.arguments_hash)
            assert (approved.job_id, approved.status) == (held.id, "executing")
            with pytest.raises(ActionNotPendingError):
                await client.reject(pending.id)

            with pytest.raises(NotFoundError):
                await client.get_job(str(uuid.uuid4()))
            with pytest.raises(InvalidRequestError) as invalid:
                await client.submit(prompt="Hi", messages=[{"role": "user", "content": "Hi"}])
            assert "prompt" in invalid.value.fields

    asyncio.run(scenario())


def test_retries_a_refused_connection_and_a_lost_answer(proxy, key):
    attempts: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        attempts.append(request)
        if len(attempts) == 2:
            proxy.open()  # refused the first time, accepted the second
            proxy.drop_answers(1)  # and that answer is lost

    async def scenario() -> Job:
        http = httpx.AsyncClient(event_hooks={"request": [record]})
        client = AsyncOrchestratorClient(
            proxy.url, key, retry_policy=QUICK_RETRIES, http_client=http
        )
        async with http, client:
            return await client.submit(prompt="Exactly once")

    job = asyncio.run(scenario())

    assert len(attempts) == 3 and len({request.content for request in attempts}) == 1
    assert job.replayed  # the third attempt found the job the second one created
    assert list(JobRow.objects.values_list("id", flat=True)) == [uuid.UUID(job.id)]


def test_concurrent_submissions_share_one_client(web, key):
    async def scenario() -> list[Job]:
        async with AsyncOrchestratorClient(web, key) as client:
            return await asyncio.gather(*(client.submit(prompt=f"Job {n}") for n in range(5)))

    jobs = asyncio.run(scenario())

    assert len({job.id for job in jobs}) == 5 and not any(job.replayed for job in jobs)
    assert JobRow.objects.count() == 5
