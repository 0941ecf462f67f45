"""Read-mostly admin for workspaces, keys and jobs (the full audit review is its own issue)."""

from django.contrib import admin
from django.db import models

from orchestrator.models import ApiKey, Job, WebhookAttempt, WebhookDelivery, Workspace
from orchestrator.webhooks import redeliver_webhook

# Webhook URLs are https: a URL typed without a scheme gets https, not Django 5's http.
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


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
    exclude = ["webhook_secret"]  # shown once, by configure_workspace --rotate-webhook-secret
    formfield_overrides = HTTPS_URLS
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


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "error", "response_excerpt", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "event_type", "job", "status", "attempts", "created_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["workspace", "job"]
    search_fields = ["=id", "=job__id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ["payload"]
    readonly_fields = ["payload_json"]
    inlines = [WebhookAttemptInline]
    formfield_overrides = HTTPS_URLS
    actions = ["redeliver"]

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        return str(delivery.payload)

    @admin.action(description="Redeliver the selected webhooks now")
    def redeliver(self, request, queryset) -> None:
        for delivery in queryset:
            redeliver_webhook(delivery=delivery)
        self.message_user(request, f"{queryset.count()} webhook(s) queued for redelivery.")
