"""The action audit trail: one row per action a model proposed, whatever became of it."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import F, Func
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone


class ActionAuditQuerySet(models.QuerySet):
    def for_workspace(self, workspace) -> "ActionAuditQuerySet":
        """Every API lookup starts here: another workspace's action is a 404 by construction."""
        return self.filter(workspace=workspace)


class Recipients(Func):
    """Every to/cc/bcc address of the arguments, lower-cased (SQL function of migration 0009)."""

    function = "action_audit_recipients"
    output_field = ArrayField(models.TextField())


class RecipientDomains(Func):
    """The domains of those addresses, lower-cased (SQL function of migration 0009)."""

    function = "action_audit_recipient_domains"
    output_field = ArrayField(models.TextField())


def subject_words():
    """The subject as the full-text index reads it: the admin's search must use this very
    expression, or PostgreSQL will not use the index."""
    return SearchVector(KeyTextTransform("subject", "arguments"), config="simple")


class ActionAudit(models.Model):
    """What a job's model proposed, what the policy decided, and what the connector did.

    Three questions, three sets of fields, none written over another: why it was held
    (`hold_reason`, `hold_details`, written once), what a human decided (`decision`,
    `decided_by`, `decided_at`, `approved_arguments_hash`, written once) and how it ended
    (`status`, `reason`, `result`: the provider's answer for an action that ran).
    """

    class Status(models.TextChoices):
        EXECUTING = "executing"  # committed before the connector is called
        PENDING_APPROVAL = "pending_approval"  # waits for a human decision
        EXECUTED = "executed"
        FAILED = "failed"
        SKIPPED = "skipped"  # kill switch
        DENIED = "denied"  # not allowed for this job or workspace
        REJECTED = "rejected"  # arguments invalid
        UNKNOWN = "unknown"  # interrupted mid-call: needs a human, never resent blindly
        EXPIRED = "expired"  # nobody decided before the approval's expiry

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    # Only rows in these statuses may still change (to their outcome); the others are history.
    OPEN_STATUSES = (Status.EXECUTING, Status.PENDING_APPROVAL)
    FINAL_STATUSES = (
        Status.EXECUTED,
        Status.FAILED,
        Status.SKIPPED,
        Status.DENIED,
        Status.REJECTED,
        Status.UNKNOWN,
        Status.EXPIRED,
    )

    # Neither has an index of its own: action_audit_ws_created_idx and the unique constraint lead
    # with them, and every index is written on each insert and status change.
    workspace = models.ForeignKey(
        "orchestrator.Workspace",
        on_delete=models.PROTECT,
        related_name="action_audits",
        db_index=False,
    )
    job = models.ForeignKey(
        "orchestrator.Job", on_delete=models.PROTECT, related_name="actions", db_index=False
    )
    # The step in the job's stored plan ("<round>.<index>"), not the model's tool-call id: a
    # model may reuse ids, the plan's position is stable across redeliveries.
    call_key = models.CharField(max_length=32)
    action = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices)
    # Why the row is in its status now (a refusal, a provider error, `rejected_by_reviewer`).
    reason = models.CharField(max_length=64, blank=True)
    # The outcome: the provider's answer, or what refused it; empty while the action waits.
    result = models.JSONField(default=dict, blank=True)
    # Why the policy held the action for a human, and its particulars (e.g. the addresses
    # outside the allowed domains); kept whatever happens next (the guard trigger sees to it).
    hold_reason = models.CharField(max_length=64, blank=True)
    hold_details = models.JSONField(default=list, blank=True)
    # SHA-256 of the canonical JSON of `arguments`: an approval names the exact arguments it
    # approves, and the executor refuses arguments that no longer match it.
    arguments_hash = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # of a pending approval
    # Written in the same UPDATE that moves the row out of pending_approval, and then never.
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # The hash the approver named; the executor runs only arguments that still match it.
    approved_arguments_hash = models.CharField(max_length=64, blank=True)
    # Set by the conditional UPDATE that claims the connector call: an `executing` row without
    # it never reached the provider and may run; with it, a crash leaves the outcome unknown.
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Computed by PostgreSQL from the arguments (which never change), for search and lists:
    # a recipient in to, cc or bcc, or any address of a domain, is one GIN index probe.
    recipients = models.GeneratedField(
        expression=Recipients(F("arguments")),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
    )
    recipient_domains = models.GeneratedField(
        expression=RecipientDomains(F("arguments")),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
    )

    objects = ActionAuditQuerySet.as_manager()

    class Meta:
        db_table = "action_audit"
        # Deciding is not viewing: a reviewer needs this, an auditor has view_actionaudit only
        # (manage.py grant_admin_role). Nobody holds it by default; superusers hold everything.
        permissions = [("decide_action", "Can approve or reject actions pending approval")]
        constraints = [
            models.UniqueConstraint(fields=["job", "call_key"], name="action_audit_unique_call"),
        ]
        # One index behind each admin filter and search field (newest first, as the list is
        # sorted), and created_at alone for the date hierarchy and the archive's cutoff scan.
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="action_audit_ws_created_idx"),
            models.Index(fields=["status", "-created_at"], name="action_audit_status_idx"),
            models.Index(fields=["action", "-created_at"], name="action_audit_action_idx"),
            models.Index(fields=["reason", "-created_at"], name="action_audit_reason_idx"),
            models.Index(fields=["-created_at"], name="action_audit_created_idx"),
            models.Index(fields=["call_key"], name="action_audit_call_key_idx"),
            # Only decided rows, a few in the trail: the decision filter costs the rest nothing.
            models.Index(
                fields=["decision", "-created_at"],
                name="action_audit_decision_idx",
                condition=~models.Q(decision=""),
            ),
            # Recipient, domain and subject-word search (the admin's search box).
            GinIndex(fields=["recipients"], name="action_audit_recipients_idx"),
            GinIndex(fields=["recipient_domains"], name="action_audit_domains_idx"),
            GinIndex(subject_words(), name="action_audit_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.status} ({self.job_id}/{self.call_key})"


class PendingApproval(ActionAudit):
    """The approvals review queue in the admin: the audit rows waiting for a human decision."""

    class Meta:
        proxy = True
        verbose_name = "pending approval"
        verbose_name_plural = "pending approvals"


class AuditArchive(models.Model):
    """One archive file written by archive_audit; pending until its rows are deleted.

    Recorded before the manifest, so a run aimed at another directory finds an interrupted
    archive and refuses to write the same rows a second time."""

    directory = models.CharField(max_length=1000)
    file = models.CharField(max_length=200)
    rows = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    cutoff = models.DateTimeField()
    written_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["directory", "file"], name="audit_archive_unique_file")
        ]

    def __str__(self) -> str:
        return f"{self.directory}/{self.file}"
