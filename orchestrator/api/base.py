"""The base of every API view: bearer key, declared scopes, the workspace's rate limit."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api.authentication import ApiClient, ApiKeyAuthentication
from orchestrator.api.throttling import remember_rate_limit, remembered_rate_limit
from orchestrator.api_keys import KEY_TAG, forget_cached_keys_here
from orchestrator.exceptions import CredentialsInUrl, CredentialsUnconfirmed, RateLimited
from orchestrator.rate_limits import hit_workspace_limit


class WorkspaceAPIView(APIView):
    """Every request of an authenticated workspace counts against its limit, errors included,
    and every response carries the RateLimit-* headers of its check.

    That check also confirms a key served from the process's cache; when it cannot, the request
    is answered again from the key's row, as if it had just arrived.
    """

    # The one home of API-key authentication: no other view confirms cached keys.
    authentication_classes = [ApiKeyAuthentication]
    # Methods whose service counts the request itself (the submit path folds the count into its
    # idempotency round trip); such a request still counts if it fails before that.
    counted_by_service: tuple[str, ...] = ()
    # The caller once authentication has accepted its key (a view serves one request); None
    # before authentication has run, or when it found no key.
    client: ApiClient | None = None

    def initial(self, request: Request, *args, **kwargs) -> None:
        _refuse_credentials_in_url(request)
        super().initial(request, *args, **kwargs)  # authentication, then scopes
        # Unauthenticated here means a method no view serves (the 405 follows): nothing to count.
        if request.method not in self.counted_by_service and self.client is not None:
            self.count_request(request)

    def perform_authentication(self, request: Request) -> None:
        user = request.user  # runs the authenticators once; raises on a refused key
        self.client = user if isinstance(user, ApiClient) else None

    def count_request(self, request: Request) -> None:
        """Count the request against the workspace's limit; 429 over it."""
        rate_limit = hit_workspace_limit(
            workspace=request.user.workspace,
            confirm_generation=request.user.unconfirmed_generation,
        )
        remember_rate_limit(request, rate_limit)
        if not rate_limit.allowed:
            raise RateLimited(rate_limit)

    def handle_exception(self, exc: Exception) -> Response:
        request = self.request
        if isinstance(exc, CredentialsUnconfirmed):
            return self._answer_from_the_key_row(request)
        if getattr(exc, "rate_limit", None) is not None:
            remember_rate_limit(request, exc.rate_limit)
        elif remembered_rate_limit(request) is None and self.client is not None:
            # An error before the count (a bad body, a missing scope) is still a request: a
            # flood of them is a flood. Over the limit, the 429 wins.
            try:
                self.count_request(request)
            except RateLimited as limited:
                exc = limited
            except CredentialsUnconfirmed:
                return self._answer_from_the_key_row(request)
        return super().handle_exception(exc)

    def _answer_from_the_key_row(self, request: Request) -> Response:
        # The cached key may be out of date, and nothing has been counted, reserved or written
        # yet: authenticate from the row and run the request again. A key read from its row
        # needs no confirming, so this happens at most once.
        # The generation moved, or Redis cannot say: no copy this process holds can be trusted.
        forget_cached_keys_here()
        try:
            self._authenticate_from_the_key_row(request)
            self.initial(request, *self.args, **self.kwargs)
            handler = getattr(self, request.method.lower(), self.http_method_not_allowed)
            return handler(request, *self.args, **self.kwargs)
        except Exception as exc:
            return self.handle_exception(exc)

    def _authenticate_from_the_key_row(self, request: Request) -> None:
        # Drop the cached caller first: if the row refuses the key, nothing may act as it (and
        # an unauthenticated failure is not counted against the workspace).
        self.client = None
        request.user, request.auth = None, None  # DRF's UNAUTHENTICATED_USER is None here
        authenticated = ApiKeyAuthentication(use_cache=False).authenticate(request)
        if authenticated is None:  # no Authorization header: cannot follow a cached key
            raise NotAuthenticated()
        request.user, request.auth = authenticated

    def finalize_response(self, request: Request, response: Response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        rate_limit = remembered_rate_limit(request)
        if rate_limit is not None:
            for name, value in rate_limit.headers().items():
                response[name] = value
        return response


CREDENTIAL_PARAMETERS = {"api_key", "apikey", "key", "token", "access_token", "authorization"}


def _refuse_credentials_in_url(request: Request) -> None:
    # URLs end up in proxy and server logs: a key there is as good as leaked, so say so loudly
    # rather than ignore it (and never use it).
    params = request.query_params
    names = {name.lower() for name in params}
    if (
        CREDENTIAL_PARAMETERS & names
        or any(name.startswith(f"{KEY_TAG}_") for name in names)  # a bare ?aio_...
        or any(value.startswith(f"{KEY_TAG}_") for _, values in params.lists() for value in values)
    ):
        raise CredentialsInUrl(
            "API keys go in the Authorization header, never in the URL; "
            "treat a key sent in a URL as leaked and revoke it."
        )
