"""The auditors' admin: read-only, filtered and searched on indexes, escaped, exportable, and
as cheap with many rows as with few."""

import csv
import io
from datetime import UTC, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from audit.admin import COUNT_LIMIT
from audit.export import neutralise
from audit.models import ActionAudit
from audit.services import search_trail
from audit.templatetags.audit_admin import distinct_periods
from tests import factories

Status = ActionAudit.Status
LIST = "/admin/audit/actionaudit/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(workspace, other_workspace):
    """Rows of two workspaces, actions, statuses and reasons."""
    job_a = factories.make_job(workspace)
    job_b = factories.make_job(other_workspace)
    now = timezone.now()
    return {
        "sent": factories.make_audit(job_a, call_key="1.0", created_at=now - timedelta(hours=1)),
        "denied": factories.make_audit(
            job_a,
            call_key="1.1",
            status=Status.DENIED,
            reason="action_not_allowed",
            arguments={"to": ["boss@corp.example"], "subject": "x", "body": "y"},
            created_at=now - timedelta(days=3),
        ),
        "task": factories.make_audit(
            job_a,
            call_key="2.0",
            action="task.create",
            arguments={"title": "Plan"},
            created_at=now - timedelta(days=400),
        ),
        "other_denied": factories.make_audit(
            job_b, call_key="1.0", status=Status.DENIED, reason="action_not_allowed"
        ),
    }


def listed(client, query: str = "") -> set[int]:
    response = client.get(LIST + query)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_audit_list_filters_by_workspace_action_status_reason_and_date(admin_client, trail):
    assert listed(admin_client) == {row.pk for row in trail.values()}
    assert listed(admin_client, "?workspace__id__exact=ws-a&status__exact=denied") == {
        trail["denied"].pk
    }
    assert listed(admin_client, "?action=task.create") == {trail["task"].pk}
    assert listed(admin_client, "?reason=action_not_allowed") == {
        trail["denied"].pk,
        trail["other_denied"].pk,
    }
    assert trail["task"].pk not in listed(admin_client, "?created_at__gte=" + _days_ago(7))
    year = trail["task"].created_at.year
    assert listed(admin_client, f"?created_at__year={year}") >= {trail["task"].pk}


def _days_ago(days: int) -> str:
    return quote((timezone.now() - timedelta(days=days)).isoformat())


def test_reason_filter_offers_the_reasons_in_the_trail(admin_client, trail):
    response = admin_client.get(LIST)
    (reason_filter,) = [f for f in response.context["cl"].filter_specs if f.title == "reason"]
    assert reason_filter.lookup_choices == [("action_not_allowed", "action_not_allowed")]


def test_search_by_job_id_call_key_and_recipient(admin_client, trail):
    assert listed(admin_client, f"?q={trail['task'].job_id}") == {
        trail["sent"].pk,
        trail["denied"].pk,
        trail["task"].pk,
    }
    assert listed(admin_client, "?q=2.0") == {trail["task"].pk}
    assert listed(admin_client, "?q=boss@corp.example") == {trail["denied"].pk}
    assert listed(admin_client, "?q=nobody@corp.example") == set()


def test_nothing_can_be_added_changed_or_deleted(admin_client, trail):
    row = trail["sent"]
    page = admin_client.get(LIST).content.decode()
    assert f'href="{LIST}add/"' not in page
    assert 'name="action"' not in page  # no bulk actions, not even delete_selected
    assert admin_client.get(LIST + "add/").status_code == 403
    detail = admin_client.get(f"{LIST}{row.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert 'class="deletelink"' not in detail.content.decode()
    assert admin_client.post(f"{LIST}{row.pk}/change/", {"status": "failed"}).status_code == 403
    assert admin_client.post(f"{LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.status == Status.EXECUTED


def test_detail_pretty_prints_and_escapes_model_output(admin_client, workspace):
    job = factories.make_job(workspace)
    row = factories.make_audit(
        job,
        arguments={"to": ["a@example.com"], "subject": "<script>alert(1)</script>", "body": "b"},
        result={"html": "<img src=x onerror=alert(2)>"},
    )
    page = admin_client.get(f"{LIST}{row.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert '<pre class="json"' in page  # indented, and wrapped by the page's width
    assert "{\n  &quot;to&quot;: [\n    &quot;a@example.com&quot;\n  ]," in page
    assert f'href="/admin/orchestrator/job/{job.pk}/change/"' in page


def test_job_page_shows_its_audit_rows_with_links(admin_client, trail):
    job = trail["sent"].job
    page = admin_client.get(f"/admin/orchestrator/job/{job.pk}/change/").content.decode()
    for key in ("sent", "denied", "task"):
        assert f'href="{LIST}{trail[key].pk}/change/"' in page
    assert f'href="{LIST}{trail["other_denied"].pk}/change/"' not in page


def test_csv_export_streams_the_filtered_list(admin_client, trail):
    response = admin_client.get(LIST + "export/?status__exact=denied&workspace__id__exact=ws-a")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [trail["denied"].pk]
    assert rows[0]["recipients"] == "boss@corp.example"
    assert rows[0]["reason"] == "action_not_allowed"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(start):
    assert neutralise(f"{start}HYPERLINK(1)") == f"'{start}HYPERLINK(1)"
    assert neutralise("plain = text") == "plain = text"


def test_csv_export_neutralises_model_output(admin_client, workspace):
    job = factories.make_job(workspace)
    factories.make_audit(job, call_key="=cmd", reason="@SUM(A1)", arguments={"title": "+1"})
    response = admin_client.get(LIST + "export/")
    (row,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["call_key"] == "'=cmd"
    assert row["reason"] == "'@SUM(A1)"
    assert row["arguments"] == '{"title": "+1"}'  # starts with "{": nothing to neutralise


def test_non_staff_users_are_refused(client, trail):
    User.objects.create_user("visitor", password="pw-visitor-1")
    client.login(username="visitor", password="pw-visitor-1")
    for url in (LIST, LIST + "export/", f"{LIST}{trail['sent'].pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "query", ["", "?status__exact=denied", "?q=boss@corp.example", "?created_at__year=2026"]
)
def test_list_queries_stay_constant_as_rows_grow(
    admin_client, workspace, django_assert_max_num_queries, query
):
    def add_rows(n: int) -> None:
        for _ in range(n):
            job = factories.make_job(factories.make_workspace())
            factories.make_audit(job, status=Status.DENIED, reason=f"r{job.pk.hex[:4]}")

    add_rows(3)
    with django_assert_max_num_queries(12) as few:
        admin_client.get(LIST + query)
    add_rows(40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(LIST + query).status_code == 200


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_date_hierarchy_periods_match_djangos_distinct(workspace, kind):
    job = factories.make_job(workspace)
    now = timezone.now()
    for days in (0, 0, 1, 3, 31, 32, 200, 400, 401):
        factories.make_audit(job, created_at=now - timedelta(days=days, minutes=days))
    queryset = ActionAudit.objects.all()

    periods = distinct_periods(queryset, field="created_at", kind=kind)

    assert periods == list(queryset.datetimes("created_at", kind))
    assert len(periods) > 1  # the rows span several periods of every kind


def test_date_hierarchy_drills_down_to_the_days_with_rows(admin_client, workspace):
    job = factories.make_job(workspace)
    row = factories.make_audit(job)
    day = row.created_at
    page = admin_client.get(
        f"{LIST}?created_at__year={day.year}&created_at__month={day.month}"
    ).content.decode()
    assert f"created_at__day={day.day}" in page


def test_an_unknown_row_is_not_found(admin_client):
    assert admin_client.get(f"{LIST}999999/change/").status_code == 302  # "doesn't exist" notice
    assert admin_client.get(f"{LIST}not-a-number/change/").status_code == 302


def test_a_count_beyond_the_limit_says_more_than(admin_client, workspace):
    job = factories.make_job(workspace)
    fields = {"workspace": workspace, "job": job, "action": "task.create", "status": "executed"}
    ActionAudit.objects.bulk_create(
        ActionAudit(call_key=str(i), **fields) for i in range(COUNT_LIMIT)
    )
    assert f"{COUNT_LIMIT} action audits" in admin_client.get(LIST).content.decode()
    factories.make_audit(job)
    page = admin_client.get(LIST).content.decode()
    assert f"more than {COUNT_LIMIT} action audits" in page


@pytest.fixture
def mails(workspace):
    job = factories.make_job(workspace)

    def mail(**arguments):
        return factories.make_audit(job, arguments={"subject": "", "body": "b", **arguments})

    return {
        "to": mail(to=["Ann@Acme.com"], subject="Quarterly numbers"),
        "cc": mail(to=["bob@corp.example"], cc=["carol@acme.com"], subject="Lunch"),
        "bcc": mail(to=["dan@corp.example"], bcc=["eve@spy.example"], subject="acme.com launch"),
    }


def test_search_finds_any_recipient_a_domain_and_subject_words(admin_client, mails):
    assert listed(admin_client, "?q=ann@acme.com") == {mails["to"].pk}  # case as the mail sees it
    assert listed(admin_client, "?q=carol@acme.com") == {mails["cc"].pk}
    assert listed(admin_client, "?q=eve@spy.example") == {mails["bcc"].pk}
    assert listed(admin_client, "?q=%40acme.com") == {mails["to"].pk, mails["cc"].pk}
    # A bare domain also matches it as a subject word.
    assert listed(admin_client, "?q=acme.com") == {m.pk for m in mails.values()}
    assert listed(admin_client, "?q=quarterly") == {mails["to"].pk}
    assert listed(admin_client, "?q=lunch") == {mails["cc"].pk}
    assert listed(admin_client, "?q=dinner") == set()


@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("carol@acme.com", "action_audit_recipients_idx"),
        ("@acme.com", "action_audit_domains_idx"),
        ("quarterly", "action_audit_subject_idx"),
    ],
)
def test_each_kind_of_search_is_answered_by_its_index(mails, term, index):
    rows = search_trail(ActionAudit.objects.all(), term)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned anyway
        plan = rows.explain()
    assert index in plan, plan


def test_date_range_filter_takes_inclusive_days(admin_client, workspace):
    job = factories.make_job(workspace)
    now = timezone.now()
    old = factories.make_audit(job, created_at=now - timedelta(days=10))
    recent = factories.make_audit(job, created_at=now - timedelta(days=2))
    day = (now - timedelta(days=2)).date().isoformat()
    assert listed(admin_client, f"?created_at__from={day}&created_at__to={day}") == {recent.pk}
    start = (now - timedelta(days=10)).date().isoformat()
    assert listed(admin_client, f"?created_at__from={start}") == {old.pk, recent.pk}
    assert listed(admin_client, f"?created_at__to={start}") == {old.pk}
    assert admin_client.get(LIST + "?created_at__from=yesterday").status_code in (200, 302)
    assert listed(admin_client, "") == {old.pk, recent.pk}  # positive control


def test_list_shows_short_ids_and_times_to_the_second_with_the_zone(admin_client, workspace):
    job = factories.make_job(workspace)
    row = factories.make_audit(job, created_at=timezone.now().replace(microsecond=0))
    page = admin_client.get(LIST).content.decode()
    assert row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    assert f'title="{job.pk}">{str(job.pk)[:8]}</a>' in page
    assert f">{job.pk}<" not in page  # the whole id only on hover and on the job's page


def test_csv_export_has_every_column_an_auditor_needs_in_utc(admin_client, workspace):
    job = factories.make_job(workspace)
    now = timezone.now()
    row = factories.make_audit(
        job,
        arguments={"to": ["a@acme.com"], "cc": ["b@x.example"], "subject": "Hi", "body": "b"},
        result={"provider_message_id": "gm-1", "message_id": "<audit-1@x>"},
        hold_reason="recipient_outside_allowed_domains",
        hold_details=["not in an allowed domain: b@x.example"],
        decision="approve",
        decided_by="admin:ann",
        decided_at=now,
        expires_at=now + timedelta(hours=24),
        arguments_hash="f" * 64,
        approved_arguments_hash="f" * 64,
        finished_at=now,
    )
    response = admin_client.get(LIST + "export/")
    (line,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))

    assert line["id"] == str(row.pk) and line["job"] == str(job.pk)
    assert line["workspace"] == workspace.pk and line["action"] == "gmail.send"
    assert (line["recipients"], line["subject"]) == ("a@acme.com b@x.example", "Hi")
    assert (line["status"], line["reason"]) == ("executed", "")
    assert line["hold_reason"] == "recipient_outside_allowed_domains"
    assert (line["decision"], line["decided_by"]) == ("approve", "admin:ann")
    assert line["arguments_hash"] == line["approved_arguments_hash"] == "f" * 64
    assert (line["provider_message_id"], line["message_id"]) == ("gm-1", "<audit-1@x>")
    for column in ("created_at", "decided_at", "expires_at", "finished_at"):
        assert line[column].endswith("Z") and "T" in line[column], column
    assert line["decided_at"].startswith(now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
