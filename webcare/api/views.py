"""The inbox's views with their counts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare.api import current_actor, services
from webcare.http import Endpoint, ok, query_int
from webcare.views import views


async def list_views(request: Request) -> Response:
    actor = await current_actor(request)
    limit = query_int(request, "limit", 50)
    return ok(await views(services(request).db, actor, first=request.query_params.get("first") or None, limit=limit))


ENDPOINTS = [
    Endpoint("GET", "/api/views", list_views,
             "The inbox's views (all open, mine, escalated to me, my department, answered, closed, one per account): "
             "each {key, filter, count}, where filter is the query of GET /api/conversations that lists it; and "
             "last_seq, the event log's head before the counts, to follow /api/live from; with first=<key> also "
             "that view's first page of the queue ({key, items, next_cursor}; limit as the queue's)"),
]
