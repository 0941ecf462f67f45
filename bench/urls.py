from django.urls import path

from bench.reference import ReferenceSubmitView
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("bench/reference/jobs", ReferenceSubmitView.as_view()),
]
