"""HTTP handlers: each parses its request, calls one service function and renders the result."""

from __future__ import annotations

from starlette.requests import Request

from webcare.access import Actor
from webcare.auth import SESSION_COOKIE
from webcare.errors import CsrfFailed
from webcare.services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def current_actor(request: Request) -> Actor:
    """The logged-in user; a cookie-authenticated change must carry the session's CSRF token."""
    svc = services(request)
    principal = await svc.auth.authenticate(request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE))
    if (principal.session_token is not None and request.method not in SAFE_METHODS
            and not svc.keys.csrf_ok(principal.session_token, request.headers.get("x-csrf-token"))):
        raise CsrfFailed("this change needs the X-CSRF-Token header that came with your login")
    request.state.session_token = principal.session_token
    return principal.actor
