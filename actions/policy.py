"""Whether a proposed action may run: kill switch, allow-lists, arguments, then approval rules."""

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from jsonschema import Draft202012Validator, FormatChecker

from actions.mail_safety import UnsafeMail, ascii_domain, normalize_address
from actions.registry import REGISTRY, ActionSpec

EXECUTE = "execute"
PENDING_APPROVAL = "pending_approval"
# Argument fields that name who receives an e-mail; reply_to only suggests an address.
RECIPIENT_FIELDS = ("to", "cc", "bcc")


@dataclass(frozen=True)
class WorkspacePolicy:
    """The workspace's part of the policy, read fresh whenever an action is decided."""

    allowed_actions: list[str]
    approval_required: list[str] = field(default_factory=list)
    recipient_domains: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, workspace) -> "WorkspacePolicy":
        return cls(
            allowed_actions=workspace.effective_allowed_actions,
            approval_required=list(workspace.approval_required),
            recipient_domains=list(workspace.recipient_domains),
        )


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
    workspace: WorkspacePolicy,
    approved: bool = False,
    argument_errors: list[str] | None = None,
) -> Decision:
    """Apply the policy in its fixed order; the first rule that refuses decides.

    `approved`: a human already approved these arguments, so the approval rules are passed.
    """
    if not settings.ACTIONS_ENABLED:
        return Decision("skipped", "actions_disabled")
    if spec is None:
        return Decision("denied", "unknown_action")
    if spec.name not in job_actions or spec.name not in workspace.allowed_actions:
        return Decision("denied", "action_not_allowed")
    if arguments is None:
        # `argument_errors`: why the text could not be read as arguments (actions.arguments).
        errors = argument_errors or ["(root): arguments are not a JSON object"]
        return Decision("rejected", "invalid_arguments", errors)
    errors = validate_arguments(spec, arguments)
    if errors:
        return Decision("rejected", "invalid_arguments", errors)
    if approved:
        return Decision(EXECUTE)
    outside = recipients_outside(arguments, workspace.recipient_domains)
    if outside:
        return Decision(
            PENDING_APPROVAL,
            "recipient_outside_allowed_domains",
            [f"not in an allowed domain: {address}" for address in outside[:20]],
        )
    if spec.name in workspace.approval_required:
        return Decision(PENDING_APPROVAL, "approval_required")
    return Decision(EXECUTE)


def normalize_domain(domain: str) -> str:
    """The domain as mail is routed to it: IDNA A-label, lower case, no trailing dot, so
    "Acme.COM." is "acme.com" and "Bücher.example" is "xn--bcher-kva.example"."""
    try:
        return ascii_domain(domain.strip())
    except UnsafeMail:
        # No valid address has this domain, so the entry admits nothing.
        return domain.strip().rstrip(".").lower()


def recipients_outside(arguments: dict, allowed_domains: list[str]) -> list[str]:
    """Recipient addresses whose domain is not listed; empty when no list restricts them.

    The domain compared is the one `normalize_address` gives, the one the connector sends to;
    an address it refuses is never inside.
    """
    if not allowed_domains:
        return []
    allowed = {normalize_domain(domain) for domain in allowed_domains}
    addresses = [
        address
        for name in RECIPIENT_FIELDS
        for address in arguments.get(name) or []
        if isinstance(address, str)
    ]
    # Exact match only: a listed acme.com does not admit mail.acme.com (list it to allow it).
    return [a for a in addresses if _sent_domain(a) not in allowed]


def _sent_domain(address: str) -> str | None:
    try:
        return normalize_address(address).rpartition("@")[2]
    except UnsafeMail:
        return None


def arguments_hash(arguments: dict) -> str:
    """SHA-256 of the canonical JSON of the arguments: what an approval approves, exactly."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_arguments(spec: ActionSpec, arguments: dict) -> list[str]:
    """Human-readable violations of `arguments` ("field: problem"), empty when they are valid:
    the schema's, then the action's own checks of what the schema cannot say."""
    errors = sorted(_validator(spec.name).iter_errors(arguments), key=lambda e: str(e.path))
    messages = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {_message(error)}"[:300]
        for error in errors
    ]
    if spec.check_arguments is not None:
        messages += spec.check_arguments(arguments)
    return messages[:20]


def _message(error) -> str:
    # Our address check says why an address is refused; jsonschema's message only says that.
    return str(error.cause) if isinstance(error.cause, UnsafeMail) else error.message


# jsonschema's own "email" check only looks for an "@": every address must be the one strict
# local@domain the connectors send (no names, lists, comments, encoded words or whitespace).
_FORMATS = FormatChecker()


@_FORMATS.checks("email", raises=UnsafeMail)
def _is_email(instance: object) -> bool:
    if isinstance(instance, str):
        normalize_address(instance)
    return True


@cache
def _validator(action_name: str) -> Draft202012Validator:
    return Draft202012Validator(REGISTRY[action_name].schema, format_checker=_FORMATS)
