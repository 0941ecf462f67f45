"""Credentials out of the logs: a filter on every handler scrubs query strings and API keys
from each record, whichever logger wrote it (Django's request logger, gunicorn, Celery).

Importable before Django is configured: the LOGGING setting names it.
"""

import logging
import re

# A query string in any text: from "?" to the next space, quote or angle bracket. Its values
# may be credentials (?api_key=, ?token=), and so may its names (a bare ?aio_..._...).
_QUERY = re.compile(r"\?[^\s'\"<>]+")
# No space in either replacement: scrubbing scrubbed text (each handler filters) changes nothing.
QUERY_REMOVED = "?[removed]"
# An API key anywhere else (a path, a message): the public prefix stays, for the operator to
# find the key by. The tag is orchestrator.api_keys.KEY_TAG, not imported: that module needs
# the app registry, which is not ready while logging is configured.
_API_KEY = re.compile(r"\b(aio_[0-9A-Za-z]+_)[0-9A-Za-z_-]+")
KEY_REMOVED = r"\1[removed]"

_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_PLAIN = (int, float, bool, type(None))


def scrub(text: str) -> str:
    """`text` without query strings and without the secret part of API keys."""
    if "?" in text:
        text = _QUERY.sub(QUERY_REMOVED, text)
    if "aio_" in text:
        text = _API_KEY.sub(KEY_REMOVED, text)
    return text


class ScrubCredentials(logging.Filter):
    """Scrubs the message, every extra field (Django's `request`, whose repr holds the full
    path), the traceback and the stack of a record before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = None  # a broken log call: the formatter reports it through handleError
        if message is not None and (scrubbed := scrub(message)) != message:
            record.msg, record.args = scrubbed, None
        for name, value in list(vars(record).items()):
            if name in _RECORD_ATTRIBUTES or isinstance(value, _PLAIN):
                continue
            text = value if isinstance(value, str) else str(value)
            if (scrubbed := scrub(text)) != text:
                setattr(record, name, scrubbed)
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            if (scrubbed := scrub(text)) != text:
                # Formatters print exc_text when there is no exc_info to format afresh.
                record.exc_text, record.exc_info = scrubbed, None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
