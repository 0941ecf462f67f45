import redis
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.bare.models import Request
from bench.bare.tasks import complete

# One client (and its connection pool) per process, as redis-py recommends.
_redis = redis.Redis.from_url(settings.REDIS_URL)


class SubmitSerializer(serializers.Serializer):
    client_request_id = serializers.CharField(max_length=128)
    prompt = serializers.CharField(max_length=10_000)


class SubmitView(APIView):
    """Validate, reserve the idempotency key, insert, enqueue: the least POST /ai/jobs does."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = f"idempotency:{data['client_request_id']}"
        if not _redis.set(key, "1", nx=True, ex=86_400):
            return Response({"detail": "duplicate request"}, status=status.HTTP_409_CONFLICT)
        row = Request.objects.create(**data)
        complete.apply_async(args=[row.pk, row.prompt])
        return Response({"id": row.pk}, status=status.HTTP_202_ACCEPTED)
