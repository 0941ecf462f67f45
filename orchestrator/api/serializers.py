"""Input validation and output shapes of the jobs API."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.action_names import ACTION_NAMES
from orchestrator.job_queries import MAX_PAGE_SIZE
from orchestrator.models import Job

MAX_MESSAGES = 200
MAX_METADATA_KEYS = 50


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(trim_whitespace=False)


class JobCreateSerializer(serializers.Serializer):
    # No trimming: "req-1 " must not silently become another request's idempotency key.
    client_request_id = serializers.RegexField(
        r"^[A-Za-z0-9._-]{1,128}\Z", max_length=128, trim_whitespace=False
    )
    prompt = serializers.CharField(required=False, trim_whitespace=False)
    messages = MessageSerializer(
        many=True, required=False, allow_empty=False, max_length=MAX_MESSAGES
    )
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=ACTION_NAMES), required=False, max_length=10
    )
    model = serializers.CharField(required=False, max_length=100)
    max_output_tokens = serializers.IntegerField(required=False, min_value=1)
    metadata = serializers.DictField(required=False)
    webhook_url = serializers.URLField(required=False, max_length=2000)

    def validate_max_output_tokens(self, value: int) -> int:
        if value > settings.AI_MAX_OUTPUT_TOKENS:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.AI_MAX_OUTPUT_TOKENS}."
            )
        return value

    def validate_metadata(self, value: dict) -> dict:
        if len(value) > MAX_METADATA_KEYS:
            raise serializers.ValidationError(f"At most {MAX_METADATA_KEYS} keys.")
        # NUL, which jsonb cannot store, never gets this far: the parser refuses it anywhere.
        return value

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # A misspelt field (max_tokens, action) silently ignored would surprise the client.
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        has_prompt, has_messages = "prompt" in attrs, "messages" in attrs
        if has_prompt == has_messages:
            raise serializers.ValidationError(
                {"prompt": ["Give exactly one of prompt or messages."]}
            )
        if has_prompt:
            attrs["messages"] = [{"role": "user", "content": attrs.pop("prompt")}]
        else:
            attrs["messages"] = [dict(message) for message in attrs["messages"]]
        if "actions" in attrs:
            attrs["actions"] = sorted(set(attrs["actions"]))
        return attrs


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ActionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    call_key = serializers.CharField()
    action = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    result = serializers.JSONField()


class JobSerializer(serializers.Serializer):
    """A job: what was asked, its state, its output and its actions."""

    # The declared fields describe the shape (the OpenAPI schema reads them); to_representation
    # builds it directly, because DRF's per-field copies and lookups cost half a millisecond on
    # every submit. tests/orchestrator/test_api_jobs.py holds the two together.
    id = serializers.UUIDField()
    client_request_id = serializers.CharField(max_length=128)
    status = serializers.ChoiceField(choices=Job.Status.choices)
    model = serializers.CharField(max_length=100)
    max_output_tokens = serializers.IntegerField()
    allowed_actions = serializers.ListField(child=serializers.CharField())
    metadata = serializers.JSONField()
    output_text = serializers.CharField()
    tool_calls = serializers.JSONField()
    usage = serializers.JSONField()
    error = JobErrorSerializer(allow_null=True)
    attempts = serializers.IntegerField()
    actions = ActionSerializer(many=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    # A plain string: "" when the job has none (a URI format would refuse the empty string).
    webhook_url = serializers.CharField()

    def to_representation(self, job: Job) -> dict:
        actions = self.context.get("actions")
        return {
            "id": str(job.id),
            "client_request_id": job.client_request_id,
            "status": job.status,
            "model": job.model,
            "max_output_tokens": job.max_output_tokens,
            "allowed_actions": list(job.allowed_actions),
            "metadata": job.metadata,
            "output_text": job.output_text,
            "tool_calls": job.tool_calls,
            "usage": job.usage,
            "error": job_error(job),
            "attempts": job.attempts,
            # A new job has none: skip building a list serializer on every submit.
            "actions": ActionSerializer(actions, many=True).data if actions else [],
            "created_at": _timestamp(job.created_at),
            "started_at": _timestamp(job.started_at),
            "finished_at": _timestamp(job.finished_at),
            "cancel_requested_at": _timestamp(job.cancel_requested_at),
            "webhook_url": job.webhook_url,
        }


def job_error(job: Job) -> dict | None:
    """A failed job's error as the API shows it; None without one."""
    if not job.error_code:
        return None
    return {"code": job.error_code, "message": job.error_message}


_TIMESTAMP = serializers.DateTimeField()  # DRF's own format: ISO 8601, UTC as Z


def _timestamp(value) -> str | None:
    return None if value is None else _TIMESTAMP.to_representation(value)


class JobListQuerySerializer(serializers.Serializer):
    """Query parameters of GET /ai/jobs; an unknown one is refused like an unknown field."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=20)
    cursor = serializers.CharField(required=False, max_length=200)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=Job.Status.choices), required=False
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    client_request_id = serializers.CharField(required=False, max_length=128)

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown parameter."] for name in unknown})
        return super().to_internal_value(data)


class JobSummarySerializer(serializers.ModelSerializer):
    """A job in a listing: its state, not its conversation (GET /ai/jobs/{id} has that)."""

    error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "client_request_id",
            "status",
            "model",
            "metadata",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "cancel_requested_at",
        ]

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: Job) -> dict | None:
        return job_error(job)


class JobPageSerializer(serializers.Serializer):
    results = JobSummarySerializer(many=True, source="jobs")
    next_cursor = serializers.CharField(allow_null=True)
