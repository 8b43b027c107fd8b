"""SLA targets and the deadlines they set.

A conversation gets, per metric (first response, resolution), the target of the most specific scope
that has one: its account, else the account's department, else the organisation. The target's clock
runs on the business hours of the department (else the organisation's, else Monday to Friday 09:00
to 17:00 in the organisation's time zone). A deadline is fixed when the conversation starts, from the
moment the person posted: ``within_minutes`` of business time (clock ``business``) or of calendar
time (clock ``calendar``), or, for a message posted outside opening hours when the target says so,
``outside_hours_minutes`` of calendar time. Changing targets or hours moves the deadlines of
conversations still waiting (:func:`recompute_pending`), never an outcome already decided.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare.businesstime import Calendar, office_hours
from webcare.db import Tx
from webcare.metrics_models import BusinessHours, ConversationMetrics, SlaTarget
from webcare.models import Conversation

ORGANISATION = "organisation"


def account_scope(account_id: int) -> str:
    return f"account:{account_id}"


def department_scope(department_id: int) -> str:
    return f"department:{department_id}"


@dataclass(frozen=True)
class Target:
    id: int
    metric: str
    within_minutes: int
    clock: str
    outside_hours_minutes: int | None

    @classmethod
    def of(cls, t: SlaTarget) -> Target:
        return cls(t.id, t.metric, t.within_minutes, t.clock, t.outside_hours_minutes)

    def due(self, calendar: Calendar, posted: dt.datetime) -> dt.datetime:
        if self.outside_hours_minutes is not None and not calendar.is_open(posted):
            return posted + dt.timedelta(minutes=self.outside_hours_minutes)
        if self.clock == "business":
            return calendar.add(posted, self.within_minutes * 60)
        return posted + dt.timedelta(minutes=self.within_minutes)


@dataclass(frozen=True)
class Plan:
    """The targets and hours that hold for one account."""

    targets: dict[str, Target]
    calendar: Calendar

    def due(self, metric: str, posted: dt.datetime) -> tuple[int | None, dt.datetime | None]:
        target = self.targets.get(metric)
        if target is None:
            return None, None
        return target.id, target.due(self.calendar, posted)


def calendar_of(row: BusinessHours | None, zone: str) -> Calendar:
    if row is None:
        return office_hours(zone)
    return Calendar.build(row.timezone, row.week, row.holidays)


_TARGETS = sa.select(SlaTarget).where(SlaTarget.scope.in_(sa.bindparam("scopes", expanding=True)))


async def plan_for(session: AsyncSession, account_id: int, department_id: int, zone: str) -> Plan:
    scopes = [account_scope(account_id), department_scope(department_id), ORGANISATION]
    found = list(await session.scalars(_TARGETS, {"scopes": scopes}))
    targets: dict[str, Target] = {}
    for metric in ("first_response", "resolution"):
        mine = sorted((t for t in found if t.metric == metric), key=lambda t: scopes.index(t.scope))
        if mine:
            targets[metric] = Target.of(mine[0])
    if not targets:
        return Plan(targets, office_hours(zone))
    return Plan(targets, await calendar_for(session, department_id, zone))


async def calendar_for(session: AsyncSession, department_id: int, zone: str) -> Calendar:
    rows = {r.scope: r for r in await session.scalars(
        sa.select(BusinessHours).where(BusinessHours.scope.in_([department_scope(department_id), ORGANISATION])))}
    return calendar_of(rows.get(department_scope(department_id)) or rows.get(ORGANISATION), zone)


async def recompute_pending(tx: Tx) -> int:
    """New deadlines for every target still undecided in a conversation that is not closed; the number
    of conversations looked at."""
    m = ConversationMetrics
    pending = sa.or_(sa.and_(m.fr_sla.is_(None), m.first_response_at.is_(None)),
                     sa.and_(m.res_sla.is_(None), m.resolved_at.is_(None)))
    rows = (await tx.session.execute(
        sa.select(m.conversation_id, m.account_id, m.department_id, m.started_at, m.fr_sla, m.first_response_at,
                  m.res_sla, m.resolved_at)
        .join(Conversation, Conversation.id == m.conversation_id)
        .where(pending, Conversation.status != "closed")
    )).all()
    by_account: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for row in rows:
        by_account[(row.account_id, row.department_id)].append(row)
    for (account_id, department_id), group in by_account.items():
        plan = await plan_for(tx.session, account_id, department_id, tx.zone)
        fr_updates, res_updates = [], []
        for row in group:
            if row.fr_sla is None and row.first_response_at is None:
                target, due = plan.due("first_response", row.started_at)
                fr_updates.append({"cid": row.conversation_id, "target": target, "due": due})
            if row.res_sla is None and row.resolved_at is None:
                target, due = plan.due("resolution", row.started_at)
                res_updates.append({"cid": row.conversation_id, "target": target, "due": due})
        # Only while still undecided: a reply or the sweeper may have decided it meanwhile.
        table = cast(sa.Table, m.__table__)
        if fr_updates:
            await tx.session.execute(
                sa.update(table).where(table.c.conversation_id == sa.bindparam("cid"), table.c.fr_sla.is_(None))
                .values(fr_target_id=sa.bindparam("target"), fr_due_at=sa.bindparam("due")), fr_updates)
        if res_updates:
            await tx.session.execute(
                sa.update(table).where(table.c.conversation_id == sa.bindparam("cid"), table.c.res_sla.is_(None))
                .values(res_target_id=sa.bindparam("target"), res_due_at=sa.bindparam("due")), res_updates)
    return len(rows)
