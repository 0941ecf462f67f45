"""Scope checks: every view declares the scopes each of its methods needs."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


class InsufficientScope(PermissionDenied):
    default_code = "insufficient_scope"


class HasRequiredScopes(BasePermission):
    """Allow a request only if its key holds every scope the view requires for the method.

    Views declare `required_scopes = {"GET": ["jobs:read"], ...}`. A view that declares none is
    a configuration error, and an empty scope list on a key allows nothing.
    """

    def has_permission(self, request, view) -> bool:
        required_by_method = getattr(view, "required_scopes", None)
        if not required_by_method:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        method = "GET" if request.method == "HEAD" else request.method
        if method == "OPTIONS" or not hasattr(view, method.lower()):
            return True  # DRF answers 405: no view implements it (OPTIONS metadata is off)
        if method not in required_by_method:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no scopes for {method}")
        if request.auth is None:
            return False  # DRF turns this into 401 with the authentication header
        missing = set(required_by_method[method]) - set(request.auth.scopes)
        if missing:
            raise InsufficientScope(
                f"This API key lacks the scope(s): {', '.join(sorted(missing))}."
            )
        return True
