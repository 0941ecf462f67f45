from django.contrib import admin

from audit.models import ActionAudit
from orchestrator.admin import ReadOnlyAdmin


@admin.register(ActionAudit)
class ActionAuditAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "action", "status", "reason", "job", "created_at"]
    list_filter = ["status", "action"]
    list_select_related = ["workspace", "job"]
    search_fields = ["=job__id", "=call_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False
