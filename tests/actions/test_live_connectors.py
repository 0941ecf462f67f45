"""End-to-end specification of the live Gmail and Graph connectors, through a real worker and
the local fake providers (tests/fakes/mail_providers.py): one delivery per action, whatever the
provider or the worker does."""

import email.utils
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from actions.connections import decrypt
from actions.models import Connection
from audit.models import ActionAudit
from orchestrator.job_queue import publish_jobs
from orchestrator.models import Job
from tests.actions.test_actions_e2e import MAIL, call, explain, run_prompt, submit_prompt
from tests.actions.test_approvals import (
    approve_concurrently,
    propose,
    reload,
    wait_for_action,
)
from tests.conftest import GOOGLE_TOKEN
from tests.factories import make_api_key
from tests.fakes.mail_providers import Fault
from tests.helpers import queue_length, wait_for_job
from tests.processes import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status


def run_deliveries(worker) -> int:
    return len(re.findall(r"orchestrator\.tasks\.run_job\[[^\]]+\] succeeded", worker.log()))


# --- Delivered once ---------------------------------------------------------------------------


def test_gmail_send_delivers_exactly_one_message_and_records_gmails_id(
    api_client, connected, providers, start_live_worker
):
    connected.recipient_domains = ["example.com"]  # every recipient is in an allowed domain
    connected.save()
    worker = start_live_worker()
    arguments = {**MAIL, "cc": ["b@example.com"], "bcc": ["c@example.com"]}

    job = run_prompt(api_client, call("gmail.send", arguments))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert row.status == Status.EXECUTED, row.result
    [delivery] = providers.delivered("google")
    assert (delivery.to, delivery.cc, delivery.bcc) == (["a@example.com"], ["b@example.com"],
                                                        ["c@example.com"])  # fmt: skip
    assert (delivery.subject, delivery.body.strip()) == ("Hi", "Hello")
    assert row.result["provider_message_id"] == "msg-1"
    assert (
        delivery.message_id
        == row.result["message_id"]
        == (f"<audit-{row.pk}.{connected.id}@ai-orchestrator.invalid>")
    )
    assert "executed" in job.output_text
    # The same job message delivered twice more: each delivery finds the job finished.
    publish_jobs([job.id])
    publish_jobs([job.id])
    wait_until(lambda: run_deliveries(worker) >= 3 and queue_length() == 0, timeout=15)
    assert len(providers.delivered()) == 1
    # No credential reaches the logs or the model.
    assert GOOGLE_TOKEN not in worker.log()
    assert GOOGLE_TOKEN not in str(Job.objects.get(pk=job.id).transcript)


def test_outlook_send_delivers_one_graph_message(
    api_client, connected, providers, start_live_worker
):
    worker = start_live_worker()

    job = run_prompt(api_client, call("outlook.send", {**MAIL, "html": "<p>Hello</p>"}))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.result["accepted"]) == (Status.EXECUTED, True)
    [delivery] = providers.delivered("microsoft")
    assert (delivery.to, delivery.subject, delivery.body) == (["a@example.com"], "Hi",
                                                              "<p>Hello</p>")  # fmt: skip
    assert delivery.message_id == row.result["message_id"]
    assert providers.delivered("google") == []


def test_sandbox_backend_sends_nothing_and_records_the_message(
    api_client, connected, providers, start_worker_with
):
    worker = start_worker_with(**providers.env())  # ACTIONS_BACKEND defaults to sandbox

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.result["sandbox"], row.result["message"]["to"]) == (
        Status.EXECUTED, True, ["a@example.com"])  # fmt: skip
    assert providers.delivered() == []
    assert providers.send_attempts == []


def test_concurrently_approved_gmail_send_is_delivered_once(
    api_client, connected, providers, start_live_worker, client_for
):
    connected.approval_required = ["gmail.send"]
    connected.save()
    worker = start_live_worker()
    job = run_prompt(api_client, call("gmail.send", MAIL))
    row = ActionAudit.objects.get(job=job)
    assert row.status == Status.PENDING_APPROVAL, explain(job, worker)
    assert providers.delivered() == []

    approver = client_for(make_api_key(connected, scopes=["actions:approve"]))
    assert approve_concurrently(approver, row, 4) == [200, 409, 409, 409]
    row = wait_for_action(row, worker=worker)

    assert row.status == Status.EXECUTED, row.result
    assert len(providers.delivered("google")) == 1


# --- Provider errors --------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_wait_and_delivered_once(
    api_client, connected, providers, start_live_worker
):
    providers.inject("google", Fault(status=429, headers={"Retry-After": "1"}))
    worker = start_live_worker()

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert ActionAudit.objects.get(job=job).status == Status.EXECUTED
    assert len(providers.delivered()) == 1
    (_, first, status_1), (_, second, status_2) = providers.send_attempts
    assert (status_1, status_2) == (429, 200)
    assert second - first >= 1.0  # Retry-After honoured


def test_401_refreshes_the_token_once_then_delivers(
    api_client, connected, providers, start_live_worker
):
    providers.reset()  # the fake no longer knows the stored access token
    providers.grant("google", "some-other-token", "google-refresh")
    worker = start_live_worker()

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    assert ActionAudit.objects.get(job=job).status == Status.EXECUTED
    assert providers.token_requests == ["google"]
    assert [status for _, _, status in providers.send_attempts] == [401, 200]
    assert len(providers.delivered()) == 1
    stored = Connection.objects.get(workspace=connected, provider="google")
    assert decrypt(stored.access_token_encrypted) == "google-access-1"
    assert "google-access-1" not in stored.access_token_encrypted  # encrypted at rest


def test_refused_refresh_fails_the_action_as_connection_invalid(
    api_client, connected, providers, start_live_worker
):
    providers.reset()  # neither the access token nor the refresh token is valid any more
    worker = start_live_worker()

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.reason) == (Status.FAILED, "connection_invalid")
    assert providers.token_requests == ["google"]  # refreshed once, not more
    assert providers.delivered() == []
    assert "failed" in job.output_text


def test_other_4xx_fails_at_once_with_the_providers_message(
    api_client, connected, providers, start_live_worker
):
    providers.inject("google", Fault(status=400, message="Invalid To header"))
    worker = start_live_worker()

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.reason) == (Status.FAILED, "provider_rejected")
    assert "Invalid To header" in row.result["error"]
    assert len(providers.send_attempts) == 1  # not retried
    assert providers.delivered() == []


def test_5xx_beyond_the_retries_fails_as_provider_unavailable(
    api_client, connected, providers, start_live_worker
):
    providers.inject("google", Fault(status=503), Fault(status=503))
    worker = start_live_worker(SEND_MAX_RETRIES="1")

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.reason) == (Status.FAILED, "provider_unavailable")
    assert [status for _, _, status in providers.send_attempts] == [503, 503]
    assert providers.delivered() == []


def test_missing_connection_fails_without_calling_the_provider(
    api_client, workspace, providers, start_live_worker
):
    providers.reset()
    worker = start_live_worker()

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.reason) == (Status.FAILED, "connection_missing")
    assert providers.send_attempts == []


def test_no_answer_after_the_send_is_unknown_and_never_retried(
    api_client, connected, providers, start_live_worker
):
    # Accepted, but the answer comes after the read timeout: the message may well be sent.
    providers.inject("google", Fault(hang=3))
    worker = start_live_worker(OUTBOUND_READ_TIMEOUT_SECONDS="1")

    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = ActionAudit.objects.get(job=job)
    assert (row.status, row.reason) == (Status.UNKNOWN, "provider_outcome_unknown")
    assert len(providers.send_attempts) == 1
    assert len(providers.delivered()) == 1
    assert "unknown" in job.output_text


def test_retry_after_as_an_http_date_is_honoured(connected, providers, settings):
    settings.ACTIONS_BACKEND = "live"
    settings.GMAIL_API_BASE_URL = providers.url
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    providers.inject("google", Fault(status=503, headers={"Retry-After": when}))

    row = propose(connected, arguments=MAIL, action="gmail_send")

    assert row.status == Status.EXECUTED, row.result
    (_, first, _), (_, second, status) = providers.send_attempts
    assert status == 200 and second - first >= 1.5  # at least 2 s: the date drops fractions
    assert len(providers.delivered()) == 1


def test_retry_after_beyond_the_longest_wait_fails_at_once(connected, providers, settings):
    settings.ACTIONS_BACKEND = "live"
    settings.GMAIL_API_BASE_URL = providers.url
    settings.SEND_RETRY_MAX_WAIT_SECONDS = 5.0
    providers.inject("google", Fault(status=429, headers={"Retry-After": "3600"}))

    row = propose(connected, arguments=MAIL, action="gmail_send")

    assert (row.status, row.reason) == (Status.FAILED, "provider_unavailable")
    assert [status for _, _, status in providers.send_attempts] == [429]
    assert providers.delivered() == []


def test_unreachable_provider_is_retried_then_fails_as_unavailable(connected, settings):
    # Nothing listens there: the request never leaves, so retrying is safe.
    settings.ACTIONS_BACKEND = "live"
    settings.GMAIL_API_BASE_URL = f"http://127.0.0.1:{free_port()}"
    settings.SEND_MAX_RETRIES = 2
    row = propose(connected, arguments=MAIL, action="gmail_send")

    assert (row.status, row.reason) == (Status.FAILED, "provider_unavailable")
    assert "ConnectError" in row.result["error"]


# --- A worker killed mid-send -----------------------------------------------------------------


def test_worker_killed_after_the_provider_accepted_leaves_unknown_and_one_delivery(
    api_client, connected, providers, start_live_worker
):
    # The provider accepts the message, then answers late: the worker dies waiting.
    providers.inject("google", Fault(hang=30))
    doomed = start_live_worker()
    job_id = submit_prompt(api_client, call("gmail.send", MAIL))
    wait_until(lambda: len(providers.delivered()) == 1, timeout=20, message=doomed.log()[-2000:])
    row = ActionAudit.objects.get(job_id=job_id)
    assert (row.status, row.started_at is not None) == (Status.EXECUTING, True)

    doomed.kill()
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    worker = start_live_worker(
        beat=True,
        SWEEP_INTERVAL_SECONDS="1",
        SEND_MAX_RETRIES="0",
        OUTBOUND_CONNECT_TIMEOUT_SECONDS="0.5",
        OUTBOUND_READ_TIMEOUT_SECONDS="1",
        SEND_RETRY_MAX_WAIT_SECONDS="0.5",
        ACTION_LEASE_SECONDS="5",
    )
    job = wait_for_job(job_id, timeout=30)

    assert job.status == Job.Status.SUCCEEDED, explain(job, worker)
    row = reload(row)
    assert (row.status, row.reason) == (Status.UNKNOWN, "interrupted")
    assert len(providers.delivered()) == 1  # never resent
    assert "unknown" in job.output_text
