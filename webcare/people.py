"""Departments, users and API tokens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare.db import Database
from webcare.errors import Conflict, NotFound
from webcare.models import ApiToken, Department, User, UserSession
from webcare.schemas import UserIn, UserPatch
from webcare.security import hash_password, new_token, token_digest


def department_json(d: Department) -> dict[str, Any]:
    return {"id": d.id, "name": d.name}


def user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "department_id": u.department_id,
            "active": u.active}


async def list_departments(db: Database) -> list[dict[str, Any]]:
    async with db.read() as s:
        return [department_json(d) for d in await s.scalars(sa.select(Department).order_by(Department.name))]


async def create_department(db: Database, name: str) -> dict[str, Any]:
    async with db.write() as tx:
        if await _department_by_name(tx.session, name) is not None:
            raise Conflict(f"a department named {name!r} exists already", code="department_exists")
        department = Department(name=name)
        tx.session.add(department)
        await tx.session.flush()
        return department_json(department)


async def ensure_department(session: AsyncSession, name: str) -> Department:
    department = await _department_by_name(session, name)
    if department is None:
        department = Department(name=name)
        session.add(department)
        await session.flush()
    return department


async def _department_by_name(session: AsyncSession, name: str) -> Department | None:
    return await session.scalar(sa.select(Department).where(sa.func.lower(Department.name) == name.lower()))


async def require_department(session: AsyncSession, department_id: int) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise NotFound(f"department {department_id} does not exist", code="department_not_found")
    return department


async def list_users(db: Database) -> list[dict[str, Any]]:
    async with db.read() as s:
        return [user_json(u) for u in await s.scalars(sa.select(User).order_by(User.name, User.id))]


async def create_user(db: Database, data: UserIn, *, department_name: str | None = None) -> dict[str, Any]:
    """Create a user; ``department_name`` names a department to use, created if missing (the CLI)."""
    password_hash = await hash_password(data.password) if data.password else None
    async with db.write() as tx:
        department_id = data.department_id
        if department_name:
            department_id = (await ensure_department(tx.session, department_name)).id
        elif department_id is not None:
            await require_department(tx.session, department_id)
        if await tx.session.scalar(sa.select(User.id).where(User.email == data.email)) is not None:
            raise Conflict(f"a user with the email {data.email} exists already", code="user_exists")
        user = User(email=data.email, name=data.name, role=data.role, department_id=department_id,
                    password_hash=password_hash)
        tx.session.add(user)
        await tx.session.flush()
        return user_json(user)


async def update_user(db: Database, user_id: int, patch: UserPatch) -> dict[str, Any]:
    fields = patch.model_dump(exclude_unset=True)
    if "password" in fields:
        fields["password_hash"] = await hash_password(fields.pop("password")) if fields["password"] else None
    async with db.write() as tx:
        user = await tx.session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"user {user_id} does not exist", code="user_not_found")
        if fields.get("department_id") is not None:
            await require_department(tx.session, fields["department_id"])
        for key, value in fields.items():
            setattr(user, key, value)
        if fields.get("active") is False or "password_hash" in fields:
            # A deactivated user or a changed password ends every open session of that user.
            await tx.session.execute(sa.delete(UserSession).where(UserSession.user_id == user_id))
        if fields.get("active") is False:
            await tx.session.execute(sa.delete(ApiToken).where(ApiToken.user_id == user_id))
        await tx.session.flush()
        return user_json(user)


async def create_token(db: Database, email: str) -> str:
    """A new API token for the user with that email; only its digest is stored."""
    token = new_token()
    async with db.write() as tx:
        user = await tx.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"no user with the email {email}", code="user_not_found")
        if not user.active:
            raise Conflict(f"{email} is deactivated; a token for it would never work", code="user_inactive")
        tx.session.add(ApiToken(user_id=user.id, token_hash=token_digest(token)))
    return token


async def require_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound(f"user {user_id} does not exist", code="user_not_found")
    return user


async def names(session: AsyncSession, user_ids: set[int], department_ids: set[int]) -> tuple[
        dict[int, str], dict[int, str]]:
    """Display names for users and departments, in two queries at most."""
    users: dict[int, str] = {}
    departments: dict[int, str] = {}
    if user_ids:
        users = {i: n for i, n in await session.execute(sa.select(User.id, User.name).where(User.id.in_(user_ids)))}
    if department_ids:
        departments = {i: n for i, n in await session.execute(
            sa.select(Department.id, Department.name).where(Department.id.in_(department_ids)))}
    return users, departments


