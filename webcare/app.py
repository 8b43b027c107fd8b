"""The composition root: ``create_app(settings)`` builds everything; the lifespan starts and stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from webcare import __version__
from webcare.api import admin, conversations, session
from webcare.demo import Demo
from webcare.http import JSON, Endpoint, endpoints_routes, exception_handlers, ok, openapi
from webcare.services import Services
from webcare.settings import Settings

log = logging.getLogger(__name__)

ENDPOINTS: list[Endpoint] = [*session.ENDPOINTS, *admin.ENDPOINTS, *conversations.ENDPOINTS]


async def healthz(request: Request) -> Response:
    return ok({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        await asyncio.wait_for(services.db.ping(), timeout=5)
    except Exception as e:
        return ok({"status": "unavailable", "error": {"code": "database_unavailable", "message": str(e)[:200]}}, 503)
    return ok({"status": "ok"})


def create_app(settings: Settings, *, demo: Demo | None = None) -> Starlette:
    services = Services.build(settings)
    spec = openapi(ENDPOINTS, __version__)

    async def openapi_json(request: Request) -> Response:
        return JSON(spec)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_sweep_leases(services), name="lease-sweeper")]
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
            await services.db.dispose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *endpoints_routes(ENDPOINTS),
    ]
    app = Starlette(routes=routes, exception_handlers=exception_handlers(), lifespan=lifespan)
    app.state.services = services
    app.state.settings = settings
    return app


async def _sweep_leases(services: Services) -> None:
    """Claims are leases: one that saw no activity in time goes back to the queue by itself."""
    while True:
        await asyncio.sleep(services.settings.lease_sweep_seconds)
        try:
            expired = await services.inbox.expire_leases()
            if expired:
                log.info("returned %d expired claims to the queue", expired)
        except Exception:
            log.exception("lease sweep failed; trying again later")
