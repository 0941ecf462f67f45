from django.urls import path

from orchestrator.api import actions, views

urlpatterns = [
    path("ai/jobs", views.JobCollectionView.as_view(), name="jobs"),
    path("ai/jobs/<str:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("ai/actions", actions.ActionCollectionView.as_view(), name="actions"),
    path(
        "ai/actions/<str:action_id>/approve",
        actions.ApproveActionView.as_view(),
        name="action-approve",
    ),
    path(
        "ai/actions/<str:action_id>/reject",
        actions.RejectActionView.as_view(),
        name="action-reject",
    ),
    path("ai/jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
]
