"""Creating and configuring workspaces."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from actions.names import ACTION_NAMES
from orchestrator.models import MAX_RATE_LIMIT_PER_MINUTE, Workspace
from orchestrator.webhooks import WebhookUrlRefused, check_webhook_url, generate_webhook_secret


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
    _check_actions(allowed_actions)
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
    rate_limit_per_minute: int | _Unset | None = UNSET,
    webhook_url: str | _Unset = UNSET,
    rotate_webhook_secret: bool = False,
) -> Workspace:
    """Change a workspace's policy; None returns a setting to its default
    (ALLOW_ACTIONS_DEFAULT, RATE_LIMIT_PER_MINUTE); `webhook_url=""` removes the URL."""
    if allowed_actions is not UNSET:
        _check_actions(allowed_actions)
        workspace.allowed_actions = allowed_actions
    # --- rate limit (issue 6) ---
    if rate_limit_per_minute is not UNSET:
        _check_rate_limit(rate_limit_per_minute)
        workspace.rate_limit_per_minute = rate_limit_per_minute
    # --- webhooks (issue 6) ---
    if webhook_url is not UNSET:
        if webhook_url:
            try:
                check_webhook_url(webhook_url)
            except WebhookUrlRefused as exc:
                raise WorkspaceError(exc.message) from None
        workspace.webhook_url = webhook_url
    # A URL without a secret could sign nothing: the first URL brings a secret with it.
    if rotate_webhook_secret or (workspace.webhook_url and not workspace.webhook_secret):
        workspace.webhook_secret = generate_webhook_secret()
    workspace.save()
    return workspace


def _check_actions(actions: list[str] | None) -> None:
    unknown = sorted(set(actions or []) - set(ACTION_NAMES))
    if unknown:
        raise WorkspaceError(f"unknown actions {unknown}; known are {list(ACTION_NAMES)}")


def _check_rate_limit(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_RATE_LIMIT_PER_MINUTE:
        raise WorkspaceError(
            f"rate limit must be between 0 (unlimited) and {MAX_RATE_LIMIT_PER_MINUTE}, got {value}"
        )
