"""SLA targets and business hours: anyone logged in reads them, coordinators and admins change them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare.api import current_actor, services
from webcare.http import Endpoint, ok, parse
from webcare.sla_config import BusinessHoursIn, SlaConfig, SlaTargetIn, SlaTargetPatch


def _config(request: Request) -> SlaConfig:
    return SlaConfig(services(request).db)


async def _overseer(request: Request) -> None:
    (await current_actor(request)).require("coordinator", "admin")


async def list_targets(request: Request) -> Response:
    await current_actor(request)
    return ok({"items": await _config(request).targets()})


async def create_target(request: Request) -> Response:
    await _overseer(request)
    body = await parse(request, SlaTargetIn)
    return ok(await _config(request).create_target(body), 201)


async def update_target(request: Request) -> Response:
    await _overseer(request)
    body = await parse(request, SlaTargetPatch)
    return ok(await _config(request).update_target(request.path_params["id"], body))


async def delete_target(request: Request) -> Response:
    await _overseer(request)
    await _config(request).delete_target(request.path_params["id"])
    return Response(status_code=204)


async def list_hours(request: Request) -> Response:
    await current_actor(request)
    return ok({"items": await _config(request).business_hours()})


async def set_organisation_hours(request: Request) -> Response:
    await _overseer(request)
    body = await parse(request, BusinessHoursIn)
    return ok(await _config(request).set_business_hours(None, body))


async def set_department_hours(request: Request) -> Response:
    await _overseer(request)
    body = await parse(request, BusinessHoursIn)
    return ok(await _config(request).set_business_hours(request.path_params["id"], body))


async def clear_department_hours(request: Request) -> Response:
    await _overseer(request)
    await _config(request).clear_business_hours(request.path_params["id"])
    return Response(status_code=204)


ENDPOINTS = [
    Endpoint("GET", "/api/sla/targets", list_targets, "SLA targets per account, department or the organisation",
             tag="sla"),
    Endpoint("POST", "/api/sla/targets", create_target,
             "Add a target: first_response or resolution within N minutes of business (or calendar) time, "
             "optionally another N calendar minutes for messages posted outside opening hours (coordinator, admin)",
             SlaTargetIn, tag="sla"),
    Endpoint("PATCH", "/api/sla/targets/{id:int}", update_target, "Change a target (coordinator, admin)",
             SlaTargetPatch, tag="sla"),
    Endpoint("DELETE", "/api/sla/targets/{id:int}", delete_target, "Remove a target (coordinator, admin)",
             tag="sla"),
    Endpoint("GET", "/api/business-hours", list_hours,
             "Opening hours: the organisation's (built in: Mon-Fri 09:00-17:00) and each department's own",
             tag="sla"),
    Endpoint("PUT", "/api/business-hours/organisation", set_organisation_hours,
             "Set the organisation's weekly hours, holidays and time zone (coordinator, admin)", BusinessHoursIn,
             tag="sla"),
    Endpoint("PUT", "/api/departments/{id:int}/business-hours", set_department_hours,
             "Set a department's own hours (coordinator, admin)", BusinessHoursIn, tag="sla"),
    Endpoint("DELETE", "/api/departments/{id:int}/business-hours", clear_department_hours,
             "Back to the organisation's hours (coordinator, admin)", tag="sla"),
]
