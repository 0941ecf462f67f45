"""The auditors' view of action_audit: read-only, filtered and searched on indexes only."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from audit import admin_display as show
from audit import services
from audit.admin_filters import DateRangeFilter
from audit.admin_report import report_context
from audit.admin_review import ActionFilter, PendingApprovalAdmin, decide_from_admin
from audit.export import stream_csv
from audit.models import ActionAudit, AuditArchive
from audit.report import BadPeriod, parse_period
from core.admin import ReadOnlyAdmin, pretty_json
from core.exceptions import OrchestratorError

__all__ = ["ActionAuditAdmin", "AuditArchiveAdmin", "PendingApprovalAdmin"]

# Beyond this many matches the list says "more than 10000" instead of counting a million rows.
COUNT_LIMIT = 10_000

# The detail page, grouped by the questions an auditor asks; fields added to the model later
# still show, under "Other" (see get_fieldsets).
FIELDSETS = [
    (
        "Proposed",
        ["id", "workspace", "job_short", "call_key", "action", "created_at", "message"],
    ),
    ("Held for a human", ["hold_reason", "hold_details_list", "expires_at", "arguments_hash"]),
    ("Decision", ["decision", "decided_by", "decided_at", "approved_arguments_hash"]),
    (
        "Outcome",
        ["status", "reason", "started_at", "finished_at", "updated_at", "result_pretty"],
    ),
    ("Arguments as sent to the connector", ["arguments_pretty"]),
]
# Shown through the fields above (pretty, linked) or derived from the arguments.
_SHOWN_OTHERWISE = {"job", "arguments", "result", "hold_details", "recipients", "recipient_domains"}


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
    # Short cells (ids, clipped text with the whole on hover): the list fits 1366 px; the
    # detail page has everything.
    list_display = [
        "id",
        "created_at",
        "workspace_short",
        "action",
        "status",
        "reason_short",
        "hold_and_decision",
        "recipients_short",
        "job_short",
    ]
    list_display_links = ["id"]
    list_filter = [
        "workspace",
        ActionFilter,
        "status",
        ReasonFilter,
        "decision",
        ("created_at", DateRangeFilter),
    ]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    search_fields = ["recipients"]  # the search box; get_search_results says what it matches
    search_help_text = (
        "A recipient (to, cc or bcc), @domain, words of the subject, a job id or a call key."
    )

    class Media:
        css = {"all": ["audit/admin.css"]}

    def get_queryset(self, request):
        # The list shows the recipients only; arguments and results can be 100s of KB each.
        return super().get_queryset(request).defer("arguments", "result")

    def get_object(self, request, object_id, from_field=None):
        # The detail page shows arguments and result, which the list defers.
        try:
            return ActionAudit.objects.select_related("workspace", "job").get(pk=object_id)
        except (ActionAudit.DoesNotExist, ValidationError, ValueError):
            return None

    def get_search_results(self, request, queryset, search_term):
        """Exactly one indexed lookup per kind of term; never a scan with LIKE."""
        return services.search_trail(queryset, search_term), False

    def get_fieldsets(self, request, obj=None):
        listed = {name for _, names in FIELDSETS for name in names}
        others = [
            f.name
            for f in ActionAudit._meta.concrete_fields
            if f.name not in listed and f.name not in _SHOWN_OTHERWISE
        ]
        groups = [(title, {"fields": names}) for title, names in FIELDSETS]
        return groups + ([("Other", {"fields": others})] if others else [])

    def get_readonly_fields(self, request, obj=None):
        return [name for _, group in self.get_fieldsets(request, obj) for name in group["fields"]]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = self.get_object(request, object_id)
        context = {**(extra_context or {})}
        if row is not None and row.status == ActionAudit.Status.PENDING_APPROVAL:
            context["review_url"] = reverse("admin:audit_pendingapproval_change", args=[row.pk])
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="message")
    def message(self, obj: ActionAudit) -> str:
        return show.message(obj)

    @admin.display(description="arguments")
    def arguments_pretty(self, obj: ActionAudit) -> str:
        return pretty_json(obj.arguments)

    @admin.display(description="result")
    def result_pretty(self, obj: ActionAudit) -> str:
        return pretty_json(obj.result)

    @admin.display(description="hold details")
    def hold_details_list(self, obj: ActionAudit) -> str:
        return pretty_json(obj.hold_details) if obj.hold_details else "-"

    @admin.display(description="workspace", ordering="workspace")
    def workspace_short(self, obj: ActionAudit) -> str:
        return show.clipped(obj.workspace_id, 12)

    @admin.display(description="reason", ordering="reason")
    def reason_short(self, obj: ActionAudit) -> str:
        return show.clipped(obj.reason, 18)

    @admin.display(description="held / decided")
    def hold_and_decision(self, obj: ActionAudit) -> str:
        """Why it waited and who decided, one above the other; both in full on the detail page."""
        decision = f"{obj.decision} by {obj.decided_by}" if obj.decision else ""
        return format_html(
            "{}<br>{}", show.clipped(obj.hold_reason, 18), show.clipped(decision, 18)
        )

    @admin.display(description="recipients")
    def recipients_short(self, obj: ActionAudit) -> str:
        return show.clipped(", ".join(obj.recipients or []), 28)

    @admin.display(description="job")
    def job_short(self, obj: ActionAudit) -> str:
        return show.job_link(obj)

    # --- CSV export of the filtered list, and the report -------------------------------------

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv_view)
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("export/", export, name="audit_actionaudit_export"),
            path("report/", report, name="audit_actionaudit_report"),
            *super().get_urls(),
        ]

    def report_view(self, request):
        """`manage.py audit_report --since <period>` as a page whose every count links to the
        rows it counts."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = request.GET.get("since", "7d")[:10]
        try:
            report = report_context(period=parse_period(since))
            error = ""
        except BadPeriod as exc:
            report, error = None, str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Audit report",
            "since": since,
            "periods": ["24h", "7d", "30d"],
            "report": report,
            "error": error,
            "media": self.media,
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
        # The same path as the review page: one conditional UPDATE per row, so a row another
        # reviewer decided meanwhile is reported, not decided twice.
        for row in queryset.select_related("workspace"):
            try:
                decide_from_admin(request, row, approve=approve, arguments_hash=row.arguments_hash)
            except OrchestratorError as exc:
                self.message_user(request, f"action {row.pk}: {exc.message}", messages.WARNING)
            else:
                verb = "approved" if approve else "rejected"
                self.message_user(request, f"action {row.pk} {verb}", messages.SUCCESS)


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAdmin):
    """The files archive_audit wrote; pending ones (no completed_at) wait for a rerun."""

    list_display = ["file", "directory", "rows", "first_id", "last_id", "cutoff", "completed_at"]
    list_filter = [("cutoff", DateRangeFilter)]
    ordering = ["-written_at"]
