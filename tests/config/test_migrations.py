"""Every model change ships with its migration: a missing one fails the suite, not a deploy."""

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_its_migration():
    changes = io.StringIO()
    try:
        # Against the test database, so the history check has a database that exists.
        call_command("makemigrations", "--check", "--dry-run", stdout=changes)
    except SystemExit:
        pytest.fail(f"run manage.py makemigrations; these changes have none:\n{changes.getvalue()}")
