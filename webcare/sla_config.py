"""Managing SLA targets and business hours (coordinators and admins): bodies and services.

Every change moves the deadlines of the conversations still waiting, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webcare.businesstime import Calendar, CalendarError, office_hours
from webcare.conversations import iso
from webcare.db import Database
from webcare.errors import Conflict, NotFound
from webcare.metrics_models import BusinessHours, SlaTarget
from webcare.models import Account, Department
from webcare.schemas import Body
from webcare.sla import ORGANISATION, account_scope, department_scope, recompute_pending

RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Minutes = Annotated[int, Field(ge=1, le=366 * 24 * 60)]
Metric = Literal["first_response", "resolution"]
Clock = Literal["business", "calendar"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TimeText = Annotated[str, Field(min_length=5, max_length=5)]


class SlaTargetIn(Body):
    metric: Metric
    within_minutes: Minutes
    clock: Clock = "business"
    #: For messages posted outside opening hours: this many calendar minutes instead.
    outside_hours_minutes: Minutes | None = None
    account_id: RowId | None = None
    department_id: RowId | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> SlaTargetIn:
        if self.account_id is not None and self.department_id is not None:
            raise ValueError("give at most one of account_id and department_id (neither: the whole organisation)")
        return self


class SlaTargetPatch(Body):
    within_minutes: Minutes | None = None
    clock: Clock | None = None
    outside_hours_minutes: Minutes | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> SlaTargetPatch:
        for key in ("within_minutes", "clock"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(f"{key} cannot be null")
        return self


class BusinessHoursIn(Body):
    #: An IANA zone; the organisation's when left out.
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    week: dict[Day, Annotated[list[Annotated[list[TimeText], Field(min_length=2, max_length=2)]],
                              Field(max_length=24)]]
    holidays: Annotated[list[dt.date], Field(max_length=1000)] = Field(default_factory=list)

    def calendar(self, zone: str) -> Calendar:
        try:
            week: dict[str, list[list[str]]] = {str(day): hours for day, hours in self.week.items()}
            return Calendar.build(self.timezone or zone, week, self.holidays)
        except CalendarError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _sensible(self) -> BusinessHoursIn:
        self.calendar("UTC")
        return self


def target_json(t: SlaTarget) -> dict[str, Any]:
    scope = "account" if t.account_id is not None else "department" if t.department_id is not None else ORGANISATION
    return {"id": t.id, "scope": scope, "account_id": t.account_id, "department_id": t.department_id,
            "metric": t.metric, "within_minutes": t.within_minutes, "clock": t.clock,
            "outside_hours_minutes": t.outside_hours_minutes, "updated_at": iso(t.updated_at)}


def hours_json(scope: str, department_id: int | None, calendar: Calendar, *, built_in: bool) -> dict[str, Any]:
    return {"scope": "department" if department_id is not None else scope, "department_id": department_id,
            **calendar.as_json(), "built_in": built_in}


class SlaConfig:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def targets(self) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = await s.scalars(sa.select(SlaTarget).order_by(SlaTarget.scope, SlaTarget.metric))
            return [target_json(t) for t in rows]

    async def create_target(self, body: SlaTargetIn) -> dict[str, Any]:
        if body.account_id is not None:
            scope = account_scope(body.account_id)
        elif body.department_id is not None:
            scope = department_scope(body.department_id)
        else:
            scope = ORGANISATION
        try:
            async with self.db.write() as tx:
                if body.account_id is not None and await tx.session.get(Account, body.account_id) is None:
                    raise NotFound(f"account {body.account_id} does not exist", code="account_not_found")
                if body.department_id is not None and await tx.session.get(Department, body.department_id) is None:
                    raise NotFound(f"department {body.department_id} does not exist", code="department_not_found")
                target = SlaTarget(scope=scope, account_id=body.account_id, department_id=body.department_id,
                                   metric=body.metric, within_minutes=body.within_minutes, clock=body.clock,
                                   outside_hours_minutes=body.outside_hours_minutes, created_at=tx.now,
                                   updated_at=tx.now)
                tx.session.add(target)
                await tx.session.flush()
                await recompute_pending(tx)
                return target_json(target)
        except sa.exc.IntegrityError:
            raise Conflict(f"there is a {body.metric} target for this {scope.split(':')[0]} already; change that one",
                           code="target_exists") from None

    async def update_target(self, target_id: int, patch: SlaTargetPatch) -> dict[str, Any]:
        async with self.db.write() as tx:
            target = await tx.session.get(SlaTarget, target_id, with_for_update=True)
            if target is None:
                raise NotFound(f"SLA target {target_id} does not exist", code="target_not_found")
            for key in patch.model_fields_set:
                setattr(target, key, getattr(patch, key))
            target.updated_at = tx.now
            await tx.session.flush()
            await recompute_pending(tx)
            return target_json(target)

    async def delete_target(self, target_id: int) -> None:
        async with self.db.write() as tx:
            deleted = (await tx.session.execute(sa.delete(SlaTarget).where(SlaTarget.id == target_id)
                                                .returning(SlaTarget.id))).scalar_one_or_none()
            if deleted is None:
                raise NotFound(f"SLA target {target_id} does not exist", code="target_not_found")
            await recompute_pending(tx)

    async def business_hours(self) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = list(await s.scalars(sa.select(BusinessHours).order_by(BusinessHours.department_id.nulls_first())))
        out = [hours_json(r.scope, r.department_id, Calendar.build(r.timezone, r.week, r.holidays), built_in=False)
               for r in rows]
        if not any(r.scope == ORGANISATION for r in rows):
            out.insert(0, hours_json(ORGANISATION, None, office_hours(self.db.zone), built_in=True))
        return out

    async def set_business_hours(self, department_id: int | None, body: BusinessHoursIn) -> dict[str, Any]:
        calendar = body.calendar(self.db.zone)
        scope = department_scope(department_id) if department_id is not None else ORGANISATION
        async with self.db.write() as tx:
            if department_id is not None and await tx.session.get(Department, department_id) is None:
                raise NotFound(f"department {department_id} does not exist", code="department_not_found")
            stored = calendar.as_json()
            values = {"scope": scope, "department_id": department_id, "timezone": stored["timezone"],
                      "week": stored["week"], "holidays": stored["holidays"], "updated_at": tx.now}
            insert = pg_insert if tx.session.get_bind().dialect.name == "postgresql" else sqlite_insert
            stmt = insert(BusinessHours).values(**values)
            await tx.session.execute(stmt.on_conflict_do_update(
                index_elements=["scope"], set_={k: stmt.excluded[k] for k in values if k != "scope"}))
            await recompute_pending(tx)
        return hours_json(scope, department_id, calendar, built_in=False)

    async def clear_business_hours(self, department_id: int) -> None:
        async with self.db.write() as tx:
            deleted = (await tx.session.execute(
                sa.delete(BusinessHours).where(BusinessHours.scope == department_scope(department_id))
                .returning(BusinessHours.id))).scalar_one_or_none()
            if deleted is None:
                raise NotFound(f"department {department_id} has no business hours of its own",
                               code="business_hours_not_found")
            await recompute_pending(tx)
