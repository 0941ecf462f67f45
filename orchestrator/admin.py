"""Read-mostly admin for workspaces, keys and jobs (the full audit review is its own issue)."""

from django.contrib import admin

from orchestrator.models import ApiKey, Job, Workspace


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: these rows are written by the platform, not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "allowed_actions", "rate_limit_per_minute", "created_at"]
    search_fields = ["id", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "workspace", "name", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["workspace"]
    exclude = ["digest"]  # never shown, even to staff


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "client_request_id", "status", "attempts", "created_at"]
    list_filter = ["status", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["=id", "=client_request_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
