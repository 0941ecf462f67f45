"""A tool call's arguments as the model wrote them: untrusted text, read within bounds.

Everything the policy, the audit row and the connectors do with arguments assumes a small JSON
object that PostgreSQL can store and Python can walk; this module is where that becomes true.
"""

import json
import math
import re
from dataclasses import dataclass, field

# The largest valid call (a mail with a 100k-character body and a 200k-character HTML part)
# fits with room; anything longer is refused before it is parsed.
MAX_ARGUMENTS_CHARS = 512 * 1024
# Every schema is at most three levels deep (object > array > string); the bound leaves room
# for a schema to grow while keeping every later walk (schema check, hash, jsonb) far from
# Python's recursion limit.
MAX_DEPTH = 8

# Neither a NUL (PostgreSQL text and jsonb refuse it) nor a lone surrogate (not encodable as
# UTF-8) can be stored; json.loads produces both from \u escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class ParsedArguments:
    """The arguments object, or None with the reasons (`path: message`) it was refused."""

    value: dict | None
    errors: list[str] = field(default_factory=list)


class _Refused(ValueError):
    pass


def parse_arguments(raw: str) -> ParsedArguments:
    """Parse the model's arguments text into a bounded, storable JSON object."""
    if len(raw) > MAX_ARGUMENTS_CHARS:
        return _refused("(root)", f"arguments longer than {MAX_ARGUMENTS_CHARS} characters")
    try:
        value = json.loads(raw or "{}", parse_constant=_no_constant, parse_float=_finite_float)
    except _Refused as exc:
        return _refused("(root)", str(exc))
    except RecursionError:
        return _refused("(root)", f"arguments nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        return _refused("(root)", f"arguments are not valid JSON ({type(exc).__name__})")
    if not isinstance(value, dict):
        return _refused("(root)", "arguments are not a JSON object")
    errors = _unbounded(value)
    return ParsedArguments(None, errors) if errors else ParsedArguments(value)


def _refused(path: str, message: str) -> ParsedArguments:
    return ParsedArguments(None, [f"{path}: {message}"])


def _no_constant(name: str) -> float:
    raise _Refused(f"numbers must be finite, not {name}")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Refused("numbers must be finite (this one overflows)")
    return number


def _unbounded(value: dict) -> list[str]:
    """What makes a parsed object unsafe to keep: depth, NULs and lone surrogates."""
    errors: list[str] = []
    # Iterative, so the walk itself cannot overflow the stack it protects.
    stack: list[tuple[object, tuple[str, ...]]] = [(value, ())]
    while stack and len(errors) < 20:
        item, path = stack.pop()
        where = "/".join(path) or "(root)"
        if len(path) >= MAX_DEPTH and isinstance(item, dict | list):
            # Named by its top-level field: the full path of a deep nest is noise.
            errors.append(f"{path[0]}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    errors.append(f"{where}: a key {_what(key)}")
                else:
                    stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, str(index))) for index, child in enumerate(item))
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            errors.append(f"{where}: {_what(item)}")
    return sorted(errors)


def _what(text: str) -> str:
    return "contains a NUL character" if "\x00" in text else "contains a lone surrogate"
