"""Specification of DB_PREPARED_STATEMENTS: on (the default), psycopg prepares a statement the
ORM repeats, through Django's documented OPTIONS; off, PostgreSQL prepares nothing (Django's own
default, for PgBouncer in transaction mode before 1.21).

Each case runs a fresh interpreter, as settings are read once at start-up.
"""

import subprocess
import sys

import pytest

from tests import processes
from tests.config.test_settings import ROOT, child_env

_PROBE = """
import django
django.setup()
from django.db import connection
from orchestrator.models import Workspace
for _ in range(6):
    list(Workspace.objects.filter(pk="nobody"))
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
        ["%orchestrator_workspace%"],
    )
    print(cursor.fetchone()[0])
"""


def prepared_in_a_process(**variables: str) -> int:
    """How many statements on the workspace table a fresh process's connection has prepared."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        # The test database, whose tables exist, however the suite was pointed at PostgreSQL.
        env=child_env(DEBUG="true", DATABASE_URL=processes.test_database_url(), **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_by_default_a_repeated_query_is_prepared_once():
    assert prepared_in_a_process() == 1


@pytest.mark.django_db
def test_turned_off_postgresql_prepares_nothing():
    assert prepared_in_a_process(DB_PREPARED_STATEMENTS="false") == 0
