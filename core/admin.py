"""The admin's base classes, shared by every app's admin: read-only rows, actions that need
their own permissions, JSON shown as data."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.html import format_html


def pretty_json(value, *, decode_nested: bool = False) -> str:
    """Indented JSON in a wrapping <pre>, HTML-escaped: model output is data, never markup.

    `decode_nested`: a string that itself holds a JSON object or array (a tool call's
    arguments in a transcript) is shown decoded, so a reader sees data, not JSON inside JSON.
    Off by default: arguments are shown exactly as they will be sent.
    """
    if decode_nested:
        value = _decode_nested(value)
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return format_html(
        '<pre class="json" style="white-space: pre-wrap; overflow-wrap: anywhere">{}</pre>', text
    )


def _decode_nested(value, depth: int = 0):
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {key: _decode_nested(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_nested(item, depth + 1) for item in value]
    if isinstance(value, str) and value[:1] in ("{", "[") and len(value) < 200_000:
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, dict | list):
            return _decode_nested(decoded, depth + 1)
    return value


class ReadOnly:
    """No add, change or delete: these rows are written by the platform, not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ActionPermissionsEnforced(admin.ModelAdmin):
    """A posted bulk action the user may not run is a 403.

    Django leaves such an action out of the dropdown but answers a POST of it with a silent
    "No action selected" or the list again; a refusal the client can see is clearer and safer.
    """

    # URLs here are webhook URLs, https only: one typed without a scheme gets https (Django 6's
    # default), not Django 5's http, in every admin form, read-only ones included.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            for name in request.POST.getlist("action"):
                if not self.may_run_action(request, name):
                    raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def may_run_action(self, request, name: str) -> bool:
        """False when `name` is an action whose declared permissions the user lacks."""
        found = self.get_action(name)
        if found is None:
            return True  # not an action: Django's own handling ignores it
        required = getattr(found[0], "allowed_permissions", ())
        return all(getattr(self, f"has_{p}_permission")(request) for p in required)


class ReadOnlyAdmin(ReadOnly, ActionPermissionsEnforced):
    pass
