"""Departments, users and accounts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare import people
from webcare.accounts import account_json
from webcare.api import current_actor, services
from webcare.http import Endpoint, ok, parse
from webcare.schemas import AccountIn, AccountPatch, DepartmentIn, UserIn, UserPatch


async def list_departments(request: Request) -> Response:
    await current_actor(request)
    return ok({"items": await people.list_departments(services(request).db)})


async def create_department(request: Request) -> Response:
    (await current_actor(request)).require("admin")
    body = await parse(request, DepartmentIn)
    return ok(await people.create_department(services(request).db, body.name), 201)


async def list_users(request: Request) -> Response:
    await current_actor(request)
    return ok({"items": await people.list_users(services(request).db)})


async def create_user(request: Request) -> Response:
    (await current_actor(request)).require("admin")
    body = await parse(request, UserIn)
    return ok(await people.create_user(services(request).db, body), 201)


async def update_user(request: Request) -> Response:
    (await current_actor(request)).require("admin")
    body = await parse(request, UserPatch)
    user = await people.update_user(services(request).db, request.path_params["id"], body)
    services(request).auth.forget()  # deactivated, another role: this process knows at once
    return ok(user)


async def list_accounts(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"items": await services(request).accounts.list(actor)})


async def get_account(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(account_json(await services(request).accounts.get(actor, request.path_params["id"])))


async def create_account(request: Request) -> Response:
    (await current_actor(request)).require("admin")
    body = await parse(request, AccountIn)
    return ok(await services(request).accounts.create(body), 201)


async def update_account(request: Request) -> Response:
    (await current_actor(request)).require("admin")
    body = await parse(request, AccountPatch)
    return ok(await services(request).accounts.update(request.path_params["id"], body))


ENDPOINTS = [
    Endpoint("GET", "/api/departments", list_departments, "List departments", tag="admin"),
    Endpoint("POST", "/api/departments", create_department, "Create a department (admin)", DepartmentIn, tag="admin"),
    Endpoint("GET", "/api/users", list_users, "List users", tag="admin"),
    Endpoint("POST", "/api/users", create_user, "Create a user (admin)", UserIn, tag="admin"),
    Endpoint("PATCH", "/api/users/{id:int}", update_user, "Change a user (admin)", UserPatch, tag="admin"),
    Endpoint("GET", "/api/accounts", list_accounts, "List the organisational accounts you may see", tag="admin"),
    Endpoint("GET", "/api/accounts/{id:int}", get_account, "One account", tag="admin"),
    Endpoint("POST", "/api/accounts", create_account, "Create an account; credentials are write-only (admin)",
             AccountIn, tag="admin"),
    Endpoint("PATCH", "/api/accounts/{id:int}", update_account, "Change an account (admin)", AccountPatch,
             tag="admin"),
]
