"""Moderating public comments: hide and unhide."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare.api import current_actor, services
from webcare.http import Endpoint, ok
from webcare.moderation import Moderation


async def _set_hidden(request: Request, hidden: bool) -> Response:
    actor = await current_actor(request)
    svc = services(request)
    done = await Moderation(svc.db, svc.connectors).set_hidden(
        actor, request.path_params["id"], request.path_params["message_id"], hidden)
    return ok(done)


async def hide(request: Request) -> Response:
    return await _set_hidden(request, True)


async def unhide(request: Request) -> Response:
    return await _set_hidden(request, False)


M = "/api/conversations/{id:int}/messages/{message_id:int}"
ENDPOINTS = [
    Endpoint("POST", f"{M}/hide", hide, "Hide a public comment on its platform (logged as message.hidden)",
             tag="moderation"),
    Endpoint("POST", f"{M}/unhide", unhide, "Show a hidden comment again (logged as message.unhidden)",
             tag="moderation"),
]
