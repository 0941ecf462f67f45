"""The jobs API: validate, call one service, render."""

import uuid

from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import actions_for_job
from orchestrator import services
from orchestrator.api.serializers import JobCreateSerializer, JobSerializer
from orchestrator.models import Job


class JobCollectionView(APIView):
    required_scopes = {"POST": ["jobs:write"]}

    def post(self, request: Request) -> Response:
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = services.submit_job(
            workspace=request.user.workspace,
            api_key=request.user.api_key,
            **serializer.validated_data,
        )
        job = submission.job
        headers = {"Location": f"/ai/jobs/{job.id}"}
        if submission.replayed:
            headers["Idempotent-Replayed"] = "true"
        actions = actions_for_job(job.id) if submission.replayed else []
        return Response(
            JobSerializer(job, context={"actions": actions}).data,
            status=200 if submission.replayed else 202,
            headers=headers,
        )


class JobDetailView(APIView):
    required_scopes = {"GET": ["jobs:read"]}

    def get(self, request: Request, job_id: str) -> Response:
        job = _get_job(request, job_id)
        return Response(JobSerializer(job, context={"actions": actions_for_job(job.id)}).data)


def _get_job(request: Request, job_id: str) -> Job:
    # A malformed id, an unknown id and another workspace's id give the same 404.
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise NotFound() from None
    job = Job.objects.for_workspace(request.user.workspace).filter(pk=pk).first()
    if job is None:
        raise NotFound()
    return job
