"""Carrying a rate-limit check from where it happens to the response headers."""

from rest_framework.request import Request

from orchestrator.rate_limits import RateLimit


def remember_rate_limit(request: Request, rate_limit: RateLimit) -> None:
    """Keep the latest check on the request; WorkspaceAPIView puts its headers on."""
    request.rate_limit = rate_limit


def remembered_rate_limit(request: Request) -> RateLimit | None:
    """The latest check remembered for this request, if any."""
    return getattr(request, "rate_limit", None)
