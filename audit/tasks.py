"""Celery tasks of the audit app: thin adapters over audit services."""

import logging

from celery import shared_task
from django.conf import settings

from audit.archive import archive_audit

logger = logging.getLogger(__name__)


@shared_task
def archive_old_audit_rows() -> int:
    """The daily archive (beat runs it only when AUDIT_ARCHIVE_DIR is set)."""
    if settings.AUDIT_ARCHIVE_DIR is None:
        logger.warning("archive_old_audit_rows: AUDIT_ARCHIVE_DIR is not set, nothing archived")
        return 0
    report = archive_audit(
        older_than_days=settings.AUDIT_RETENTION_DAYS,
        output_dir=settings.AUDIT_ARCHIVE_DIR,
        batch_size=settings.AUDIT_ARCHIVE_BATCH_SIZE,
    )
    return report.archived + report.resumed
