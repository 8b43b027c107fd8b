"""The browser app: ``frontend/`` served as static files at ``/``, behind every API route.

Plain ES modules, no build step. The mount answers only GET and HEAD outside ``/api/``, so a wrong
verb on an API path still gets its 405 and an unknown API path its JSON 404. Every answer carries a
strict Content-Security-Policy: the pages run only their own scripts, so text from a platform that
slipped into markup could still not run.

The one library the pages use (Chart.js, for the dashboard) comes from npm into ``frontend/node_modules``
(``scripts/install`` runs ``npm ci``; the image copies the one file in). Only the files named in
:data:`VENDOR` are served, at ``/vendor/<name>``, from our own origin; the rest of ``node_modules`` is not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # Revalidate every time (cheap with the ETag): a deploy never leaves a tab with a mix of old and new modules.
    (b"cache-control", b"no-cache"),
]
#: Paths that belong to the HTTP API, never to the pages.
API_PREFIXES = ("/api/", "/webhooks/", "/_fake/")
#: Files up to this size are answered in one piece.
SMALL_FILE = 256 * 1024
#: What ``/vendor/<name>`` serves: the path of each file inside ``frontend/node_modules``.
VENDOR = {"chart.umd.min.js": "chart.js/dist/chart.umd.min.js"}


def frontend_dir() -> Path | None:
    """Where ``frontend/`` is: beside the package in a checkout, or in the environment's prefix (the image)."""
    for candidate in (Path(__file__).resolve().parents[1] / "frontend", Path(sys.prefix) / "frontend"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


class _Files(StaticFiles):
    """StaticFiles (ETags, 304s, index.html, 404s) that answers a small file in one piece.

    The first screen asks for a dozen small modules at once; streaming each through a thread hop for
    every open, read and close costs more than reading a few kilobytes that sit in the page cache.
    """

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if type(response) is not FileResponse or scope["method"] != "GET" or stat_result.st_size > SMALL_FILE:
            return response
        try:
            body = Path(full_path).read_bytes()
        except OSError:
            return response
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return Response(body, status_code=status_code, headers=headers)


class _Vendor(_Files):
    """The files of :data:`VENDOR`, and nothing else of ``node_modules``."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        inside = VENDOR.get(path)
        if inside is None:
            return "", None
        return super().lookup_path(inside)


class _Secured:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class FrontendMount(Mount):
    """``Mount("/", StaticFiles(...))`` that steps aside for the API: it matches GETs and HEADs of page paths only."""

    def __init__(self, directory: Path) -> None:
        super().__init__("/", app=_Secured(_Files(directory=directory, html=True)), name="frontend")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD") or path == "/api"
                or path.startswith(API_PREFIXES) or path.startswith("/node_modules/")):
            return Match.NONE, {}
        return super().matches(scope)


def frontend_routes() -> list[Mount]:
    directory = frontend_dir()
    if directory is None:
        return []
    # Without `npm ci` the vendor files are simply missing (404): the dashboard then shows its tables alone.
    vendor = Mount("/vendor", app=_Secured(_Vendor(directory=directory / "node_modules", check_dir=False)),
                   name="vendor")
    return [vendor, FrontendMount(directory)]
