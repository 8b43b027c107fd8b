"""What every fake platform request goes through: the request log, faults, chaos and the quota."""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.fake.state import FakePlatform, Fault, RateWindow


class Reject(Exception):
    """Raised by a handler to answer with a platform-styled error."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message


class Style(Protocol):
    """How one platform spells errors and rate-limit headers, and who a request speaks for."""

    name: str

    def error(self, status: int, message: str | None = None, reset: float | None = None) -> Response: ...

    def rate_headers(self, window: RateWindow) -> dict[str, str]: ...

    def account(self, headers: Headers) -> str | None: ...

    def bucket(self, method: str, path: str) -> str: ...


@dataclass
class PlatformMiddleware:
    app: ASGIApp
    fake: FakePlatform
    style: Style

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method: str = scope["method"]
        path = _platform_path(scope)
        account = self.style.account(headers)
        entry = {
            "platform": self.style.name, "method": method, "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"), "account": account,
            "authorization": headers.get("authorization", "").split(" ", 1)[0] or None,
            "idempotency_key": headers.get("idempotency-key"),
            # When it came in and when its answer was done (time.monotonic()): tests see which requests
            # were in flight at once.
            "started": time.monotonic(), "ended": None}
        self.fake.record_request(entry)

        async def send_timed(message: Message) -> None:
            # Before the last of the answer goes out: the client cannot have it (and ask again) earlier.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                entry["ended"] = time.monotonic()
            await send(message)

        try:
            await self._handle(scope, receive, send_timed, method, path, account)
        finally:
            if entry["ended"] is None:  # no answer at all (a dropped connection)
                entry["ended"] = time.monotonic()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, method: str, path: str,
                      account: str | None) -> None:

        fault = self.fake.take_fault(self.style.name, method, path, account) or self._chaos()
        if fault is not None and fault.kind == "status":
            await self._fault_response(fault)(scope, receive, send)
            return
        if fault is not None and fault.kind == "delay":
            await self.fake.pause(fault.delay)

        window = self.fake.hit(self.style.name, account or "-", self.style.bucket(method, path))
        if window.exhausted:
            await self.style.error(429, reset=window.reset)(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in self.style.rate_headers(window).items()]

        if fault is None or fault.kind == "delay":
            async def send_with_quota(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            try:
                await self.app(scope, receive, send_with_quota)
            except ClientDisconnect:
                pass  # the client gave up while a delay held the request back: nobody to answer
            return

        # The request is handled (and stored) in full; only its answer goes wrong.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        if fault.kind == "drop":
            start = held[0]
            await send({**start, "headers": [*start.get("headers", []), *extra]})
            return  # without the body: uvicorn closes the connection mid-response
        if fault.kind == "error_after":
            await self._fault_response(fault, default=503)(scope, receive, send)
            return
        await self.fake.pause(fault.delay)  # hang_after
        for message in held:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

    def _fault_response(self, fault: Fault, default: int = 500) -> Response:
        status = fault.status or default
        if fault.body is not None:
            response: Response = Response(json.dumps(fault.body), status, media_type="application/json")
            if status == 429:  # a body of one's own, but still the quota headers
                quota = self.style.error(429, reset=fault.reset).headers
                response.headers.update({k: v for k, v in quota.items() if k.startswith("x-ratelimit")
                                         or k.startswith("x-rate-limit")})
        else:
            response = self.style.error(status, reset=fault.reset if status == 429 else None)
        response.headers.update(fault.headers)
        return response

    def _chaos(self) -> Fault | None:
        """With ``fake.chaos`` set (demo mode), now and then a 503, a short 429 or a slow answer."""
        if not self.fake.chaos or random.random() >= self.fake.chaos:
            return None
        choice = random.choice(("503", "429", "slow"))
        if choice == "slow":
            return Fault(id=0, kind="delay", delay=random.uniform(0.5, 3))
        if choice == "429":
            return Fault(id=0, kind="status", status=429, reset=self.fake.now() + random.uniform(2, 20))
        return Fault(id=0, kind="status", status=503)


def _platform_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def endpoint_bucket(method: str, path: str) -> str:
    """A quota bucket per method and path shape (ids replaced)."""
    return method + " " + re.sub(r"/\d[\w-]*", "/:id", path)
