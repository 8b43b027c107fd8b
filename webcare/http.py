"""The HTTP plumbing every handler shares: bodies in, JSON out, errors rendered one way, and the
endpoint table that both routes requests and describes them in ``/openapi.json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from webcare.errors import AppError, BadRequest, NotFound, PayloadTooLarge
from webcare.schemas import MAX_ID, storable_problem

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
B = TypeVar("B", bound=BaseModel)


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def ok(content: Any, status: int = 200) -> JSON:
    return JSON(content, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse(request: Request, model: type[B]) -> B:
    """The request's JSON body as ``model``: 400 when it is not JSON or does not fit, 413 when too big."""
    raw = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        body = model.model_validate_json(raw or b"")
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors) or not raw:
            raise BadRequest("the body is not valid JSON", code="malformed_json") from None
        problems = [{"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
                    for err in errors]
        first = problems[0]
        raise BadRequest(f"{first['field']}: {first['problem']}", code="invalid_body", details=problems) from None
    problem = storable_problem(body.model_dump())
    if problem:
        raise BadRequest(problem, code="invalid_body")
    return body


MAX_BIGINT = 2**63 - 1


def query_int(request: Request, name: str, default: int, *, maximum: int = MAX_BIGINT) -> int:
    """A whole-number query parameter; 400 when it is not one or lies outside what the database holds."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", code="invalid_query") from None
    if not -MAX_BIGINT <= value <= maximum:
        raise BadRequest(f"{name} must be at most {maximum}", code="invalid_query")
    return value


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    tag: str = "inbox"
    auth: bool = True

    def route(self) -> Route:
        handler = self.handler
        takes_body = self.body is not None

        async def checked(request: Request) -> Response:
            # An id beyond what a row id can be names nothing: 404 here rather than an overflow in the query.
            if any(isinstance(v, int) and v > MAX_ID for v in request.path_params.values()):
                raise NotFound("no such id")
            if not takes_body and request.method not in ("GET", "HEAD"):
                # Verbs without a body still refuse an oversized one (413) before doing anything.
                await read_body(request, request.app.state.settings.max_body_bytes)
            return await handler(request)

        return Route(self.path, checked, methods=[self.method], name=f"{self.method} {self.path}")


def openapi(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for e in endpoints:
        path = e.path.replace(":int", "")
        op: dict[str, Any] = {"summary": e.summary, "tags": [e.tag], "responses": {
            "2XX": {"description": "success"},
            "default": {"description": "an error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
        }}
        params = [p.strip("{}").split(":")[0] for p in e.path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "integer"}}
                                for p in params]
        if e.body is not None:
            schema = e.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[e.body.__name__] = schema
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}}}
        if e.auth:
            op["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(path, {})[e.method.lower()] = op
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Webcare", "version": version},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "webcare_session"},
        }},
    }


async def app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return ok(exc.body(), exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "no such path", 405: f"{request.method} is not allowed here"}.get(exc.status_code, exc.detail)
    response = ok({"error": {"code": codes.get(exc.status_code, "http_error"), "message": message}}, exc.status_code)
    response.headers.update(exc.headers or {})  # a 405 says which methods are allowed
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ok({"error": {"code": "internal", "message": "something went wrong on our side"}}, 500)


async def integrity_error(request: Request, exc: Exception) -> Response:
    # A unique constraint decided a race that a look-up before the write could not see: someone else
    # stored the same thing a moment earlier. The transaction rolled back; nothing is half-written.
    log.info("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return ok({"error": {"code": "conflict", "message": "that conflicts with something stored a moment ago; "
                                                        "look again and retry"}}, 409)


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    return {AppError: app_error, HTTPException: http_error, IntegrityError: integrity_error,
            Exception: server_error}


def endpoints_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    return [e.route() for e in endpoints]
