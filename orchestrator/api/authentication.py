"""Bearer API-key authentication."""

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from core import log_context
from core.client_address import client_address
from orchestrator.api.throttling import remember_rate_limit
from orchestrator.api_keys import authenticate_api_key
from orchestrator.exceptions import RateLimited
from orchestrator.models import ApiKey, Workspace
from orchestrator.rate_limits import hit_auth_failure_limit


@dataclass(frozen=True)
class ApiClient:
    """The authenticated caller: a workspace acting through one of its keys."""

    workspace: Workspace
    api_key: ApiKey
    # Set when the key came from the process's cache: its rate-limit check must confirm it.
    unconfirmed_generation: str | None = None
    is_authenticated = True
    is_anonymous = False


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer aio_...`; every failure looks the same to the caller.

    Only for WorkspaceAPIView, whose rate-limit check confirms a cached key (api_keys.py).
    """

    def __init__(self, *, use_cache: bool = True) -> None:
        self.use_cache = use_cache

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # the permission then answers 401 for the missing key
        scheme, _, token = header.partition(" ")
        authenticated = None
        if scheme.lower() == "bearer":
            authenticated = authenticate_api_key(token.strip(), use_cache=self.use_cache)
        if authenticated is None:
            _count_failure(request)
            raise AuthenticationFailed()
        api_key = authenticated.api_key
        log_context.bind(workspace=api_key.workspace_id)  # rebound by the next request
        client = ApiClient(
            workspace=api_key.workspace,
            api_key=api_key,
            unconfirmed_generation=authenticated.unconfirmed_generation,
        )
        return client, api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'


def _count_failure(request) -> None:
    """Count a wrong key against its client address; past the limit, answer 429, not 401."""
    rate_limit = hit_auth_failure_limit(client_address=client_address(request.META))
    remember_rate_limit(request, rate_limit)
    if not rate_limit.allowed:
        raise RateLimited(
            rate_limit, "Too many failed authentications from this address; retry later."
        )
