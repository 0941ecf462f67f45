"""Read-mostly admin for workspaces, keys and jobs (the full audit review is its own issue)."""

from django import forms
from django.contrib import admin

from orchestrator.models import ApiKey, Job, Workspace, WorkspacePolicyChange
from orchestrator.workspaces import (
    WorkspaceError,
    check_actions,
    normalize_recipient_domains,
    record_policy_change,
)

POLICY_FIELDS = ("allowed_actions", "approval_required", "recipient_domains")


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: these rows are written by the platform, not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WorkspaceForm(forms.ModelForm):
    """The same rules as configure_workspace: known actions, valid and normalized domains."""

    class Meta:
        model = Workspace
        fields = ["id", "name", "allowed_actions", "approval_required", "recipient_domains",
                  "created_at"]  # fmt: skip

    def clean_allowed_actions(self):
        return self._checked(self.cleaned_data["allowed_actions"], check_actions)

    def clean_approval_required(self):
        return self._checked(self.cleaned_data["approval_required"], check_actions)

    def clean_recipient_domains(self):
        return self._checked(self.cleaned_data["recipient_domains"], normalize_recipient_domains)

    @staticmethod
    def _checked(value, check):
        try:
            checked = check(value or [])
        except WorkspaceError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value if checked is None else checked


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    list_display = ["id", "name", "allowed_actions", "approval_required", "created_at"]
    search_fields = ["id", "name"]

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
