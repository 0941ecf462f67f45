"""Admin for workspaces, keys and jobs: read-only except issuing and revoking API keys."""

import json
import logging

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from actions.names import ACTION_NAMES
from audit.models import ActionAudit
from orchestrator.api_keys import SCOPES, issue_api_key, revoke_api_key
from orchestrator.models import ApiKey, Job, Workspace

logger = logging.getLogger(__name__)


def pretty_json(value) -> str:
    """Indented JSON in a <pre>, HTML-escaped: model output is data, never markup."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: these rows are written by the platform, not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["id", "name", "allowed_actions"]

    def clean_allowed_actions(self):
        actions = self.cleaned_data["allowed_actions"]
        unknown = sorted(set(actions or []) - set(ACTION_NAMES))
        if unknown:
            raise forms.ValidationError(f"unknown actions {unknown}; known: {list(ACTION_NAMES)}")
        return actions


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    list_display = ["id", "name", "allowed_actions", "created_at"]
    search_fields = ["id", "name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its jobs and audit rows are history; they protect it anyway

    def get_readonly_fields(self, request, obj=None):
        return ["id", "created_at"] if obj is not None else []  # a new id would copy the row


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

    def save_model(self, request, obj, form, change) -> None:
        issued = issue_api_key(
            workspace=form.cleaned_data["workspace"],
            scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        # The admin logs the addition (who, when) against `obj`: make it the issued row.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(issued.api_key, field.attname))
        obj._state.adding = False
        request._issued_plaintext = issued.plaintext
        logger.info("API key %s issued for %s by %s", obj.prefix, obj.workspace_id, request.user)

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered, not redirected: the plaintext goes into no message cookie or session.
        response = TemplateResponse(
            request,
            "admin/orchestrator/apikey/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "api_key": obj,
                "plaintext": request._issued_plaintext,
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


class ActionAuditInline(admin.TabularInline):
    """The job's audit rows, each linking to its own page."""

    model = ActionAudit
    fields = ["call_key", "action", "status", "reason", "created_at", "finished_at"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("arguments", "result")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "client_request_id", "status", "attempts", "created_at"]
    list_filter = ["status", "workspace"]
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
        return pretty_json(obj.transcript)

    @admin.display(description="usage")
    def usage_pretty(self, obj: Job) -> str:
        return pretty_json(obj.usage)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: Job) -> str:
        return pretty_json(obj.metadata)
