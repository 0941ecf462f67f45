"""GET /ai/jobs: the caller's jobs only, newest first, filters, a cursor stable under inserts."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orchestrator.models import Job
from tests import factories

Status = Job.Status


def ids(response) -> list[str]:
    return [job["id"] for job in response.json()["results"]]


def walk(api_client, **params) -> list[str]:
    """Every id of every page, following next_cursor to the end."""
    seen, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api_client.get("/ai/jobs", query)
        assert response.status_code == 200, response.content
        seen += ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen


def make_jobs(workspace, count: int, *, start=None, step=timedelta(seconds=1), **fields):
    start = start or timezone.now() - timedelta(hours=1)
    return [
        factories.make_job(workspace, created_at=start + index * step, **fields)
        for index in range(count)
    ]


def test_lists_only_the_callers_jobs_newest_first(api_client, workspace, other_workspace):
    ours = make_jobs(workspace, 3)
    make_jobs(other_workspace, 2)

    response = api_client.get("/ai/jobs")

    assert response.status_code == 200
    assert ids(response) == [str(job.id) for job in reversed(ours)]
    assert response.json()["next_cursor"] is None
    first = response.json()["results"][0]
    assert first["status"] == "queued" and first["client_request_id"] == ours[-1].client_request_id
    assert "transcript" not in first and "messages" not in first


def test_pages_follow_the_cursor_without_gaps_or_repeats(api_client, workspace):
    jobs = make_jobs(workspace, 23)

    first = api_client.get("/ai/jobs", {"limit": 10})
    assert len(ids(first)) == 10 and first.json()["next_cursor"]

    assert walk(api_client, limit=10) == [str(job.id) for job in reversed(jobs)]


def test_jobs_created_at_the_same_instant_are_split_across_pages_exactly_once(
    api_client, workspace
):
    same = timezone.now() - timedelta(minutes=5)
    jobs = [factories.make_job(workspace, created_at=same) for _ in range(10)]

    seen = walk(api_client, limit=3)

    assert sorted(seen) == sorted(str(job.id) for job in jobs)
    assert len(seen) == len(set(seen)) == 10


@pytest.mark.django_db(transaction=True)
def test_pagination_under_concurrent_inserts_skips_and_repeats_nothing(api_client, workspace):
    existing = {str(job.id) for job in make_jobs(workspace, 120)}
    inserted: list[str] = []
    stop = threading.Event()

    def insert() -> None:
        try:
            while not stop.is_set():
                inserted.append(str(factories.make_job(workspace).id))
        finally:
            connection.close()  # this thread's own connection

    inserter = threading.Thread(target=insert)
    inserter.start()
    try:
        seen = walk(api_client, limit=7)
    finally:
        stop.set()
        inserter.join()

    assert inserted, "positive control: jobs were inserted while paging"
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


def test_filters_by_status_time_range_and_client_request_id(api_client, workspace):
    base = timezone.now() - timedelta(hours=2)
    queued = factories.make_job(workspace, created_at=base)
    running = factories.make_job(
        workspace, status=Status.RUNNING, created_at=base + timedelta(seconds=1)
    )
    done = factories.make_job(
        workspace, status=Status.SUCCEEDED, created_at=base + timedelta(hours=1)
    )

    def listed(**params) -> set[str]:
        response = api_client.get("/ai/jobs", params)
        assert response.status_code == 200, response.content
        return set(ids(response))

    assert listed(status="succeeded") == {str(done.id)}
    assert listed(status=["queued", "running"]) == {str(queued.id), str(running.id)}
    assert listed(created_after=(base + timedelta(minutes=30)).isoformat()) == {str(done.id)}
    before = (base + timedelta(minutes=30)).isoformat()
    assert listed(created_before=before) == {str(queued.id), str(running.id)}
    assert listed(created_before=before, status="queued") == {str(queued.id)}
    assert listed(client_request_id=running.client_request_id) == {str(running.id)}
    assert listed(client_request_id="nope") == set()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"status": "sleeping"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"page": 2}, "page"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(api_client, workspace, params, field):
    make_jobs(workspace, 1)

    response = api_client.get("/ai/jobs", params)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["fields"]


def test_listing_needs_the_read_scope(client_for, workspace):
    writer = client_for(factories.make_api_key(workspace, scopes=["jobs:write"]))
    reader = client_for(factories.make_api_key(workspace, scopes=["jobs:read"]))

    assert writer.get("/ai/jobs").status_code == 403
    assert reader.get("/ai/jobs").status_code == 200
