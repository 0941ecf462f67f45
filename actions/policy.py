"""Whether a proposed action may run: kill switch, then allow-lists, then its arguments."""

from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from jsonschema import Draft202012Validator, FormatChecker

from actions.registry import REGISTRY, ActionSpec

EXECUTE = "execute"


@dataclass(frozen=True)
class Decision:
    """`status` is EXECUTE or the audit status to record; `reason` is machine-readable."""

    status: str
    reason: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.status == EXECUTE


def decide(
    *,
    spec: ActionSpec | None,
    arguments: dict | None,
    job_actions: list[str],
    workspace_actions: list[str],
) -> Decision:
    """Apply the policy in its fixed order; the first rule that refuses decides."""
    if not settings.ACTIONS_ENABLED:
        return Decision("skipped", "actions_disabled")
    if spec is None:
        return Decision("denied", "unknown_action")
    if spec.name not in job_actions or spec.name not in workspace_actions:
        return Decision("denied", "action_not_allowed")
    if arguments is None:
        return Decision("rejected", "invalid_arguments", ["arguments are not a JSON object"])
    errors = validate_arguments(spec, arguments)
    if errors:
        return Decision("rejected", "invalid_arguments", errors)
    return Decision(EXECUTE)


def validate_arguments(spec: ActionSpec, arguments: dict) -> list[str]:
    """Human-readable schema violations of `arguments`, empty when they are valid."""
    errors = sorted(_validator(spec.name).iter_errors(arguments), key=lambda e: str(e.path))
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"[:300]
        for error in errors
    ][:20]


# jsonschema's own "email" check only looks for an "@"; Django's validator refuses line breaks
# and the other shapes that would let an address smuggle in a header.
_FORMATS = FormatChecker()


@_FORMATS.checks("email", raises=ValidationError)
def _is_email(instance: object) -> bool:
    if isinstance(instance, str):
        validate_email(instance)
    return True


@cache
def _validator(action_name: str) -> Draft202012Validator:
    return Draft202012Validator(REGISTRY[action_name].schema, format_checker=_FORMATS)
