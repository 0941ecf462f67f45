"""Prepared statements for the few hottest SQL statements: a job's insert, claim and writes.

Django binds parameters on the client, so PostgreSQL parses and plans every statement anew.
These statements go through a server-binding cursor that prepares them once per pooled
connection instead. DB_PREPARED_STATEMENTS=false (PgBouncer in transaction mode before 1.21)
keeps the server binding but prepares nothing.
"""

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper

_PREPARE_THRESHOLD = 5  # psycopg's default; the cursor below prepares at the first execution


@contextlib.contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A Django cursor (errors, query logging, thread checks as Django's own) that prepares."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    # Django turns psycopg's preparation off (prepare_threshold None). It comes back only for
    # these statements: with it on, psycopg keeps count of every other statement too.
    before = raw.prepare_threshold
    raw.prepare_threshold = _PREPARE_THRESHOLD if settings.DB_PREPARED_STATEMENTS else None
    try:
        with connection.wrap_database_errors:
            cursor = connection._prepare_cursor(_PreparingCursor(raw))
        with cursor:
            yield cursor
    finally:
        raw.prepare_threshold = before


class _PreparingCursor(ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)
