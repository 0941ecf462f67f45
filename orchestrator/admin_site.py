"""The project's admin site: Django's, with its login throttled (orchestrator/login_throttle.py).

Installed as the default site by OrchestratorAdminConfig, so `admin.site` and every
`@admin.register` stay as they are.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.client_address import client_address
from orchestrator.login_throttle import begin_login_attempt, forget_login_attempt


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """Refuses to check a password once the address or the username has failed too often."""

    retry_after_seconds = 0

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or self.cleaned_data.get("password") is None:
            return super().clean()  # an incomplete form checks no password: nothing to count
        attempt = begin_login_attempt(
            client_address=client_address(self.request.META), username=username
        )
        if not attempt.allowed:
            self.retry_after_seconds = attempt.retry_after_seconds
            minutes = max(1, round(attempt.retry_after_seconds / 60))
            raise ValidationError(
                "Too many failed login attempts for this account or from this address. "
                f"Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                code="throttled",
            )
        cleaned = super().clean()  # a wrong password raises here and stays counted
        forget_login_attempt(attempt)
        return cleaned


class OrchestratorAdminSite(admin.AdminSite):
    login_form = ThrottledAdminLoginForm
    # The sidebar takes 300 of a laptop's 1366 px from every list; the index and the
    # breadcrumbs lead everywhere it does.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        """Django's list, with a count beside each model whose admin offers `index_count`
        (e.g. "Pending approvals (3)"): what waits for someone is seen from the index."""
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            for entry in app["models"]:
                count = getattr(self.get_model_admin(entry["model"]), "index_count", None)
                if count is not None:
                    entry["name"] = f"{entry['name']} ({count(request)})"
        return app_list

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        # The login page again, with its message, but a status clients and proxies understand.
        if isinstance(form, ThrottledAdminLoginForm) and form.has_error(
            NON_FIELD_ERRORS, "throttled"
        ):
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after_seconds)
        return response
