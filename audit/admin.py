"""The auditors' view of action_audit: read-only, filtered and searched on indexes only."""

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models.fields.json import KeyTransform
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from actions import approvals
from audit import services
from audit.export import stream_csv
from audit.models import ActionAudit, AuditArchive
from audit.report import BadPeriod, build_report, parse_period, render_text
from core.action_names import ACTION_NAMES
from core.admin import ReadOnlyAdmin, pretty_json
from core.exceptions import OrchestratorError

# Beyond this many matches the list says "more than 10000" instead of counting a million rows.
COUNT_LIMIT = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT + 1 rows, so the page of a huge table costs no full count."""

    limit = COUNT_LIMIT

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.limit + 1].count()

    @property
    def capped(self) -> bool:
        """True when there are more matches than were counted."""
        return self.count > self.limit


class ActionFilter(admin.SimpleListFilter):
    """The registered actions: a constant list, not a DISTINCT over the table."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(name, name) for name in ACTION_NAMES]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ReasonFilter(admin.SimpleListFilter):
    """The reasons present in the trail, found by index hops (see distinct_reasons)."""

    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(reason, reason) for reason in services.distinct_reasons()]

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


@admin.register(ActionAudit)
class ActionAuditAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "workspace",
        "action",
        "status",
        "reason",
        "recipients",
        "job_link",
    ]
    list_display_links = ["id"]
    list_filter = ["workspace", ActionFilter, "status", ReasonFilter, "created_at"]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    # The search box takes one of: a job id, a call key, a recipient address (see below).
    search_fields = ["job__id", "call_key", "arguments"]
    search_help_text = "A job id, a call key (e.g. 1.0) or a recipient address (exact)."

    def get_queryset(self, request):
        # The list shows the recipients only; arguments and results can be 100s of KB each.
        return (
            super()
            .get_queryset(request)
            .annotate(recipient_list=KeyTransform("to", "arguments"))
            .defer("arguments", "result")
        )

    def get_object(self, request, object_id, from_field=None):
        # The detail page shows arguments and result, which the list defers.
        try:
            return ActionAudit.objects.select_related("workspace", "job").get(pk=object_id)
        except (ActionAudit.DoesNotExist, ValidationError, ValueError):
            return None

    def get_search_results(self, request, queryset, search_term):
        """Exactly one indexed lookup per kind of term; never a scan with LIKE."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(job_id=uuid.UUID(term)), False
        except ValueError:
            pass
        if "@" in term:
            return queryset.filter(arguments__to__contains=[term]), False
        return queryset.filter(call_key=term), False

    def get_fields(self, request, obj=None):
        # Every column, so fields added later (approval) show up without a change here.
        names = [f.name for f in ActionAudit._meta.concrete_fields]
        return [
            {"arguments": "arguments_pretty", "result": "result_pretty"}.get(n, n) for n in names
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="arguments")
    def arguments_pretty(self, obj: ActionAudit) -> str:
        return pretty_json(obj.arguments)

    @admin.display(description="result")
    def result_pretty(self, obj: ActionAudit) -> str:
        return pretty_json(obj.result)

    @admin.display(description="recipients")
    def recipients(self, obj: ActionAudit) -> str:
        to = obj.recipient_list
        return ", ".join(str(a) for a in to) if isinstance(to, list) else ""

    @admin.display(description="job")
    def job_link(self, obj: ActionAudit) -> str:
        url = reverse("admin:orchestrator_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job_id)

    # --- CSV export of the filtered list ------------------------------------------------------

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv_view)
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("export/", export, name="audit_actionaudit_export"),
            path("report/", report, name="audit_actionaudit_report"),
            *super().get_urls(),
        ]

    def report_view(self, request):
        """The text of `manage.py audit_report --since <period>`, for auditors in the admin."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = request.GET.get("since", "7d")
        try:
            text = render_text(build_report(period=parse_period(since)))
        except BadPeriod as exc:
            text = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Audit report",
            "since": since,
            "periods": ["24h", "7d", "30d"],
            "report_text": text,
        }
        return TemplateResponse(request, "admin/audit/actionaudit/report.html", context)

    def export_csv_view(self, request):
        """The list as filtered and searched on screen, streamed as CSV, formulas neutralised."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except admin.options.IncorrectLookupParameters:
            return HttpResponseBadRequest("invalid filter")
        rows = changelist.queryset.select_related(None).defer(None).iterator(chunk_size=2000)
        response = StreamingHttpResponse(stream_csv(rows), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="action_audit.csv"'
        return response

    actions = ["approve_selected", "reject_selected"]

    def get_actions(self, request):
        # Decisions are offered on the pending list only; the trail itself has no controls.
        if request.GET.get("status__exact") != ActionAudit.Status.PENDING_APPROVAL:
            return {}
        return super().get_actions(request)

    def has_decide_permission(self, request) -> bool:
        # Its own permission: view_actionaudit lets an auditor read the trail, not decide.
        return request.user.has_perm("audit.decide_action")

    @admin.action(
        description="Approve the selected pending actions (their arguments as shown)",
        permissions=["decide"],
    )
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the selected pending actions", permissions=["decide"])
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool) -> None:
        if not self.has_decide_permission(request):
            raise PermissionDenied  # whatever path led here, viewing is not deciding
        # The same services as the API: one conditional UPDATE per row, so a row another
        # reviewer decided meanwhile is reported, not decided twice.
        decided_by = f"admin:{request.user.get_username()}"
        for row in queryset.select_related("workspace"):
            try:
                if approve:
                    approvals.approve_action(
                        workspace=row.workspace,
                        action_id=row.pk,
                        arguments_hash=row.arguments_hash,
                        decided_by=decided_by,
                    )
                else:
                    approvals.reject_action(
                        workspace=row.workspace, action_id=row.pk, decided_by=decided_by
                    )
            except OrchestratorError as exc:
                self.message_user(request, f"action {row.pk}: {exc.message}", messages.WARNING)
            else:
                verb = "approved" if approve else "rejected"
                self.message_user(request, f"action {row.pk} {verb}", messages.SUCCESS)


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAdmin):
    """The files archive_audit wrote; pending ones (no completed_at) wait for a rerun."""

    list_display = ["file", "directory", "rows", "first_id", "last_id", "cutoff", "completed_at"]
    ordering = ["-written_at"]
