"""The actions API: list a workspace's actions, approve or reject those awaiting a decision."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from actions import approvals
from audit.models import ActionAudit
from orchestrator.api.base import WorkspaceAPIView
from orchestrator.api.schema import RATE_LIMIT_HEADERS, errors

MAX_LISTED = 200


class ActionReviewSerializer(serializers.ModelSerializer):
    """An action as the audit trail holds it: its outcome (`status`, `reason`, `result`), why it
    was held (`hold_reason`, `hold_details`) and the decision on it, each kept apart."""

    job_id = serializers.UUIDField()
    hold_reason = serializers.CharField(
        help_text="Why the policy held it for a human (e.g. `approval_required`, "
        "`recipient_outside_allowed_domains`); empty if it was never held. Never changes."
    )
    hold_details = serializers.ListField(
        child=serializers.CharField(), help_text="The hold's particulars, e.g. the addresses."
    )
    decision = serializers.ChoiceField(
        choices=["", *ActionAudit.Decision.values],
        help_text="`approve` or `reject` once a human decided (see decided_by, decided_at).",
    )
    approved_arguments_hash = serializers.CharField(
        help_text="The arguments_hash the approver named; empty unless approved."
    )
    result = serializers.JSONField(
        help_text="The outcome: the provider's answer once it ran, or what refused it."
    )

    class Meta:
        model = ActionAudit
        fields = [
            "id",
            "job_id",
            "call_key",
            "action",
            "arguments",
            "arguments_hash",
            "status",
            "reason",
            "result",
            "hold_reason",
            "hold_details",
            "expires_at",
            "decision",
            "decided_by",
            "decided_at",
            "approved_arguments_hash",
            "created_at",
            "finished_at",
        ]


class ActionListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ActionAudit.Status.values, required=False)


class ApproveSerializer(serializers.Serializer):
    # The approver names the exact arguments they saw (from GET /ai/actions): arguments that
    # differ cannot ride on their approval.
    arguments_hash = serializers.RegexField(r"^[0-9a-f]{64}\Z")


class ActionListSerializer(serializers.Serializer):
    actions = ActionReviewSerializer(many=True)


class ActionCollectionView(WorkspaceAPIView):
    required_scopes = {"GET": ["actions:approve"]}

    @extend_schema(
        operation_id="list_actions",
        summary="List your workspace's proposed actions, newest first (at most 200)",
        parameters=[ActionListQuerySerializer, *RATE_LIMIT_HEADERS],
        responses={200: ActionListSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = ActionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = approvals.list_actions(
            workspace=request.user.workspace, status=query.validated_data.get("status")
        )
        return Response({"actions": ActionReviewSerializer(rows[:MAX_LISTED], many=True).data})


class ApproveActionView(WorkspaceAPIView):
    required_scopes = {"POST": ["actions:approve"]}

    @extend_schema(
        operation_id="approve_action",
        summary="Approve a pending action, naming the exact arguments you reviewed",
        description="The action then runs through a worker, at most once. Its arguments must "
        "still hash to `arguments_hash` (as listed by GET /ai/actions) and the approval must "
        "not have expired.",
        request=ApproveSerializer,
        parameters=RATE_LIMIT_HEADERS,
        responses={200: ActionReviewSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, action_id: str) -> Response:
        body = ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = approvals.approve_action(
            workspace=request.user.workspace,
            action_id=_action_pk(action_id),
            arguments_hash=body.validated_data["arguments_hash"],
            decided_by=_decided_by(request),
        )
        return Response(ActionReviewSerializer(row).data)


class RejectActionView(WorkspaceAPIView):
    required_scopes = {"POST": ["actions:approve"]}

    @extend_schema(
        operation_id="reject_action",
        summary="Reject a pending action: it never runs",
        request=None,
        parameters=RATE_LIMIT_HEADERS,
        responses={200: ActionReviewSerializer, **errors(404, 409)},
    )
    def post(self, request: Request, action_id: str) -> Response:
        row = approvals.reject_action(
            workspace=request.user.workspace,
            action_id=_action_pk(action_id),
            decided_by=_decided_by(request),
        )
        return Response(ActionReviewSerializer(row).data)


def _action_pk(action_id: str) -> int:
    # A malformed id is the same 404 as an unknown one.
    if not action_id.isdigit() or len(action_id) > 18:
        raise NotFound()
    return int(action_id)


def _decided_by(request: Request) -> str:
    """Who decided: the API key's public prefix (never its secret)."""
    return f"api-key:{request.auth.prefix}"
