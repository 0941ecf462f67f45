"""The weekly anomaly review: per workspace, what the models did against the period before."""

import re
from collections import defaultdict
from datetime import datetime, timedelta

from django.apps import apps
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from audit.models import ActionAudit

FLAGGED = (ActionAudit.Status.DENIED, ActionAudit.Status.REJECTED, ActionAudit.Status.UNKNOWN)
BUSIEST_KEYS = 5
_DURATION = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


class BadPeriod(ValueError):
    """A period that is not like 24h, 7d or 2w."""


def parse_period(text: str) -> timedelta:
    """`24h`, `7d`, `2w` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) < 1:
        raise BadPeriod(f"period must look like 24h, 7d or 2w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def build_report(*, period: timedelta, now: datetime | None = None) -> dict:
    """Actions by status, flagged counts against the previous period, new recipient domains
    and the busiest API keys, per workspace."""
    until = now or timezone.now()
    since = until - period
    before = since - period
    workspaces: dict[str, dict] = defaultdict(_empty_workspace)
    current = ActionAudit.objects.filter(created_at__gte=since, created_at__lt=until)
    for row in current.values("workspace_id", "status").annotate(n=Count("id")):
        workspaces[row["workspace_id"]]["by_status"][row["status"]] = row["n"]
    previous = ActionAudit.objects.filter(
        created_at__gte=before, created_at__lt=since, status__in=FLAGGED
    )
    previous_counts = {
        (row["workspace_id"], row["status"]): row["n"]
        for row in previous.values("workspace_id", "status").annotate(n=Count("id"))
    }
    for workspace_id, _status in previous_counts:
        workspaces[workspace_id]  # a workspace quiet now but flagged before is worth a line
    for workspace_id, entry in workspaces.items():
        for status in FLAGGED:
            now_n = entry["by_status"].get(status, 0)
            before_n = previous_counts.get((workspace_id, status), 0)
            entry["flagged"][status] = {
                "current": now_n,
                "previous": before_n,
                "change": now_n - before_n,
            }
    for workspace_id, domain in _new_recipient_domains(since=since, until=until):
        workspaces[workspace_id]["new_recipient_domains"].append(domain)
    for workspace_id, keys in _busiest_keys(since=since, until=until).items():
        workspaces[workspace_id]["busiest_api_keys"] = keys
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "previous_since": before.isoformat(),
        "workspaces": {ws: workspaces[ws] for ws in sorted(workspaces)},
    }


def render_text(report: dict) -> str:
    """The report as plain text for a terminal or an e-mail."""
    lines = [f"Audit report {report['since']} .. {report['until']}"]
    if not report["workspaces"]:
        lines.append("No action was recorded in this period or the one before.")
    for workspace_id, entry in report["workspaces"].items():
        lines += ["", f"Workspace {workspace_id}"]
        by_status = ", ".join(f"{s} {n}" for s, n in sorted(entry["by_status"].items()))
        lines.append(f"  actions by status: {by_status or 'none'}")
        for status, counts in entry["flagged"].items():
            lines.append(
                f"  {status}: {counts['current']} (previous period {counts['previous']}, "
                f"change {counts['change']:+d})"
            )
        domains = ", ".join(entry["new_recipient_domains"]) or "none"
        lines.append(f"  new recipient domains: {domains}")
        keys = entry["busiest_api_keys"]
        lines.append("  busiest API keys: " + (", ".join(_key_text(k) for k in keys) or "none"))
    return "\n".join(lines) + "\n"


def _key_text(key: dict) -> str:
    name = f" ({key['name']})" if key["name"] else ""
    return f"{key['prefix']}{name} {key['jobs']} jobs, {key['actions']} actions"


def _empty_workspace() -> dict:
    return {"by_status": {}, "flagged": {}, "new_recipient_domains": [], "busiest_api_keys": []}


def _new_recipient_domains(*, since: datetime, until: datetime) -> list[tuple[str, str]]:
    # "New" means not seen in any earlier row still in the table (archived rows are gone).
    sql = """
        SELECT workspace_id, lower(split_part(address, '@', 2)) AS domain
        FROM action_audit,
             jsonb_array_elements_text(arguments -> 'to') AS address
        WHERE jsonb_typeof(arguments -> 'to') = 'array' AND created_at < %s
        GROUP BY 1, 2
        HAVING min(created_at) >= %s
        ORDER BY 1, 2
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [until, since])
        return cursor.fetchall()


def _busiest_keys(*, since: datetime, until: datetime) -> dict[str, list[dict]]:
    # The jobs table through the app registry: the audit app reads it for this one figure and
    # imports nothing of the jobs app above it.
    job_model = apps.get_model("orchestrator", "Job")
    jobs = (
        job_model.objects.filter(created_at__gte=since, created_at__lt=until, api_key__isnull=False)
        .values("workspace_id", "api_key_id", "api_key__prefix", "api_key__name")
        .annotate(jobs=Count("id"))
    )
    actions = {
        row["job__api_key_id"]: row["n"]
        for row in ActionAudit.objects.filter(created_at__gte=since, created_at__lt=until)
        .values("job__api_key_id")
        .annotate(n=Count("id"))
    }
    by_workspace: dict[str, list[dict]] = defaultdict(list)
    for row in jobs:
        by_workspace[row["workspace_id"]].append(
            {
                "prefix": row["api_key__prefix"],
                "name": row["api_key__name"],
                "jobs": row["jobs"],
                "actions": actions.get(row["api_key_id"], 0),
            }
        )
    return {
        ws: sorted(keys, key=lambda k: (-k["jobs"], -k["actions"], k["prefix"]))[:BUSIEST_KEYS]
        for ws, keys in by_workspace.items()
    }
