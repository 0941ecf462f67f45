"""A status column's table of allowed moves, and the one way to write a move: a conditional UPDATE.

Each stateful model declares its table once (orchestrator/lifecycle.py, audit/lifecycle.py). The
UPDATE's `status IN (sources)` is the lock: of two processes making the same move, one moves the
row and the other learns it moved nothing.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models


class TransitionRefused(ValueError):
    """A move the table does not allow: a bug in the caller, never a race (a race moves 0 rows)."""


@dataclass(frozen=True)
class Transitions:
    """One model's allowed status moves ({source: {targets}}) and the statuses rows start in."""

    objects: models.Manager
    allowed: Mapping[str, frozenset[str]]
    initial: frozenset[str]
    field: str = "status"

    def sources(self, source: str | Iterable[str], target: str) -> list[str]:
        """`source` as a list, after checking each source may move to `target`."""
        sources = [source] if isinstance(source, str) else list(source)
        refused = [str(s) for s in sources if target not in self.allowed.get(s, ())]
        if refused or not sources:
            raise TransitionRefused(
                f"{self.objects.model.__name__}: {', '.join(refused) or 'nothing'} -> {target} "
                "is not an allowed move"
            )
        return sources

    def create(self, **values: Any) -> models.Model:
        """INSERT a row, which must start in one of the initial statuses."""
        if values.get(self.field) not in self.initial:
            raise TransitionRefused(
                f"{self.objects.model.__name__} rows cannot start {values.get(self.field)}"
            )
        return self.objects.create(**values)

    def move(
        self, rows: models.QuerySet, *, source: str | Iterable[str], target: str, **fields: Any
    ) -> int:
        """Move those of `rows` still in `source` to `target`, writing `fields`; how many moved."""
        sources = self.sources(source, target)
        return rows.filter(**{f"{self.field}__in": sources}).update(
            **{self.field: target}, **fields
        )
