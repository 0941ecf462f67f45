from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orchestrator import health

urlpatterns = [
    path("", include("orchestrator.api.urls")),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "orchestrator.api.errors.bad_request"
handler403 = "orchestrator.api.errors.forbidden"
handler404 = "orchestrator.api.errors.not_found"
handler500 = "orchestrator.api.errors.server_error"
