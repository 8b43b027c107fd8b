"""Response-time metrics, the live backlog and their CSV exports: for coordinators and admins."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from webcare.api import current_actor, services
from webcare.errors import BadRequest
from webcare.http import Endpoint, ok, query_int
from webcare.metrics_backlog import backlog, backlog_rows, conversation_csv, csv_text, stats_rows
from webcare.metrics_report import parse_instant, response_times, series

CSV = "text/csv; charset=utf-8"
#: How far ahead the backlog looks for targets about to breach, unless ``within`` says otherwise.
DEFAULT_WITHIN = 1800


async def _overseer(request: Request) -> None:
    (await current_actor(request)).require("coordinator", "admin")


def _range(request: Request) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = parse_instant(request.query_params.get("from"), "from")
    end = parse_instant(request.query_params.get("to"), "to")
    if start is not None and end is not None and start > end:
        raise BadRequest("from must not come after to", code="invalid_query")
    return start, end


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type=CSV, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _report(request: Request) -> dict[str, Any]:
    await _overseer(request)
    start, end = _range(request)
    return await response_times(services(request).db, start, end, request.query_params.get("group_by"))


async def get_response_times(request: Request) -> Response:
    return ok(await _report(request))


async def get_response_times_csv(request: Request) -> Response:
    header, rows = stats_rows(await _report(request))
    return _csv(csv_text(header, rows), "response-times.csv")


async def get_series(request: Request) -> Response:
    await _overseer(request)
    start, end = _range(request)
    return ok(await series(services(request).db, start, end, request.query_params.get("group_by")))


async def _backlog(request: Request) -> dict[str, Any]:
    await _overseer(request)
    within = query_int(request, "within", DEFAULT_WITHIN)
    if not 0 <= within <= 366 * 86_400:
        raise BadRequest("within must be a number of seconds from 0 to a year", code="invalid_query")
    return await backlog(services(request).db, within_seconds=within)


async def get_backlog(request: Request) -> Response:
    return ok(await _backlog(request))


async def get_backlog_csv(request: Request) -> Response:
    header, rows = backlog_rows(await _backlog(request))
    return _csv(csv_text(header, rows), "backlog.csv")


async def get_conversations_csv(request: Request) -> Response:
    await _overseer(request)
    start, end = _range(request)
    body: AsyncIterator[str] = conversation_csv(services(request).db, start, end)
    return StreamingResponse(body, media_type=CSV,
                             headers={"Content-Disposition": 'attachment; filename="conversations.csv"'})


RANGE = "from/to are ISO 8601 timestamps (UTC when no offset is given)"
ENDPOINTS = [
    Endpoint("GET", "/api/metrics/response-times", get_response_times,
             f"First response, resolution (count, median, p90 in seconds) and SLA hits and breaches, overall and "
             f"per group_by=account|department|user; {RANGE} (coordinator, admin)", tag="metrics"),
    Endpoint("GET", "/api/metrics/response-times.csv", get_response_times_csv,
             "The response-times table as CSV (overall first, then each group)", tag="metrics"),
    Endpoint("GET", "/api/metrics/series", get_series,
             "Per local day of the organisation: the response-times figures, overall and per "
             "group_by=account|department|user (at most 400 days; the last 30 by default)", tag="metrics"),
    Endpoint("GET", "/api/metrics/backlog", get_backlog,
             "What is not closed now per account and department, the oldest waiting, and the SLA targets due "
             "within `within` seconds (default 1800) or breached and still unmet", tag="metrics"),
    Endpoint("GET", "/api/metrics/backlog.csv", get_backlog_csv, "The backlog's counts as CSV", tag="metrics"),
    Endpoint("GET", "/api/metrics/conversations.csv", get_conversations_csv,
             f"Conversations that started within from/to with their metrics, as CSV; {RANGE}", tag="metrics"),
]
