"""The composition root: ``create_app(settings)`` builds everything; the lifespan starts and stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute

from webcare import __version__
from webcare.api import admin, conversations, live, moderation, session, views, webhooks
from webcare.api import assist as assist_api
from webcare.api import metrics as metrics_api
from webcare.api import sla as sla_api
from webcare.broker import broker_for
from webcare.demo import Demo
from webcare.frontend import frontend_routes
from webcare.http import JSON, Endpoint, endpoints_routes, exception_handlers, ok, openapi
from webcare.hub import Hub
from webcare.services import Services
from webcare.settings import Settings
from webcare.workers import Workers

log = logging.getLogger(__name__)

ENDPOINTS: list[Endpoint] = [*session.ENDPOINTS, *admin.ENDPOINTS, *conversations.ENDPOINTS, *views.ENDPOINTS,
                             *moderation.ENDPOINTS]

ENDPOINTS += [*metrics_api.ENDPOINTS, *sla_api.ENDPOINTS]
ENDPOINTS += assist_api.ENDPOINTS


async def healthz(request: Request) -> Response:
    return ok({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        await asyncio.wait_for(services.db.ping(), timeout=5)
    except Exception as e:
        return ok({"status": "unavailable", "error": {"code": "database_unavailable", "message": str(e)[:200]}}, 503)
    return ok({"status": "ok"})


LIVE_SPEC = {"get": {
    "summary": "The live stream: a WebSocket upgrade that replays the events after `after`, then pushes each "
               "new one as it commits, and carries presence (see webcare/api/live.py)",
    "tags": ["live"], "security": [{"bearer": []}, {"cookie": []}],
    "parameters": [{"name": "after", "in": "query", "required": False, "schema": {"type": "integer"}}],
    "responses": {"101": {"description": "switching to the WebSocket protocol"},
                  "401": {"description": "not logged in"}},
}}


def create_app(settings: Settings, *, demo: Demo | None = None, workers: bool = True) -> Starlette:
    """The app; ``workers`` runs connector polling and reply delivery in this process too."""
    services = Services.build(settings)
    broker = broker_for(settings)
    hub = Hub(services.db, broker, poll_seconds=settings.live_poll_seconds, buffer_size=settings.live_buffer_size)
    # Publish after commit: the database tells the broker the last number of every commit with events.
    services.db.add_commit_listener(broker.published)
    spec = openapi(ENDPOINTS, __version__)
    spec["paths"]["/api/live"] = LIVE_SPEC
    spec["paths"].update(webhooks.SPEC)

    async def openapi_json(request: Request) -> Response:
        return JSON(spec)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        background = Workers(services, connectors=workers)
        background.start()
        tasks: list[asyncio.Task[None]] = []
        if demo is not None:
            tasks.append(asyncio.create_task(demo.run(services.db), name="demo-public"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await background.stop()
            await services.connectors.aclose()
            await hub.stop()
            await services.db.dispose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *endpoints_routes(ENDPOINTS),
        WebSocketRoute("/api/live", live.LiveStream()),
        *webhooks.ROUTES,
    ]
    if demo is not None:
        # The demo's accounts talk to a fake X and Mastodon served by this same process.
        routes.append(Mount("/_fake", demo.fake_app()))
    # Last, so that every API route takes precedence over the pages.
    routes.extend(frontend_routes())
    app = Starlette(routes=routes, exception_handlers=exception_handlers(), lifespan=lifespan)
    app.state.services = services
    app.state.settings = settings
    app.state.hub = hub
    return app
