"""The daily archive: scheduled by beat only when AUDIT_ARCHIVE_DIR is set, run by a worker."""

import json
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import ActionAudit
from audit.tasks import archive_old_audit_rows
from tests import factories
from tests.config.test_settings import assert_refuses_to_start, start
from tests.processes import wait_until

_SCHEDULE_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: entry["task"] for name, entry in s.CELERY_BEAT_SCHEDULE.items()}))
"""


def beat_schedule(**variables: str) -> dict:
    result = start([sys.executable, "-c", _SCHEDULE_PROBE], DEBUG="true", **variables)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


_DEFAULTS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
names = ["AUDIT_RETENTION_DAYS", "AUDIT_ARCHIVE_BATCH_SIZE", "AUDIT_ARCHIVE_HOUR_UTC"]
print(json.dumps({**{n: getattr(s, n) for n in names}, "DIR": str(s.AUDIT_ARCHIVE_DIR)}))
"""


def test_archive_settings_default_to_the_runbook_90_days():
    result = start([sys.executable, "-c", _DEFAULTS_PROBE], DEBUG="true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "AUDIT_RETENTION_DAYS": 90,
        "AUDIT_ARCHIVE_BATCH_SIZE": 1000,
        "AUDIT_ARCHIVE_HOUR_UTC": 3,
        "DIR": "None",
    }


def test_beat_archives_daily_only_when_a_directory_is_set(tmp_path):
    assert "archive-audit" not in beat_schedule()
    assert beat_schedule(AUDIT_ARCHIVE_DIR=str(tmp_path))["archive-audit"] == (
        "audit.tasks.archive_old_audit_rows"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUDIT_ARCHIVE_DIR", "relative/dir"),
        ("AUDIT_RETENTION_DAYS", "0"),
        ("AUDIT_ARCHIVE_BATCH_SIZE", "lots"),
        ("AUDIT_ARCHIVE_HOUR_UTC", "24"),
    ],
)
def test_a_bad_archive_setting_stops_start_up(variable, value):
    assert_refuses_to_start(variable, SECRET_KEY="s3cret", **{variable: value})


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_archive_into_the_configured_directory(
    start_worker_with, workspace, tmp_path
):
    job = factories.make_job(workspace)
    old = factories.make_audit(job, created_at=timezone.now() - timedelta(days=91))
    young = factories.make_audit(job, created_at=timezone.now() - timedelta(days=89))
    start_worker_with(AUDIT_ARCHIVE_DIR=str(tmp_path))

    archive_old_audit_rows.delay()

    wait_until(lambda: not ActionAudit.objects.filter(pk=old.pk).exists(), timeout=30)
    (manifest_path,) = tmp_path.glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["rows"], manifest["first_id"]) == (1, old.pk)
    assert ActionAudit.objects.filter(pk=young.pk).exists()
