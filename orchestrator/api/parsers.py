"""The API's one JSON parser: refuses what is not JSON and what the platform cannot store."""

import codecs
import json
import math
import re

from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

from core.exceptions import OrchestratorError

# Real bodies are shallow: body, messages, a message is three levels (five if content were a
# list of parts). 32 leaves a client's metadata plenty of room and keeps every later walk
# (serializers, jsonb, the fingerprint's json.dumps) far from Python's recursion limit.
MAX_DEPTH = 32

# NUL cannot be stored in PostgreSQL text or jsonb; an unpaired surrogate cannot be encoded as
# UTF-8 at all. In text decoded as UTF-8 either can reach a parsed string only as a \u escape
# (json refuses a raw NUL inside a string; the decoder refuses encoded surrogates).
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnacceptableBody(OrchestratorError):
    """Well-formed JSON holding a value the API refuses (too deep, not finite, unstorable)."""

    code = "invalid_request"
    status = 400


class StrictJSONParser(JSONParser):
    """UTF-8 JSON bodies, at most MAX_DEPTH deep, with finite numbers and storable strings.

    A JSONParser subclass so that DRF reads the body through request.body, where Django
    enforces DATA_UPLOAD_MAX_MEMORY_SIZE.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        if not _is_utf8(encoding):
            # RFC 8259 defines no charset for JSON: it is UTF-8.
            raise UnsupportedMediaType(
                media_type, f"JSON bodies are UTF-8; charset {encoding!r} is not accepted."
            )
        try:
            text = stream.read().decode("utf-8")
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise _too_deep(None) from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError too
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        # Walked only when the text could hold what the walk looks for: most bodies have
        # fewer brackets than the bound, and no \u escape.
        deep = text.count("{") + text.count("[") > MAX_DEPTH
        escaped = "\\u" in text
        if deep or escaped:
            check_value(data, strings=escaped)
        return data


def check_value(data, *, strings: bool = True) -> None:
    """Refuse nesting deeper than MAX_DEPTH and, with `strings`, strings or keys holding NUL
    or an unpaired surrogate; the error names the top-level field they are under."""
    if isinstance(data, dict):
        for key, value in data.items():
            _walk([key, value], 1, key, strings)  # the field's key and value, one level down
    else:
        _walk([data], 0, None, strings)


def _walk(container: dict | list, depth: int, field: str | None, strings: bool) -> None:
    # Recursive, but the depth check comes first, so it never goes past MAX_DEPTH. Loops,
    # not a call per value: this runs on the submit path.
    if depth > MAX_DEPTH:
        raise _too_deep(field)
    if isinstance(container, dict):
        if strings:
            for key in container:
                if _unstorable(key):
                    raise _refused_text(field, key)
        container = container.values()
    for item in container:
        if isinstance(item, (dict, list)):
            _walk(item, depth + 1, field, strings)
        elif strings and isinstance(item, str) and _unstorable(item):
            raise _refused_text(field, item)


def _unstorable(text: str) -> bool:
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    # 1e999 is valid JSON that Python reads as inf, which no database or client can take.
    value = float(literal)
    if math.isinf(value):
        raise _refused(None, f"Numbers must be finite; {literal[:40]} is out of range.")
    return value


def _too_deep(field: str | None) -> UnacceptableBody:
    return _refused(field, f"The body is nested too deep (at most {MAX_DEPTH} levels).")


def _refused_text(field: str | None, text: str) -> UnacceptableBody:
    if "\x00" in text:
        return _refused(field, "Strings must not contain the NUL character (U+0000).")
    return _refused(field, "Strings must not contain unpaired surrogates (U+D800 to U+DFFF).")


def _refused(field: str | None, message: str) -> UnacceptableBody:
    return UnacceptableBody(message, fields={field or "non_field_errors": [message]})
