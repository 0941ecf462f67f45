import pytest

from orchestrator.models import Job
from tests.helpers import submit, wait_for_job


@pytest.mark.django_db(transaction=True)
def test_submitted_job_runs_to_success_on_a_real_worker(api_client, worker, simulator):
    response = submit(api_client, client_request_id="smoke-1", prompt="Hello")
    assert response.status_code == 202, response.content
    job = wait_for_job(response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, (
        job.error_code,
        job.error_message,
        worker.log()[-2000:],
    )
    assert job.output_text.startswith("Simulated answer")
    assert simulator.requests() == 1
