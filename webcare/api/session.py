"""Logging in and out, and who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare.api import current_actor, services
from webcare.auth import SESSION_COOKIE
from webcare.http import Endpoint, ok, parse
from webcare.schemas import LoginIn


async def login(request: Request) -> Response:
    svc = services(request)
    body = await parse(request, LoginIn)
    done = await svc.auth.login(body.email, body.password)
    response = ok({"user": done.actor.as_json(), "csrf_token": done.csrf_token})
    response.set_cookie(SESSION_COOKIE, done.cookie, max_age=svc.settings.session_max_age_seconds, httponly=True,
                        samesite="lax", secure=svc.settings.secure_cookies, path="/")
    return response


async def logout(request: Request) -> Response:
    await current_actor(request)
    token = request.state.session_token
    if token is not None:
        await services(request).auth.logout(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: Request) -> Response:
    return ok((await current_actor(request)).as_json())


async def csrf(request: Request) -> Response:
    # A reloaded page has the cookie but not the token its changes must carry; other sites cannot read this.
    await current_actor(request)
    token = request.state.session_token
    return ok({"csrf_token": services(request).keys.csrf_token(token) if token is not None else None})


ENDPOINTS = [
    Endpoint("POST", "/api/session", login, "Log in: answers the user and the CSRF token, sets the session cookie",
             LoginIn, tag="session", auth=False),
    Endpoint("DELETE", "/api/session", logout, "Log out", tag="session"),
    Endpoint("GET", "/api/me", me, "The current user", tag="session"),
    Endpoint("GET", "/api/session/csrf", csrf,
             "The CSRF token of the cookie's session, for a page that was reloaded (null with a bearer token)",
             tag="session"),
]
