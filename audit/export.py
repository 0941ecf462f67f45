"""CSV export of audit rows, safe to open in a spreadsheet."""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from audit.models import ActionAudit

# Everything an auditor asks of a row, one column each; times are ISO 8601 in UTC.
COLUMNS = [
    "id",
    "created_at",
    "finished_at",
    "workspace",
    "job",
    "call_key",
    "action",
    "recipients",
    "subject",
    "status",
    "reason",
    "hold_reason",
    "hold_details",
    "decision",
    "decided_by",
    "decided_at",
    "expires_at",
    "arguments_hash",
    "approved_arguments_hash",
    "provider_message_id",
    "message_id",
    "started_at",
    "arguments",
    "result",
]
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP
# "CSV injection"); model output must never run as one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Prefix a would-be formula with a quote, so a spreadsheet shows it as text."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def iso_utc(moment: datetime | None) -> str:
    """`2026-12-06T08:29:03.123456Z`, or "" for no time."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def recipient_list(arguments: object) -> list[str]:
    """The to, cc and bcc addresses as written, in that order."""
    if not isinstance(arguments, dict):
        return []
    found = []
    for name in ("to", "cc", "bcc"):
        values = arguments.get(name)
        if isinstance(values, list):
            found.extend(str(a) for a in values)
    return found


def row_cells(row: ActionAudit) -> list[str]:
    """One audit row as CSV cells, every cell neutralised."""
    arguments = row.arguments if isinstance(row.arguments, dict) else {}
    result = row.result if isinstance(row.result, dict) else {}
    values = [
        row.pk,
        iso_utc(row.created_at),
        iso_utc(row.finished_at),
        row.workspace_id,
        row.job_id,
        row.call_key,
        row.action,
        " ".join(recipient_list(arguments)),
        arguments.get("subject") or "",
        row.status,
        row.reason,
        row.hold_reason,
        "; ".join(str(d) for d in row.hold_details or []),
        row.decision,
        row.decided_by,
        iso_utc(row.decided_at),
        iso_utc(row.expires_at),
        row.arguments_hash,
        row.approved_arguments_hash,
        result.get("provider_message_id") or "",
        result.get("message_id") or "",
        iso_utc(row.started_at),
        json.dumps(row.arguments, ensure_ascii=False, sort_keys=True),
        json.dumps(row.result, ensure_ascii=False, sort_keys=True),
    ]
    return [neutralise(str(value)) for value in values]


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def stream_csv(rows: Iterable[ActionAudit]) -> Iterator[str]:
    """The CSV text, one line at a time, header first."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow(row_cells(row))
