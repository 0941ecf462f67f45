"""Series of the audit trail that /metrics computes at scrape: the approvals waiting for a human.

A gauge of rows in the database is read when Prometheus asks, not counted as rows come and go:
every web replica then reports the same value (aggregate with max()), and nothing drifts when a
decision happens in another process. One aggregate query on the (status, created_at) index.
"""

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from audit.models import ActionAudit

logger = logging.getLogger(__name__)


def pending_approvals() -> tuple[int, float]:
    """(actions waiting for a decision, age in seconds of the oldest of them; 0 when none)."""
    summary = ActionAudit.objects.filter(status=ActionAudit.Status.PENDING_APPROVAL).aggregate(
        waiting=Count("id"), oldest=Min("created_at")
    )
    oldest = summary["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
    return summary["waiting"], max(age, 0.0)


class PendingApprovalsCollector:
    """ai_actions_pending_approval and the age of the oldest, read from PostgreSQL at scrape."""

    def collect(self) -> Iterator[Metric]:
        try:
            waiting, age = pending_approvals()
        except DatabaseError as exc:
            # The rest of the scrape stands; the gap in these two series says the database is out.
            logger.warning("pending approvals unavailable, database unreachable: %s", exc)
            return
        yield GaugeMetricFamily(
            "ai_actions_pending_approval",
            "Proposed actions waiting for a reviewer's decision.",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "ai_actions_pending_approval_oldest_age_seconds",
            "Age of the oldest action waiting for a decision; 0 when none waits.",
            value=age,
        )
