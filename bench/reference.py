"""The bare baselines our figures are divided by: what a minimal DRF + Celery service does.

The endpoint validates a small body, runs SET NX EX, inserts a row and calls apply_async; the
task makes one model call and one UPDATE. No authentication, scopes, fingerprint or audit.
"""

import openai
from celery import shared_task
from django.conf import settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.redis_client import get_redis
from orchestrator.models import Job

BENCH_WORKSPACE = "ws-bench"


class ReferenceSubmitSerializer(serializers.Serializer):
    client_request_id = serializers.RegexField(r"^[A-Za-z0-9._-]{1,128}\Z")
    prompt = serializers.CharField()


class ReferenceSubmitView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = ReferenceSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        get_redis().set(f"bench:ref:{data['client_request_id']}", "1", nx=True, ex=86400)
        job = Job.objects.create(
            workspace_id=BENCH_WORKSPACE,
            client_request_id=data["client_request_id"],
            request_fingerprint="",
            messages=[{"role": "user", "content": data["prompt"]}],
            model=settings.AI_MODEL,
            max_output_tokens=settings.AI_MAX_OUTPUT_TOKENS,
        )
        reference_job.apply_async(args=[str(job.id)])
        return Response({"id": str(job.id)}, status=202)


# Built at import, as most services build theirs, so the worker has it before its first job:
# ours is built before the worker is ready too (model_client.prepare).
_client = openai.OpenAI(
    api_key=settings.OPENAI_API_KEY or "bench",
    base_url=settings.OPENAI_BASE_URL,
    timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
    max_retries=0,
)


@shared_task
def reference_job(job_id: str) -> None:
    started = timezone.now()
    response = _client.chat.completions.create(
        model=settings.AI_MODEL,
        messages=[{"role": "user", "content": f"reference job {job_id}"}],
        max_tokens=settings.AI_MAX_OUTPUT_TOKENS,
    )
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.SUCCEEDED,
        output_text=response.choices[0].message.content or "",
        started_at=started,
        finished_at=timezone.now(),
    )
