"""Test data builders: one place that knows how to make a valid workspace, key or job."""

import uuid
from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from audit.models import ActionAudit
from orchestrator.api_keys import issue_api_key
from orchestrator.models import Job, Workspace

_sequence = count(1)

ALL_SCOPES = ["jobs:read", "jobs:write"]


def make_workspace(workspace_id: str | None = None, **fields) -> Workspace:
    workspace_id = workspace_id or f"ws-{next(_sequence)}"
    fields.setdefault("name", workspace_id.title())
    return Workspace.objects.create(id=workspace_id, **fields)


def make_api_key(workspace: Workspace, scopes: list[str] | None = None, **fields) -> str:
    """Issue a key and return its plaintext."""
    scopes = ALL_SCOPES if scopes is None else scopes
    return issue_api_key(workspace=workspace, scopes=scopes, **fields).plaintext


def make_job(workspace: Workspace, **fields) -> Job:
    fields.setdefault("client_request_id", f"req-{uuid.uuid4().hex[:12]}")
    fields.setdefault("request_fingerprint", uuid.uuid4().hex)
    fields.setdefault("messages", [{"role": "user", "content": "hello"}])
    fields.setdefault("model", "gpt-4o-mini")
    fields.setdefault("max_output_tokens", 100)
    fields.setdefault("allowed_actions", workspace.effective_allowed_actions)
    return Job.objects.create(workspace=workspace, **fields)


def make_audit(job: Job, **fields) -> ActionAudit:
    """An audit row of `job`, final (`executed`) unless told otherwise."""
    fields.setdefault("call_key", f"0.{next(_sequence)}")
    fields.setdefault("action", "gmail.send")
    fields.setdefault(
        "arguments", {"to": ["someone@example.com"], "subject": "Hello", "body": "Hi"}
    )
    fields.setdefault("status", ActionAudit.Status.EXECUTED)
    return ActionAudit.objects.create(workspace_id=job.workspace_id, job=job, **fields)


STAFF_PASSWORD = "pw-for-tests-1"


def make_staff_user(username: str, *permissions: str):
    """A staff user (admitted to the admin, password STAFF_PASSWORD) holding exactly
    `permissions` ("app.codename")."""
    user = get_user_model().objects.create_user(username, password=STAFF_PASSWORD, is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def view_permissions() -> list[str]:
    """Every view_* permission of the project's apps: what a read-only auditor holds."""
    views = Permission.objects.filter(
        content_type__app_label__in=["orchestrator", "audit", "actions"],
        codename__startswith="view_",
    ).select_related("content_type")
    return [f"{p.content_type.app_label}.{p.codename}" for p in views]
