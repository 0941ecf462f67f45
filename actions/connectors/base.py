"""The one small interface every connector implements."""

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ConnectorResult:
    """What the provider answered, stored in the audit row and summarised to the model."""

    data: dict = field(default_factory=dict)


class ConnectorError(Exception):
    """The provider refused or failed; `permanent` says whether trying again could help.

    `reason` is the machine-readable code the audit row records.
    """

    def __init__(self, message: str, *, permanent: bool, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.reason = reason or ("provider_rejected" if permanent else "provider_unavailable")


class OutcomeUnknown(Exception):
    """The request may have reached the provider but no answer came back (e.g. a read timeout):
    sending again could send twice, so a human reviews it."""


class Connector(Protocol):
    # True when running `execute` twice with the same idempotency key has the effect of once,
    # so an execution interrupted by a crash may safely run again.
    idempotent: bool

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult: ...
