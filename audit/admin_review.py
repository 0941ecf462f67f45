"""The approvals review queue: actions waiting for a human, each read as a message and decided
with one click, through the same functions and permission as the API (actions.approvals)."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Left
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from actions import approvals
from audit import admin_display as show
from audit import services
from audit.admin_filters import DateRangeFilter
from audit.models import ActionAudit, PendingApproval
from core.action_names import ACTION_NAMES
from core.admin import ReadOnlyAdmin, pretty_json
from core.exceptions import OrchestratorError

Decision = ActionAudit.Decision


class ActionFilter(admin.SimpleListFilter):
    """The registered actions: a constant list, not a DISTINCT over the table."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(name, name) for name in ACTION_NAMES]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class HoldReasonFilter(admin.SimpleListFilter):
    """The hold reasons of the rows waiting now: few rows, so a DISTINCT over them is cheap."""

    title = "held because"
    parameter_name = "hold_reason"

    def lookups(self, request, model_admin):
        reasons = (
            model_admin.get_queryset(request)
            .order_by("hold_reason")
            .values_list("hold_reason", flat=True)
            .distinct()
        )
        return [(reason, reason) for reason in reasons if reason]

    def queryset(self, request, queryset):
        return queryset.filter(hold_reason=self.value()) if self.value() else queryset


def may_view_trail(request) -> bool:
    # The queue is a view of the trail: whoever may read action_audit may read it.
    return request.user.has_perm("audit.view_actionaudit")


def may_decide(request) -> bool:
    """The API path's permission for people: viewing the queue is not deciding."""
    return request.user.has_perm("audit.decide_action")


def decide_from_admin(request, row: ActionAudit, *, approve: bool, arguments_hash: str) -> None:
    """Approve or reject one row as `admin:<username>`, through actions.approvals."""
    if not may_decide(request):
        raise PermissionDenied  # whatever path led here, viewing is not deciding
    decided_by = f"admin:{request.user.get_username()}"
    if approve:
        # The hash the reviewer's page showed: an approval of other arguments is refused.
        approvals.approve_action(
            workspace=row.workspace,
            action_id=row.pk,
            arguments_hash=arguments_hash,
            decided_by=decided_by,
        )
    else:
        approvals.reject_action(workspace=row.workspace, action_id=row.pk, decided_by=decided_by)


@admin.register(PendingApproval)
class PendingApprovalAdmin(ReadOnlyAdmin):
    list_display = [
        "short_id",
        "workspace_short",
        "action",
        "recipients_short",
        "subject_short",
        "body_first_lines",
        "hold_reason_short",
        "age",
        "expires",
    ]
    list_display_links = None
    list_filter = ["workspace", ActionFilter, HoldReasonFilter, ("created_at", DateRangeFilter)]
    list_select_related = ["workspace"]
    ordering = ["created_at", "id"]  # the oldest wait longest: first
    list_per_page = 50
    search_fields = ["recipients"]  # the search box; get_search_results says what it matches
    search_help_text = (
        "A recipient (to, cc or bcc), @domain, words of the subject, a job id or a call key."
    )

    class Media:
        css = {"all": ["audit/admin.css"]}

    def has_view_permission(self, request, obj=None) -> bool:
        return may_view_trail(request)

    def has_module_permission(self, request) -> bool:
        return may_view_trail(request)

    def index_count(self, request) -> int:
        """Shown beside the queue's name on the admin index (orchestrator/admin_site.py)."""
        return services.pending_count()

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(status=ActionAudit.Status.PENDING_APPROVAL)
            .annotate(
                subject_text=Left(KeyTextTransform("subject", "arguments"), 200),
                body_start=Left(KeyTextTransform("body", "arguments"), 600),
            )
            .defer("arguments", "result")
        )

    def get_search_results(self, request, queryset, search_term):
        return services.search_trail(queryset, search_term), False

    @admin.display(description="id", ordering="id")
    def short_id(self, row: ActionAudit) -> str:
        url = reverse("admin:audit_pendingapproval_change", args=[row.pk])
        return format_html('<a href="{}">{}</a>', url, row.pk)

    @admin.display(description="workspace", ordering="workspace")
    def workspace_short(self, row: ActionAudit) -> str:
        return show.clipped(row.workspace_id, 14)

    @admin.display(description="recipients")
    def recipients_short(self, row: ActionAudit) -> str:
        return show.clipped(", ".join(row.recipients or []), 40)

    @admin.display(description="subject")
    def subject_short(self, row: ActionAudit) -> str:
        return show.clipped(row.subject_text, 40)

    @admin.display(description="first lines")
    def body_first_lines(self, row: ActionAudit) -> str:
        return show.body_excerpt(row.body_start)

    @admin.display(description="held because", ordering="hold_reason")
    def hold_reason_short(self, row: ActionAudit) -> str:
        return show.clipped(row.hold_reason, 22)

    @admin.display(description="waiting", ordering="created_at")
    def age(self, row: ActionAudit) -> str:
        return show.age(row.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, row: ActionAudit) -> str:
        return show.expires_in(row.expires_at)

    # --- One action, read as a message, with its decision buttons ------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not may_view_trail(request):
            raise PermissionDenied
        key = unquote(object_id)
        row = services.get_action(int(key)) if key.isdigit() and len(key) < 19 else None
        if row is None:
            return HttpResponseRedirect(reverse("admin:audit_pendingapproval_changelist"))
        if request.method == "POST":
            return self.decide_view(request, row)
        if row.status != ActionAudit.Status.PENDING_APPROVAL:
            # Decided or expired meanwhile: its place is the trail now.
            return HttpResponseRedirect(trail_url(row))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Pending approval {row.pk}: {row.action}",
            "row": row,
            "message": show.message(row),
            "arguments": pretty_json(row.arguments),
            "age": show.age(row.created_at),
            "expires": show.expires_in(row.expires_at),
            "may_decide": may_decide(request),
            "trail_url": trail_url(row),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/audit/pendingapproval/review.html", context)

    def decide_view(self, request, row: ActionAudit):
        if not may_decide(request):
            raise PermissionDenied
        choice = request.POST.get("decision")
        if choice not in Decision.values:
            return HttpResponseBadRequest("decision must be approve or reject")
        approve = choice == Decision.APPROVE
        try:
            decide_from_admin(
                request,
                row,
                approve=approve,
                arguments_hash=request.POST.get("arguments_hash", ""),
            )
        except OrchestratorError as exc:
            self.message_user(request, f"Action {row.pk}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        verb = "approved: a worker sends it now" if approve else "rejected: it will never run"
        self.log_change(request, row, f"{choice.capitalize()}d.")
        self.message_user(request, f"Action {row.pk} {verb}.", messages.SUCCESS)
        return HttpResponseRedirect(trail_url(row))


def trail_url(row: ActionAudit) -> str:
    return reverse("admin:audit_actionaudit_change", args=[row.pk])
