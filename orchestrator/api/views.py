"""The jobs API: validate, call one service, render."""

import uuid

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import actions_for_job
from orchestrator import job_queries, services
from orchestrator.api.base import WorkspaceAPIView
from orchestrator.api.schema import RATE_LIMIT_HEADERS, errors
from orchestrator.api.serializers import (
    JobCreateSerializer,
    JobListQuerySerializer,
    JobPageSerializer,
    JobSerializer,
)
from orchestrator.api.throttling import remember_rate_limit
from orchestrator.cancellation import cancel_job
from orchestrator.models import Job

SUBMIT_HEADERS = [
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[200, 202]),
    OpenApiParameter(
        "Idempotent-Replayed",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description="`true` when the answer is the original job of a replayed request.",
    ),
]


class JobCollectionView(WorkspaceAPIView):
    required_scopes = {"GET": ["jobs:read"], "POST": ["jobs:write"]}
    counted_by_service = ("POST",)

    @extend_schema(
        operation_id="list_jobs",
        summary="List your jobs, newest first",
        parameters=[JobListQuerySerializer, *RATE_LIMIT_HEADERS],
        responses={200: JobPageSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        page = job_queries.list_jobs(
            workspace=request.user.workspace, statuses=params.pop("status", None), **params
        )
        return Response(JobPageSerializer(page).data)

    @extend_schema(
        operation_id="submit_job",
        summary="Submit a job",
        request=JobCreateSerializer,
        parameters=[*RATE_LIMIT_HEADERS, *SUBMIT_HEADERS],
        responses={
            202: OpenApiResponse(JobSerializer, description="Accepted and queued."),
            200: OpenApiResponse(JobSerializer, description="A replay: the original job."),
            **errors(400, 413, 415, 422),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = services.submit_job(
            workspace=request.user.workspace,
            api_key=request.user.api_key,
            confirm_generation=request.user.unconfirmed_generation,
            **serializer.validated_data,
        )
        remember_rate_limit(request, submission.rate_limit)
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


class JobDetailView(WorkspaceAPIView):
    required_scopes = {"GET": ["jobs:read"]}

    @extend_schema(
        operation_id="get_job",
        summary="Get a job with its output and actions",
        parameters=RATE_LIMIT_HEADERS,
        responses={200: JobSerializer, **errors(404)},
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = _get_job(request, job_id)
        return Response(JobSerializer(job, context={"actions": actions_for_job(job.id)}).data)


class JobCancelView(WorkspaceAPIView):
    required_scopes = {"POST": ["jobs:write"]}

    @extend_schema(
        operation_id="cancel_job",
        summary="Cancel a queued or running job",
        description="Idempotent: cancelling a cancelled job answers the same. A running job "
        "stops at its next step, before any further model call or action.",
        request=None,
        parameters=RATE_LIMIT_HEADERS,
        responses={200: JobSerializer, **errors(404, 409)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = cancel_job(job=_get_job(request, job_id))
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
