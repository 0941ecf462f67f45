"""OpenAPI documentation of the API: the bearer scheme, scopes, errors and headers."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ScopedAutoSchema(AutoSchema):
    """Documents each operation's required scopes (x-required-scopes), read from the view."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        scopes = getattr(self.view, "required_scopes", {}).get(self.method)
        if operation is not None and scopes:
            operation["x-required-scopes"] = scopes
            scope_text = f"Requires the scope(s): `{'`, `'.join(scopes)}`."
            operation["description"] = f"{operation.get('description', '')}\n\n{scope_text}"
        return operation


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "orchestrator.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer aio_<prefix>_<secret>`.",
        }


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.JSONField())


class ErrorSerializer(serializers.Serializer):
    """The one error format."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid body or query parameter (`fields` says which); malformed JSON.",
    401: "Missing, unknown, wrong, revoked or expired key.",
    403: "The key lacks a scope this operation needs.",
    404: "No such job or action in your workspace (another workspace's looks the same).",
    409: "The job already finished, or the action is no longer pending, expired or changed.",
    413: "The body exceeds 256 KiB.",
    415: "The body is not application/json.",
    422: "This client_request_id was used with a different body.",
    429: "Over the workspace's rate limit (or too many wrong keys): see Retry-After.",
}


def errors(*statuses: int) -> dict:
    """Error responses of an operation, always including 401, 403 and 429."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in sorted({401, 403, 429, *statuses})
    }


# Response headers. Not required: a request without any key is refused before it is counted.
RATE_LIMIT_HEADERS = [
    OpenApiParameter(
        name,
        int,
        OpenApiParameter.HEADER,
        response=True,
        required=False,
        description=description,
    )
    for name, description in [
        ("RateLimit-Limit", "Requests a minute the workspace may make."),
        ("RateLimit-Remaining", "Requests left in the current window."),
        ("RateLimit-Reset", "Seconds until a request slot frees."),
    ]
] + [
    OpenApiParameter(
        "Retry-After",
        int,
        OpenApiParameter.HEADER,
        response=[429],
        description="Seconds to wait before retrying.",
    )
]
