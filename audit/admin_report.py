"""The audit report (audit/report.py) as the admin shows it: each count links to its rows."""

from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse

from audit.report import FLAGGED, build_report


def report_context(*, period: timedelta, now: datetime | None = None) -> dict:
    """build_report's figures, each with the admin URL of the rows behind it."""
    report = build_report(period=period, now=now)
    trail = reverse("admin:audit_actionaudit_changelist")
    keys = reverse("admin:orchestrator_apikey_changelist")
    current = {"created_at__gte": report["since"], "created_at__lt": report["until"]}
    previous = {"created_at__gte": report["previous_since"], "created_at__lt": report["since"]}

    def rows_url(workspace_id: str, when: dict, **params: str) -> str:
        return f"{trail}?{urlencode({'workspace__id__exact': workspace_id, **params, **when})}"

    workspaces = []
    for workspace_id, entry in report["workspaces"].items():
        workspaces.append(
            {
                "id": workspace_id,
                "all_url": rows_url(workspace_id, current),
                "by_status": [
                    (status, count, rows_url(workspace_id, current, status__exact=status))
                    for status, count in sorted(entry["by_status"].items())
                ],
                "flagged": [
                    {
                        "status": status,
                        **counts,
                        "current_url": rows_url(workspace_id, current, status__exact=status),
                        "previous_url": rows_url(workspace_id, previous, status__exact=status),
                    }
                    for status, counts in entry["flagged"].items()
                    if status in FLAGGED
                ],
                "new_domains": [
                    (domain, rows_url(workspace_id, current, q=f"@{domain}"))
                    for domain in entry["new_recipient_domains"]
                ],
                "busiest_keys": [
                    {**key, "url": f"{keys}?{urlencode({'q': key['prefix']})}"}
                    for key in entry["busiest_api_keys"]
                ],
            }
        )
    return {
        "since": report["since"],
        "until": report["until"],
        "previous_since": report["previous_since"],
        "workspaces": workspaces,
    }
