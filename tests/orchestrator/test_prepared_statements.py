"""The hottest statements are prepared once per pooled connection, and nothing else is."""

from django.db import connection

from orchestrator import execution
from orchestrator.models import Job
from orchestrator.prepared_statements import prepared_cursor
from tests.factories import make_job
from tests.helpers import submit

INSERT = "INSERT INTO orchestrator_job ("


def prepared_statements() -> list[str]:
    """The statements prepared on this thread's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_submits_share_one_prepared_insert_and_store_every_field(api_client, workspace):
    for number in range(3):
        response = submit(
            api_client,
            client_request_id=f"prepared-{number}",
            prompt="Hello",
            metadata={"n": number},
            actions=["task.create"],
        )
        assert response.status_code == 202, response.json()

    assert sum(INSERT in statement for statement in prepared_statements()) == 1
    job = Job.objects.get(workspace=workspace, client_request_id="prepared-2")
    assert job.messages == [{"role": "user", "content": "Hello"}]
    assert (job.metadata, job.allowed_actions, job.status) == ({"n": 2}, ["task.create"], "queued")
    assert job.api_key is not None and job.webhook_url == ""


def test_without_prepared_statements_a_submit_stores_its_job_all_the_same(
    api_client, workspace, settings
):
    # DB_PREPARED_STATEMENTS=false, for a pooler that cannot keep them (PgBouncer before 1.21).
    settings.DB_PREPARED_STATEMENTS = False
    prepared_before = prepared_statements()  # the pooled connection may have served other tests

    response = submit(api_client, client_request_id="unprepared", prompt="Hello")

    assert response.status_code == 202
    assert prepared_statements() == prepared_before
    assert Job.objects.filter(workspace=workspace, client_request_id="unprepared").exists()


def test_the_connection_goes_back_to_preparing_nothing(db):
    with prepared_cursor() as cursor:
        cursor.execute("SELECT 1")

    # As Django leaves it: psycopg would otherwise keep count of every later statement too.
    assert connection.connection.prepare_threshold is None


def test_the_claim_and_the_writes_of_a_job_stay_prepared_on_their_connection(workspace):
    job = make_job(workspace)

    claimed = execution._claim(str(job.pk))
    assert execution._renew_lease(claimed)
    assert execution._renew_lease(claimed)

    statements = prepared_statements()
    assert sum("SET status = $1, attempts = job.attempts + 1" in s for s in statements) == 1
    assert sum("SET lease_expires_at = $1 WHERE id = $2" in s for s in statements) == 1


def test_without_prepared_statements_a_job_is_claimed_and_written_all_the_same(workspace, settings):
    # DB_PREPARED_STATEMENTS=false, for a pooler that cannot keep them (PgBouncer before 1.21).
    settings.DB_PREPARED_STATEMENTS = False
    job = make_job(workspace)
    prepared_before = prepared_statements()  # the pooled connection may have served other tests

    claimed = execution._claim(str(job.pk))
    assert claimed is not None
    assert execution._renew_lease(claimed)

    assert prepared_statements() == prepared_before
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
