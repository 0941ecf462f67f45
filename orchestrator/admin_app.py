"""Django's admin app with the project's site (a throttled login) as `admin.site`."""

from django.contrib.admin.apps import AdminConfig


class OrchestratorAdminConfig(AdminConfig):
    default_site = "orchestrator.admin_site.OrchestratorAdminSite"
