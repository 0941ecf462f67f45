"""Admin for workspaces, keys and jobs: read-only except issuing and revoking API keys."""

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from audit import admin_display as show
from audit.admin_filters import DateRangeFilter
from audit.models import ActionAudit
from audit.services import pending_count
from core.admin import ActionPermissionsEnforced, ReadOnly, ReadOnlyAdmin, pretty_json
from orchestrator.api_keys import SCOPES, issue_api_key, revoke_api_key
from orchestrator.models import (
    ApiKey,
    Job,
    WebhookAttempt,
    WebhookDelivery,
    Workspace,
    WorkspacePolicyChange,
)
from orchestrator.webhooks import WebhookUrlRefused, check_webhook_url, redeliver_webhook
from orchestrator.workspaces import (
    WorkspaceError,
    check_actions,
    normalize_recipient_domains,
    record_policy_change,
)

POLICY_FIELDS = (
    "allowed_actions",
    "approval_required",
    "recipient_domains",
    "rate_limit_per_minute",
    "webhook_url",
)

logger = logging.getLogger(__name__)


class WorkspaceForm(forms.ModelForm):
    """The same rules as configure_workspace: known actions, valid domains, a safe webhook URL."""

    webhook_url = forms.URLField(required=False, max_length=2000, assume_scheme="https")

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "allowed_actions",
            "approval_required",
            "recipient_domains",
            "rate_limit_per_minute",
            "webhook_url",
            "created_at",
        ]

    def clean_allowed_actions(self):
        return self._checked(self.cleaned_data["allowed_actions"], check_actions)

    def clean_approval_required(self):
        return self._checked(self.cleaned_data["approval_required"], check_actions)

    def clean_recipient_domains(self):
        return self._checked(self.cleaned_data["recipient_domains"], normalize_recipient_domains)

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"]
        if url:
            try:
                check_webhook_url(url)
            except WebhookUrlRefused as exc:
                raise forms.ValidationError(exc.message) from None
        return url

    @staticmethod
    def _checked(value, check):
        try:
            checked = check(value or [])
        except WorkspaceError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value if checked is None else checked


@admin.register(Workspace)
class WorkspaceAdmin(ActionPermissionsEnforced):
    form = WorkspaceForm
    list_display = [
        "id",
        "name",
        "allowed_actions",
        "approval_required",
        "rate_limit_per_minute",
        "created_at",
    ]
    search_fields = ["id", "name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its jobs and audit rows are history; they protect it anyway

    def get_readonly_fields(self, request, obj=None):
        # A new id would copy the row.
        return ["id", "created_at", "pending_approvals"] if obj is not None else []

    @admin.display(description="pending approvals")
    def pending_approvals(self, obj: Workspace) -> str:
        url = reverse("admin:audit_pendingapproval_changelist")
        count = pending_count(workspace_id=obj.pk)
        return format_html(
            '<a href="{}?workspace__id__exact={}" id="workspace-pending">{} waiting</a>',
            url,
            obj.pk,
            count,
        )

    def save_model(self, request, obj, form, change) -> None:
        # Every policy change is audited, whether made here or by configure_workspace.
        if change:
            record_policy_change(
                workspace=obj,
                new_values={name: getattr(obj, name) for name in POLICY_FIELDS},
                changed_by=f"admin:{request.user.get_username()}",
            )
        super().save_model(request, obj, form, change)


@admin.register(WorkspacePolicyChange)
class WorkspacePolicyChangeAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "changed_by", "changes", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"


class ApiKeyCreationForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["workspace", "name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Issue a key (its plaintext is shown once, on the page that follows) and revoke keys."""

    list_display = ["prefix", "workspace", "name", "scopes", "created_at", "last_used_at", "state"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["=prefix", "name"]
    fields = ["workspace", "name", "prefix", "scopes", "created_at", "expires_at"]
    readonly_fields = ["last_used_at", "revoked_at"]
    exclude = ["digest"]  # never shown, even to staff
    actions = ["revoke"]
    add_form = ApiKeyCreationForm

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orchestrator.add_apikey")

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("orchestrator.change_apikey")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ApiKeyCreationForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ApiKeyCreationForm.Meta.fields
        return self.fields + self.readonly_fields

    @admin.display(description="state")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "active" if obj.is_active() else "expired"

    def save_form(self, request, form, change):
        # Issued by the service, which saves the row: the admin then logs (who, when) and shows
        # that row. Keys are never changed here (ReadOnly), so this is always an addition.
        issued = issue_api_key(
            workspace=form.cleaned_data["workspace"],
            scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        # For response_add on this same request only: never stored, never sent elsewhere.
        request.issued_api_key = issued
        api_key = issued.api_key
        logger.info(
            "API key %s issued for %s by %s", api_key.prefix, api_key.workspace_id, request.user
        )
        return api_key

    def save_model(self, request, obj, form, change) -> None:
        pass  # save_form's issue_api_key saved the row

    def save_related(self, request, form, formsets, change) -> None:
        pass  # a key has no many-to-many fields and no inlines: nothing more to save

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered, not redirected: the plaintext goes into no message cookie or session.
        response = TemplateResponse(
            request,
            "admin/orchestrator/apikey/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "api_key": obj,
                "plaintext": request.issued_api_key.plaintext,
                "title": "API key created",
            },
        )
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            revoke_api_key(api_key=api_key)
            self.log_change(request, api_key, "Revoked.")
            logger.info("API key %s revoked by %s", api_key.prefix, request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


class ActionAuditInline(ReadOnly, admin.TabularInline):
    """The job's audit rows, each linking to its own page."""

    model = ActionAudit
    fields = [
        "call_key",
        "action",
        "status",
        "reason",
        "hold_reason",
        "decision",
        "decided_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    show_change_link = True
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("arguments", "result")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "workspace", "request_id", "status", "attempts", "created_at"]
    list_display_links = ["short_id"]
    list_filter = ["status", "workspace", ("created_at", DateRangeFilter)]
    list_select_related = ["workspace"]
    search_fields = ["=id", "=client_request_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    show_full_result_count = False
    inlines = [ActionAuditInline]
    exclude = ["messages", "transcript", "tool_calls", "usage", "metadata"]
    readonly_fields = ["messages_pretty", "transcript_pretty", "usage_pretty", "metadata_pretty"]

    @admin.display(description="messages")
    def messages_pretty(self, obj: Job) -> str:
        return pretty_json(obj.messages)

    @admin.display(description="transcript")
    def transcript_pretty(self, obj: Job) -> str:
        # Tool calls carry their arguments as JSON text: shown decoded, as data.
        return pretty_json(obj.transcript, decode_nested=True)

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Job) -> str:
        return show.short_id(obj.pk)

    @admin.display(description="client request id", ordering="client_request_id")
    def request_id(self, obj: Job) -> str:
        return show.clipped(obj.client_request_id, 24)

    class Media:
        css = {"all": ["audit/admin.css"]}

    @admin.display(description="usage")
    def usage_pretty(self, obj: Job) -> str:
        return pretty_json(obj.usage)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: Job) -> str:
        return pretty_json(obj.metadata)


class WebhookAttemptInline(ReadOnly, admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "error", "response_excerpt", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "short_id",
        "workspace",
        "event_type",
        "job_short",
        "status",
        "attempts",
        "created_at",
    ]
    list_display_links = ["short_id"]
    list_filter = ["status", "event_type", ("created_at", DateRangeFilter)]
    list_select_related = ["workspace", "job"]
    search_fields = ["=id", "=job__id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ["payload"]
    readonly_fields = ["payload_json"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        return pretty_json(delivery.payload)

    @admin.display(description="id", ordering="id")
    def short_id(self, delivery: WebhookDelivery) -> str:
        return show.short_id(delivery.pk)

    @admin.display(description="job")
    def job_short(self, delivery: WebhookDelivery) -> str:
        if delivery.job_id is None:
            return "-"
        url = reverse("admin:orchestrator_job_change", args=[delivery.job_id])
        return show.short_id(delivery.job_id, url)

    class Media:
        css = {"all": ["audit/admin.css"]}

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("orchestrator.redeliver_webhook")

    @admin.action(description="Redeliver the selected webhooks now", permissions=["redeliver"])
    def redeliver(self, request, queryset) -> None:
        if not self.has_redeliver_permission(request):
            raise PermissionDenied  # whatever path led here, viewing is not sending
        for delivery in queryset:
            redeliver_webhook(delivery=delivery)
        self.message_user(request, f"{queryset.count()} webhook(s) queued for redelivery.")
