from django.urls import path

from orchestrator.api import views

urlpatterns = [
    path("ai/jobs", views.JobCollectionView.as_view(), name="jobs"),
    path("ai/jobs/<str:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("ai/jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
]
