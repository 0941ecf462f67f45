"""Typed results: what the API answers, as frozen dataclasses.

Each is read from the JSON by name, so a field a newer server adds is ignored (and kept in
`raw`); a field missing or of the wrong type is an UnexpectedResponseError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, Generic, TypedDict, TypeVar, Union, get_args, get_origin, get_type_hints

from orchestrator_client.errors import UnexpectedResponseError

T = TypeVar("T")

FINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
FINAL_ACTION_STATUSES = frozenset(
    {"executed", "failed", "skipped", "denied", "rejected", "unknown", "expired"}
)


# --- What a client sends ----------------------------------------------------------------------


class Message(TypedDict):
    role: str  # system, user or assistant
    content: str


class JobFields(TypedDict, total=False):
    """The body of a submission besides client_request_id; give exactly one of prompt and
    messages."""

    prompt: str
    messages: Sequence[Message]
    actions: Sequence[str]
    model: str
    max_output_tokens: int
    metadata: Mapping[str, Any]
    webhook_url: str


class JobFilters(TypedDict, total=False):
    """Query parameters of list_jobs; iter_jobs takes them all but `cursor`."""

    limit: int  # 1 to the server's maximum page size; 20 when not given
    cursor: str
    status: str | Sequence[str]
    created_after: datetime | str
    created_before: datetime | str
    client_request_id: str


# --- What the API answers ---------------------------------------------------------------------
# Each dataclass is read from the JSON by its fields' names and types (_decode), so the
# declaration is the one place a field is named.


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True)
class JobAction:
    """An action the model proposed in a job, as GET /ai/jobs/{id} shows it."""

    id: int
    call_key: str
    action: str
    status: str
    reason: str
    result: Any


@dataclass(frozen=True)
class Job:
    """A job with its output and actions (submit, get_job, cancel, wait_for_job)."""

    id: str
    client_request_id: str
    status: str
    model: str
    max_output_tokens: int
    allowed_actions: list[str]
    metadata: Any
    output_text: str
    tool_calls: Any
    usage: Any
    error: JobError | None
    attempts: int
    actions: list[JobAction]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    webhook_url: str
    # True when submit answered with the job an earlier request with this client_request_id
    # created (Idempotent-Replayed): nothing new was queued. Not a field of the JSON.
    replayed: bool = field(default=False, metadata={"local": True})
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @classmethod
    def from_json(cls, data: Any, *, replayed: bool = False) -> Job:
        return replace(_decode(cls, data), replayed=replayed)


@dataclass(frozen=True)
class JobSummary:
    """A job in a listing: its state, not its conversation (get_job has that)."""

    id: str
    client_request_id: str
    status: str
    model: str
    metadata: Any
    error: JobError | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @classmethod
    def from_json(cls, data: Any) -> JobSummary:
        return _decode(cls, data)


@dataclass(frozen=True)
class Action:
    """A proposed action as a reviewer sees it (list_actions, approve, reject).

    Approving names `arguments_hash`: the server refuses the approval if the arguments it
    would run are not the ones this hash was read with.
    """

    id: int
    job_id: str
    call_key: str
    action: str
    arguments: Any
    arguments_hash: str
    status: str
    reason: str
    result: Any
    expires_at: datetime | None
    decided_by: str
    decided_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    # Why the policy held it for a human (approval_required, ...), and the human's decision
    # (approve or reject) with the hash they approved; empty when none. Servers older than
    # these fields do not send them.
    hold_reason: str = ""
    hold_details: list[str] = field(default_factory=list)
    decision: str = ""
    approved_arguments_hash: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ACTION_STATUSES

    @classmethod
    def from_json(cls, data: Any) -> Action:
        return _decode(cls, data)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; iterate it for its items. `next_cursor` is None on the last."""

    items: list[T]
    next_cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def of_jobs(cls, data: Any) -> Page[JobSummary]:
        """The body of GET /ai/jobs."""
        return Page(
            items=_member(data, "results", list[JobSummary], "page of jobs"),
            next_cursor=_member(data, "next_cursor", str | None, "page of jobs"),
        )


@dataclass(frozen=True)
class WebhookEvent:
    """The body of a verified webhook: fetch the job (get_job) for its details."""

    type: str  # job.succeeded, job.failed, job.cancelled, action.pending_approval, ...
    id: str  # the delivery's id, the same on every retry of it: deduplicate on it
    job_id: str
    status: str
    created_at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> WebhookEvent:
        return _decode(cls, data)


def actions_from_json(data: Any) -> list[Action]:
    """The body of GET /ai/actions."""
    actions: list[Action] = _member(data, "actions", list[Action], "action list")
    return actions


# --- Decoding ---------------------------------------------------------------------------------

D = TypeVar("D")


def _decode(cls: type[D], data: Any) -> D:
    """An instance of dataclass `cls` from a JSON object: each field read by name as its type.

    A name the object lacks takes the field's default, if it has one; `raw` keeps the object.
    """
    what = _words(cls.__name__)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]  # a dataclass, by construction
        if item.name == "raw":
            values["raw"] = data
            continue
        if item.metadata.get("local"):
            continue
        has_default = item.default is not MISSING or item.default_factory is not MISSING
        if has_default and isinstance(data, dict) and item.name not in data:
            continue
        values[item.name] = _member(data, item.name, hints[item.name], what)
    return cls(**values)


def _member(data: Any, name: str, hint: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"expected a {what} object, got {type(data).__name__}")
    if name not in data:
        raise UnexpectedResponseError(f"the {what} has no {name!r}")
    return _value(data[name], hint, f"the {what}'s {name!r}")


def _value(value: Any, hint: Any, where: str) -> Any:
    if hint is Any:
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):  # X | None
        (inner,) = [arg for arg in args if arg is not NoneType]
        return None if value is None else _value(value, inner, where)
    if origin is list:
        items = _value(value, list, where)
        return [_value(item, args[0], f"{where}[{n}]") for n, item in enumerate(items)]
    if isinstance(hint, type) and is_dataclass(hint):
        return _decode(hint, value)
    if hint is datetime:
        text = _value(value, str, where)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise UnexpectedResponseError(
                f"{where} is not an ISO 8601 time: {text[:40]!r}"
            ) from None
    # bool is an int to Python, never to this API.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise UnexpectedResponseError(
            f"{where} should be {hint.__name__}, got {type(value).__name__}"
        )
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a dataclass (its annotations are strings until then)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _words(name: str) -> str:
    """JobSummary -> "job summary", for messages."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
