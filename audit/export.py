"""CSV export of audit rows, safe to open in a spreadsheet."""

import csv
import json
from collections.abc import Iterable, Iterator

from audit.models import ActionAudit

COLUMNS = [
    "id",
    "created_at",
    "workspace",
    "job",
    "call_key",
    "action",
    "status",
    "reason",
    "recipients",
    "arguments",
    "result",
    "finished_at",
]
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP
# "CSV injection"); model output must never run as one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Prefix a would-be formula with a quote, so a spreadsheet shows it as text."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def row_cells(row: ActionAudit) -> list[str]:
    """One audit row as CSV cells, every cell neutralised."""
    to = row.arguments.get("to") if isinstance(row.arguments, dict) else None
    recipients = " ".join(str(a) for a in to) if isinstance(to, list) else ""
    values = [
        row.pk,
        row.created_at.isoformat(),
        row.workspace_id,
        row.job_id,
        row.call_key,
        row.action,
        row.status,
        row.reason,
        recipients,
        json.dumps(row.arguments, ensure_ascii=False, sort_keys=True),
        json.dumps(row.result, ensure_ascii=False, sort_keys=True),
        row.finished_at.isoformat() if row.finished_at else "",
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
