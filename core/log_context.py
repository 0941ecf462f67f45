"""What every log line carries: request id, workspace, job id and task id, per request or task."""

import logging
import re
import uuid
from contextvars import ContextVar, Token

FIELDS = ("request_id", "workspace", "job_id", "task_id")
_vars: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in FIELDS}

# A client's X-Request-ID is echoed into logs and headers: bounded and plain, or replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header: str | None) -> str:
    """The client's request id when it is safe to log, else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def bind(**values: str | None) -> list[Token]:
    """Set fields for the current request or task; pass the result to `unbind` at its end."""
    return [_vars[name].set(value) for name, value in values.items()]


def unbind(tokens: list[Token]) -> None:
    for token in reversed(tokens):
        token.var.reset(token)


def get(name: str) -> str | None:
    return _vars[name].get()


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record, so the JSON formatter writes them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True
