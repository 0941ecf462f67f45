"""Specification of django-prometheus in the app: its django_http_* series by view, status and
method and its django_db_* series (through Django's connection pool), served by /metrics beside
the runbook's names, and summed over gunicorn's processes as the runbook's HTTP series are."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from tests.helpers import http, metric, scrape, submit
from tests.processes import start_web

DB = {"alias": "default", "vendor": "postgresql"}
# prometheus_client adds _total to every counter's name, django-prometheus's too.
RESPONSES = "django_http_responses_total_by_status_view_method_total"
REQUESTS_BY_VIEW = "django_http_requests_total_by_view_transport_method_total"
LATENCY_COUNT = "django_http_requests_latency_seconds_by_view_method_count"


def delta(after: str, before: str, name: str, **labels: str) -> float:
    return (metric(after, name, **labels) or 0) - (metric(before, name, **labels) or 0)


@pytest.mark.django_db
def test_requests_are_counted_by_view_status_and_method_beside_the_runbooks_series(api_client):
    before = scrape()

    response = submit(api_client, client_request_id="dp-1", prompt="Hello")

    assert response.status_code == 202
    after = scrape()
    jobs = {"view": "jobs", "method": "POST"}
    assert delta(after, before, RESPONSES, status="202", **jobs) == 1
    assert delta(after, before, REQUESTS_BY_VIEW, transport="http", **jobs) == 1
    assert delta(after, before, LATENCY_COUNT, **jobs) == 1
    # The runbook's own series count the same request, unchanged.
    runbook = {"path": "/ai/jobs", "method": "POST", "status": "202"}
    assert delta(after, before, "http_requests_total", **runbook) == 1


@pytest.mark.django_db
def test_queries_go_through_the_pool_and_are_counted():
    assert settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] >= 1
    before = scrape()

    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT 1")

    assert connection.pool is not None  # Django's psycopg pool serves the wrapped backend
    after = scrape()
    # The scrape between reads the approvals waiting: one query more than ours.
    assert delta(after, before, "django_db_execute_total", **DB) >= 3
    assert delta(after, before, "django_db_query_duration_seconds_count", **DB) >= 3


@pytest.mark.django_db
def test_database_errors_are_counted_by_type():
    before = scrape()

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")

    after = scrape()
    # By the class psycopg raised (Django wraps it in its own ProgrammingError only later).
    assert delta(after, before, "django_db_errors_total", type="UndefinedTable", **DB) == 1


# --- Under gunicorn -----------------------------------------------------------------------------

WEB_PROCESSES = 4
REQUESTS = 40


@pytest.fixture
def gunicorn(transactional_db):
    """The shipped web command (config/gunicorn.py) with four processes, as docker-compose."""
    web, base_url = start_web(workers=WEB_PROCESSES)
    try:
        yield base_url
    finally:
        web.stop()


def test_every_scrape_sums_the_series_of_all_gunicorn_processes(gunicorn, api_key):
    auth = {"Authorization": f"Bearer {api_key}"}

    def get(_):
        return http(f"{gunicorn}/ai/jobs/{uuid.uuid4()}", headers=auth)[0]

    # Concurrent, so that the four processes share the requests.
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(get, range(REQUESTS))) == {404}

    detail = {"view": "job-detail", "method": "GET"}
    for _ in range(2 * WEB_PROCESSES):  # each scrape lands on any one of the processes
        text = http(f"{gunicorn}/metrics")[2]
        assert metric(text, RESPONSES, status="404", **detail) == REQUESTS
        assert metric(text, LATENCY_COUNT, **detail) == REQUESTS
        route = "/ai/jobs/<str:job_id>"
        assert metric(text, "http_requests_total", path=route, status="404") == REQUESTS
        # Each process read the key once at least (then cached it).
        assert metric(text, "django_db_execute_total", **DB) >= 1
