"""Specification of the series that make queues, outcomes and waiting approvals visible: the depth
of every queue by name (also on /ready), every final job status counted, webhook attempts by
outcome, action outcomes with their reason, and the approvals waiting with the oldest one's age."""

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from actions.policy import WorkspacePolicy
from actions.services import Proposal, run_proposed_action
from audit import services as audit
from audit.models import ActionAudit
from core import redis_keys
from core.publish import publish
from orchestrator import webhooks
from orchestrator.job_queue import publish_jobs
from orchestrator.models import WebhookDelivery
from orchestrator.webhooks import DELIVER_WEBHOOK, generate_webhook_secret
from tests import factories
from tests.helpers import metric, scrape

# /metrics reads the approvals waiting from PostgreSQL at every scrape.
pytestmark = pytest.mark.django_db

# --- Queues -------------------------------------------------------------------------------------


def publish_webhook_messages(count: int) -> None:
    publish(DELIVER_WEBHOOK, [[str(uuid.uuid4())] for _ in range(count)], headers={})


def test_the_depth_of_every_queue_is_labelled_by_its_name():
    publish_jobs([uuid.uuid4() for _ in range(3)])
    publish_webhook_messages(2)

    text = scrape()

    assert metric(text, "ai_queue_depth_total", queue=redis_keys.JOB_QUEUE) == 3
    assert metric(text, "ai_queue_depth_total", queue=redis_keys.WEBHOOK_QUEUE) == 2


def test_empty_queues_are_reported_as_zero_from_the_start():
    text = scrape()

    assert metric(text, "ai_queue_depth_total", queue=redis_keys.JOB_QUEUE) == 0
    assert metric(text, "ai_queue_depth_total", queue=redis_keys.WEBHOOK_QUEUE) == 0


def test_ready_shows_the_webhook_backlog_without_failing_on_it():
    publish_jobs([uuid.uuid4()])
    publish_webhook_messages(4)

    body = json.loads(Client().get("/ready").content)

    queue = body["checks"]["queue"]
    assert queue["ok"] is True
    assert queue["depth"] == 1
    assert queue["webhook_depth"] == 4


# --- Final statuses -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_job_is_counted_once_among_the_finished(api_client, workspace):
    job = factories.make_job(workspace)

    assert api_client.post(f"/ai/jobs/{job.id}/cancel").status_code == 200
    assert api_client.post(f"/ai/jobs/{job.id}/cancel").status_code == 200  # again: no change

    text = scrape()
    assert metric(text, "ai_jobs_finished_total", status="cancelled") == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_that_cannot_be_cancelled_counts_nothing(api_client, workspace):
    job = factories.make_job(workspace, status="succeeded", output_text="done")

    assert api_client.post(f"/ai/jobs/{job.id}/cancel").status_code == 409

    assert metric(scrape(), "ai_jobs_finished_total", status="cancelled") is None


@pytest.mark.django_db(transaction=True)
def test_cancellations_per_workspace_when_opted_in(api_client, workspace, settings):
    settings.METRICS_WORKSPACE_LABEL = True
    job = factories.make_job(workspace)

    api_client.post(f"/ai/jobs/{job.id}/cancel")

    text = scrape()
    assert metric(text, "ai_workspace_jobs_finished_total", workspace="ws-a") == 1


# --- Webhooks -----------------------------------------------------------------------------------


@pytest.fixture
def delivery(workspace, receiver, settings) -> WebhookDelivery:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    workspace.webhook_secret = generate_webhook_secret()
    workspace.webhook_url = receiver.url
    workspace.save()
    job = factories.make_job(workspace, status="succeeded", output_text="done")
    return webhooks.record_job_event(job_id=job.id)


@pytest.mark.django_db(transaction=True)
def test_webhook_attempts_are_counted_by_outcome(delivery, receiver):
    receiver.answer(500, b"busy")

    with pytest.raises(webhooks.WebhookDeliveryFailed):
        webhooks.deliver_webhook(delivery_id=str(delivery.pk))
    webhooks.deliver_webhook(delivery_id=str(delivery.pk))
    webhooks.deliver_webhook(delivery_id=str(delivery.pk))  # delivered already: no attempt

    text = scrape()
    assert metric(text, "ai_webhook_attempts_total", outcome="retrying") == 1
    assert metric(text, "ai_webhook_attempts_total", outcome="delivered") == 1
    assert metric(text, "ai_webhook_attempts_total", outcome="failed") is None


@pytest.mark.django_db(transaction=True)
def test_a_webhook_given_up_is_counted_as_failed(delivery, receiver):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(retry_until=timezone.now())
    receiver.answer(503, b"down")

    webhooks.deliver_webhook(delivery_id=str(delivery.pk))

    assert metric(scrape(), "ai_webhook_attempts_total", outcome="failed") == 1


# --- Actions and approvals ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_action_outcomes_carry_the_reason_the_trail_records(workspace):
    job = factories.make_job(workspace, allowed_actions=["task.create"])
    for call_key, arguments in (("1.0", '{"title": "ok"}'), ("1.1", '{"bogus": 1}')):
        run_proposed_action(
            Proposal(
                job_id=job.id,
                workspace_id=workspace.id,
                call_key=call_key,
                tool_call_id=f"call_{call_key}",
                tool_name="task_create",
                raw_arguments=arguments,
            ),
            job_actions=job.allowed_actions,
            workspace=WorkspacePolicy.of(workspace),
        )
    refused = ActionAudit.objects.get(job=job, call_key="1.1")

    text = scrape()

    assert metric(text, "ai_actions_total", action="task.create", status="executed") == 1
    assert refused.reason  # the code the trail keeps is the label's value
    labels = {"action": "task.create", "status": refused.status, "reason": refused.reason}
    assert metric(text, "ai_actions_total", **labels) == 1


def test_no_approval_waiting_is_zero_waiting_of_age_zero():
    text = scrape()

    assert metric(text, "ai_actions_pending_approval") == 0
    assert metric(text, "ai_actions_pending_approval_oldest_age_seconds") == 0


def test_approvals_waiting_and_the_age_of_the_oldest_are_read_at_scrape(workspace):
    now = timezone.now()
    job = factories.make_job(workspace)
    for minutes in (90, 5):
        factories.make_audit(
            job, status="pending_approval", created_at=now - timedelta(minutes=minutes)
        )
    factories.make_audit(job, created_at=now - timedelta(days=3))  # executed: not waiting

    text = scrape()

    assert metric(text, "ai_actions_pending_approval") == 2
    age = metric(text, "ai_actions_pending_approval_oldest_age_seconds")
    assert 90 * 60 <= age < 90 * 60 + 60


def test_a_reviewers_rejection_and_an_expiry_are_counted_as_outcomes(workspace):
    job = factories.make_job(workspace, allowed_actions=["gmail.send"])
    pending = {"status": ActionAudit.Status.PENDING_APPROVAL, "action": "gmail.send"}
    rejected = factories.make_audit(job, call_key="1.0", **pending)
    factories.make_audit(
        job, call_key="1.1", expires_at=timezone.now() - timedelta(seconds=1), **pending
    )

    assert audit.decide_pending(
        row_id=rejected.pk,
        decision=ActionAudit.Decision.REJECT,
        decided_by="admin:alice",
        reason="rejected_by_reviewer",
    )
    assert audit.expire_pending() == 1
    assert audit.expire_pending() == 0  # counted once, however often the sweeper runs

    text = scrape()
    rejections = {"status": "rejected", "reason": "rejected_by_reviewer"}
    expiries = {"status": "expired", "reason": "approval_expired"}
    assert metric(text, "ai_actions_total", action="gmail.send", **rejections) == 1
    assert metric(text, "ai_actions_total", action="gmail.send", **expiries) == 1
