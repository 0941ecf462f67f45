from django import forms
from django.contrib import admin

from actions.connections import set_connection
from actions.models import Connection, Task
from core.admin import ReadOnlyAdmin


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "title", "priority", "due", "assignee", "created_at"]
    list_filter = ["priority", "workspace"]
    list_select_related = ["workspace"]


class ConnectionForm(forms.ModelForm):
    # Plaintext only on the way in: the ciphertext columns are never shown.
    access_token = forms.CharField(widget=forms.PasswordInput, strip=True)
    refresh_token = forms.CharField(widget=forms.PasswordInput, strip=True, required=False)
    expires_in = forms.IntegerField(min_value=1, required=False, help_text="seconds")

    class Meta:
        model = Connection
        fields = ["workspace", "provider"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["workspace", "provider", "expires_at", "updated_at"]
    list_filter = ["provider"]
    list_select_related = ["workspace"]

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        saved = set_connection(
            workspace_id=obj.workspace_id,
            provider=obj.provider,
            access_token=data["access_token"],
            refresh_token=data["refresh_token"],
            expires_in_seconds=data["expires_in"],
        )
        obj.pk = saved.pk
