"""Creating and configuring workspaces."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from actions.names import ACTION_NAMES
from orchestrator.models import Workspace, WorkspacePolicyChange

# A DNS name of letters, digits and hyphens, at least two labels (no wildcards: a subdomain is
# allowed only when listed itself).
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class _Unset:
    """Marks an option the caller did not give (None has a meaning of its own)."""


UNSET = _Unset()


class WorkspaceError(ValueError):
    """A workspace that cannot be created as asked."""


def create_workspace(
    *, workspace_id: str, name: str, allowed_actions: list[str] | None = None
) -> Workspace:
    """Create a workspace; `allowed_actions=None` follows ALLOW_ACTIONS_DEFAULT."""
    try:
        validate_slug(workspace_id)
    except ValidationError:
        raise WorkspaceError(
            f"workspace id {workspace_id!r} must use only letters, digits, '-' and '_'"
        ) from None
    check_actions(allowed_actions)
    try:
        with transaction.atomic():
            return Workspace.objects.create(
                id=workspace_id, name=name, allowed_actions=allowed_actions
            )
    except IntegrityError:
        raise WorkspaceError(f"workspace {workspace_id!r} already exists") from None


def configure_workspace(
    *,
    workspace: Workspace,
    allowed_actions: list[str] | _Unset | None = UNSET,
    # --- issue 3: approval policy ---
    approval_required: list[str] | _Unset = UNSET,
    recipient_domains: list[str] | _Unset = UNSET,
    changed_by: str = "system",
) -> Workspace:
    """Change a workspace's policy and audit the change (who, and each field's old and new value).

    `allowed_actions=None` returns it to ALLOW_ACTIONS_DEFAULT; an empty list clears a list.
    """
    new_values: dict = {}
    if allowed_actions is not UNSET:
        check_actions(allowed_actions)
        new_values["allowed_actions"] = allowed_actions
    # --- issue 3: approval policy ---
    if approval_required is not UNSET:
        check_actions(approval_required)
        new_values["approval_required"] = sorted(set(approval_required))
    if recipient_domains is not UNSET:
        new_values["recipient_domains"] = normalize_recipient_domains(recipient_domains)
    with transaction.atomic():
        record_policy_change(workspace=workspace, new_values=new_values, changed_by=changed_by)
        for name, value in new_values.items():
            setattr(workspace, name, value)
        workspace.save()
    return workspace


def record_policy_change(*, workspace: Workspace, new_values: dict, changed_by: str) -> None:
    """Audit the fields whose value changes (the admin calls this too); nothing if none does."""
    stored = Workspace.objects.filter(pk=workspace.pk).first()
    changes = {
        name: {"old": getattr(stored, name), "new": value}
        for name, value in new_values.items()
        if stored is None or getattr(stored, name) != value
    }
    if changes:
        WorkspacePolicyChange.objects.create(
            workspace=workspace, changed_by=changed_by, changes=changes
        )


def normalize_recipient_domains(domains: list[str]) -> list[str]:
    """Lower-case, without trailing dots, sorted; WorkspaceError names any invalid domain."""
    normalized = sorted({domain.strip().rstrip(".").lower() for domain in domains})
    invalid = [domain for domain in normalized if not _DOMAIN.match(domain)]
    if invalid:
        raise WorkspaceError(f"invalid recipient domains {invalid}; give names like acme.com")
    return normalized


def check_actions(actions: list[str] | None) -> None:
    """WorkspaceError naming any action the platform does not know."""
    unknown = sorted(set(actions or []) - set(ACTION_NAMES))
    if unknown:
        raise WorkspaceError(f"unknown actions {unknown}; known are {list(ACTION_NAMES)}")
