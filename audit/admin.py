from django.contrib import admin, messages

from actions import approvals
from audit.models import ActionAudit
from orchestrator.admin import ReadOnlyAdmin
from orchestrator.exceptions import OrchestratorError


@admin.register(ActionAudit)
class ActionAuditAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "action", "status", "reason", "job", "created_at"]
    list_filter = ["status", "action"]
    list_select_related = ["workspace", "job"]
    search_fields = ["=job__id", "=call_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected"]

    @admin.action(description="Approve the selected pending actions (their arguments as shown)")
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the selected pending actions")
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool) -> None:
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
