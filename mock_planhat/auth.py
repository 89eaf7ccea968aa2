"""Which tenant a request belongs to: the API token (Bearer or Basic) or the path's token."""

from __future__ import annotations

import base64

from flask import current_app, request

from .errors import ApiError
from .store import Tenant


def _registry():
    return current_app.extensions["mock_planhat"].registry


_TOKEN = "mock_planhat.auth_token"  # the request's parsed Authorization token, in its environ


def token_from_header(environ: dict | None = None) -> str | None:
    """The token of ``Authorization: Bearer T`` or Basic ``T:``; None when absent. Parsed once
    per request (the tenant hint, the rate limiter and the route all ask), from the request's
    WSGI ``environ`` (default: the current request's)."""
    if environ is None:
        environ = request.environ
    try:
        return environ[_TOKEN]
    except KeyError:
        token = environ[_TOKEN] = _parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        return token


def _parse_authorization(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, _password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user or None
    return None


def api_tenant() -> Tenant:
    """The tenant of a REST request, or 401."""
    environ = request.environ
    if not environ.get("HTTP_AUTHORIZATION"):
        raise ApiError(401, "unauthorized", "Authorization: missing; send 'Authorization: "
                       "Bearer <API token>' or HTTP Basic with the token as user name",
                       "Authorization")
    token = token_from_header(environ)
    tenant = _registry().by_api_token(token) if token else None
    if tenant is None:
        raise ApiError(401, "unauthorized", "Authorization: the API token is not valid",
                       "Authorization")
    return tenant


def tenant_hint(path: str, environ: dict, registry) -> str | None:
    """The tenant token a request (its path and WSGI environ) is for, when it can be told
    without reading the body."""
    parts = path.strip("/").split("/")
    if parts[0] in ("analytics", "dimensiondata") and len(parts) >= 2:
        return parts[2] if parts[1] == "bulk" and len(parts) >= 3 else parts[1]
    token = token_from_header(environ)
    if token is None:
        return None
    tenant = registry.by_either_token(token)
    return tenant.tenant_token if tenant else None
