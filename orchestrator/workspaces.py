"""Creating and configuring workspaces."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from actions.mail_safety import UnsafeMail, ascii_domain
from core.action_names import ACTION_NAMES
from orchestrator.models import MAX_RATE_LIMIT_PER_MINUTE, Workspace, WorkspacePolicyChange
from orchestrator.webhooks import WebhookUrlRefused, check_webhook_url, generate_webhook_secret

# A DNS name of letters, digits and hyphens, at least two labels (no wildcards: a subdomain is
# allowed only when listed itself).
# A-labels only (ascii_domain has encoded them): the top level is letters or an IDN's xn-- form.
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


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
    approval_required: list[str] | _Unset = UNSET,
    recipient_domains: list[str] | _Unset = UNSET,
    rate_limit_per_minute: int | _Unset | None = UNSET,
    webhook_url: str | _Unset = UNSET,
    rotate_webhook_secret: bool = False,
    changed_by: str = "system",
) -> Workspace:
    """Change a workspace's policy and audit the change (who, and each field's old and new value).

    None returns a setting to its default (ALLOW_ACTIONS_DEFAULT, RATE_LIMIT_PER_MINUTE); an
    empty list clears a list; `webhook_url=""` removes the URL.
    """
    new_values: dict = {}
    if allowed_actions is not UNSET:
        check_actions(allowed_actions)
        new_values["allowed_actions"] = allowed_actions
    if approval_required is not UNSET:
        check_actions(approval_required)
        new_values["approval_required"] = sorted(set(approval_required))
    if recipient_domains is not UNSET:
        new_values["recipient_domains"] = normalize_recipient_domains(recipient_domains)
    if rate_limit_per_minute is not UNSET:
        _check_rate_limit(rate_limit_per_minute)
        new_values["rate_limit_per_minute"] = rate_limit_per_minute
    if webhook_url is not UNSET:
        if webhook_url:
            try:
                check_webhook_url(webhook_url)
            except WebhookUrlRefused as exc:
                raise WorkspaceError(exc.message) from None
        new_values["webhook_url"] = webhook_url
    with transaction.atomic():
        record_policy_change(workspace=workspace, new_values=new_values, changed_by=changed_by)
        for name, value in new_values.items():
            setattr(workspace, name, value)
        # A URL without a secret could sign nothing: the first URL brings a secret with it.
        # The secret itself is never written to the policy audit, only that it changed.
        if rotate_webhook_secret or (workspace.webhook_url and not workspace.webhook_secret):
            workspace.webhook_secret = generate_webhook_secret()
            WorkspacePolicyChange.objects.create(
                workspace=workspace,
                changed_by=changed_by,
                changes={"webhook_secret": {"old": "(hidden)", "new": "(rotated)"}},
            )
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
    """As DNS resolves them and the policy compares them (IDNA A-labels, lower-case, no trailing
    dot), sorted and once each; WorkspaceError names any invalid domain."""
    normalized, invalid = set(), []
    for domain in domains:
        try:
            name = ascii_domain(domain.strip())
        except UnsafeMail:
            name = ""
        if _DOMAIN.match(name):
            normalized.add(name)
        else:
            invalid.append(domain)
    if invalid:
        raise WorkspaceError(
            f"invalid recipient domains {invalid}; give names like acme.com or bücher.example"
        )
    return sorted(normalized)


def check_actions(actions: list[str] | None) -> None:
    """WorkspaceError naming any action the platform does not know."""
    unknown = sorted(set(actions or []) - set(ACTION_NAMES))
    if unknown:
        raise WorkspaceError(f"unknown actions {unknown}; known are {list(ACTION_NAMES)}")


def _check_rate_limit(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_RATE_LIMIT_PER_MINUTE:
        raise WorkspaceError(
            f"rate limit must be between 0 (unlimited) and {MAX_RATE_LIMIT_PER_MINUTE}, got {value}"
        )
