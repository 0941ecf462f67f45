"""audit_report: per workspace, actions by status, denied/rejected/unknown against the previous
period, new recipient domains and the busiest API keys; as text, JSON and an admin page."""

import html
import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import ActionAudit
from orchestrator.api_keys import issue_api_key
from tests import factories

Status = ActionAudit.Status
pytestmark = pytest.mark.django_db


def mail(to: str) -> dict:
    return {"to": [to], "subject": "s", "body": "b"}


@pytest.fixture
def history(workspace, other_workspace):
    now = timezone.now()
    busy = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="busy").api_key
    quiet = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="").api_key
    this_week = now - timedelta(days=1)
    last_week = now - timedelta(days=9)
    old = now - timedelta(days=30)
    job_busy = [factories.make_job(workspace, api_key=busy, created_at=this_week) for _ in range(3)]
    job_quiet = factories.make_job(workspace, api_key=quiet, created_at=this_week)
    job_old = factories.make_job(workspace, api_key=quiet, created_at=old)
    factories.make_audit(job_old, arguments=mail("a@known.example"), created_at=old)
    factories.make_audit(job_busy[0], arguments=mail("b@known.example"), created_at=this_week)
    factories.make_audit(job_busy[0], arguments=mail("x@New.example"), created_at=this_week)
    factories.make_audit(job_busy[1], status=Status.DENIED, created_at=this_week)
    factories.make_audit(job_busy[2], status=Status.DENIED, created_at=this_week)
    factories.make_audit(job_quiet, status=Status.UNKNOWN, created_at=this_week)
    factories.make_audit(job_old, status=Status.DENIED, created_at=last_week)
    factories.make_audit(job_old, status=Status.REJECTED, created_at=last_week)
    other_job = factories.make_job(other_workspace, created_at=last_week)
    factories.make_audit(other_job, status=Status.DENIED, created_at=last_week)
    return {"busy": busy, "quiet": quiet}


def report_json(*args: str) -> dict:
    out = StringIO()
    call_command("audit_report", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def test_report_summarises_each_workspace_against_the_previous_period(history):
    report = report_json("--since", "7d")

    ws_a = report["workspaces"]["ws-a"]
    assert ws_a["by_status"] == {"executed": 2, "denied": 2, "unknown": 1}
    assert ws_a["flagged"] == {
        "denied": {"current": 2, "previous": 1, "change": 1},
        "rejected": {"current": 0, "previous": 1, "change": -1},
        "unknown": {"current": 1, "previous": 0, "change": 1},
    }
    assert ws_a["new_recipient_domains"] == ["new.example"]
    assert ws_a["busiest_api_keys"] == [
        {"prefix": history["busy"].prefix, "name": "busy", "jobs": 3, "actions": 4},
        {"prefix": history["quiet"].prefix, "name": "", "jobs": 1, "actions": 1},
    ]
    # A workspace quiet this week but flagged the week before still gets its line.
    assert report["workspaces"]["ws-b"]["flagged"]["denied"] == {
        "current": 0,
        "previous": 1,
        "change": -1,
    }


def test_a_longer_period_reaches_further_back(history):
    ws_a = report_json("--since", "14d")["workspaces"]["ws-a"]
    assert ws_a["by_status"]["denied"] == 3
    assert ws_a["flagged"]["rejected"]["current"] == 1


def test_text_report_is_the_default(history):
    out = StringIO()
    call_command("audit_report", "--since", "7d", stdout=out)
    text = out.getvalue()
    assert "Workspace ws-a" in text
    assert "  denied: 2 (previous period 1, change +1)" in text
    assert "  new recipient domains: new.example" in text
    assert f"{history['busy'].prefix} (busy) 3 jobs, 4 actions" in text


@pytest.mark.parametrize("since", ["7", "seven days", "0d", "-1d", "3y"])
def test_a_bad_period_is_refused(since):
    with pytest.raises(CommandError, match="24h, 7d or 2w"):
        call_command("audit_report", f"--since={since}")


def report_links(page: str) -> dict[str, str]:
    """The report page's links: their text (tags stripped) -> URL."""
    found = re.findall(r'<a class="report-link" href="([^"]+)">(.*?)</a>', page, re.S)
    return {
        html.unescape(re.sub(r"\s+", " ", text)).strip(): html.unescape(url) for url, text in found
    }


def listed(admin_client, url: str) -> set[int]:
    response = admin_client.get(url)
    assert response.status_code == 200, url
    return {row.pk for row in response.context["cl"].result_list}


def test_the_admin_page_shows_the_report_with_links_to_the_rows_it_counts(admin_client, history):
    page = admin_client.get("/admin/audit/actionaudit/report/?since=7d").content.decode()
    expected = report_json("--since", "7d")["workspaces"]["ws-a"]
    ws_a = page.split('id="report-ws-a"')[1].split('id="report-ws-b"')[0]
    links = report_links(ws_a)

    for status, count in expected["by_status"].items():
        assert f"{status} {count}" in links
    this_week = ActionAudit.objects.filter(
        workspace_id="ws-a", created_at__gte=timezone.now() - timedelta(days=7)
    )
    assert listed(admin_client, links["denied 2"]) == set(
        this_week.filter(status=Status.DENIED).values_list("pk", flat=True)
    )
    assert set(listed(admin_client, links["2 denied this period"])) == set(
        this_week.filter(status=Status.DENIED).values_list("pk", flat=True)
    )
    # The period before: its one denied row of ws-a, none of this week's.
    (before,) = listed(admin_client, links["1 denied the period before"])
    assert ActionAudit.objects.get(pk=before).created_at < timezone.now() - timedelta(days=7)
    (new_domain,) = listed(admin_client, links["new.example"])
    assert ActionAudit.objects.get(pk=new_domain).arguments["to"] == ["x@New.example"]
    assert "change +1" in ws_a
    key = admin_client.get(links[f"{history['busy'].prefix} (busy)"])
    assert [k.pk for k in key.context["cl"].result_list] == [history["busy"].pk]
