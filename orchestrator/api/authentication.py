"""Bearer API-key authentication."""

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from orchestrator import log_context
from orchestrator.api_keys import authenticate_api_key
from orchestrator.models import ApiKey, Workspace


@dataclass(frozen=True)
class ApiClient:
    """The authenticated caller: a workspace acting through one of its keys."""

    workspace: Workspace
    api_key: ApiKey
    is_authenticated = True
    is_anonymous = False


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer aio_...`; every failure looks the same to the caller."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # the permission then answers 401 for the missing key
        scheme, _, token = header.partition(" ")
        api_key = authenticate_api_key(token.strip()) if scheme.lower() == "bearer" else None
        if api_key is None:
            raise AuthenticationFailed()
        log_context.bind(workspace=api_key.workspace_id)  # rebound by the next request
        return ApiClient(workspace=api_key.workspace, api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'
