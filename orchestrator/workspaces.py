"""Creating workspaces."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from actions.names import ACTION_NAMES
from orchestrator.models import Workspace


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
    if allowed_actions is not None:
        unknown = sorted(set(allowed_actions) - set(ACTION_NAMES))
        if unknown:
            raise WorkspaceError(f"unknown actions {unknown}; known are {list(ACTION_NAMES)}")
    try:
        with transaction.atomic():
            return Workspace.objects.create(
                id=workspace_id, name=name, allowed_actions=allowed_actions
            )
    except IntegrityError:
        raise WorkspaceError(f"workspace {workspace_id!r} already exists") from None
