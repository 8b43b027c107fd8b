"""The inbox's views: named slices of the queue, each one filter of ``GET /api/conversations``, with counts.

A view's ``filter`` is exactly the query to list it with, and its ``count`` is how many conversations
that listing holds, so the numbers beside the views never disagree with what opening them shows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webcare.access import Actor, account_visible, conversation_visible
from webcare.db import Database
from webcare.models import Account, Conversation

C = Conversation
#: What still needs someone: the statuses of "all open" and the views that slice it.
ACTIVE = ("open", "claimed", "escalated")


def _assigned_to(actor: Actor) -> sa.ColumnElement[bool]:
    # As the queue's assignee=me: escalated to me by name, or to my department's experts.
    mine = C.assignee_user_id == actor.id
    if actor.department_id is not None:
        mine = sa.or_(mine, C.assignee_department_id == actor.department_id)
    return mine


def _of_department(department_id: int) -> sa.ColumnElement[bool]:
    # As the queue's department_id: escalated to the department, or on one of its accounts.
    return sa.or_(C.assignee_department_id == department_id,
                  C.account_id.in_(sa.select(Account.id).where(Account.department_id == department_id)))


async def views(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Every view this person has, in the order to show them: ``{key, filter, count}``, per account also
    ``account_id``."""
    active = C.status.in_(ACTIVE)
    statuses = ",".join(ACTIVE)
    counted: list[tuple[str, dict[str, Any], sa.ColumnElement[bool]]] = [
        ("open", {"status": statuses}, active),
        ("mine", {"status": statuses, "claimed_by": "me"}, sa.and_(active, C.claimed_by_id == actor.id)),
        ("escalated", {"status": "escalated", "assignee": "me"}, sa.and_(C.status == "escalated", _assigned_to(actor))),
    ]
    if actor.department_id is not None:
        counted.append(("department", {"status": statuses, "department_id": actor.department_id},
                        sa.and_(active, _of_department(actor.department_id))))
    counted += [("answered", {"status": "answered"}, C.status == "answered"),
                ("closed", {"status": "closed"}, C.status == "closed")]
    async with db.read() as s:
        row = (await s.execute(
            sa.select(*(sa.func.count().filter(where) for _, _, where in counted))
            .select_from(C).where(conversation_visible(actor))
        )).one()
        per_account: dict[int, int] = {account_id: n for account_id, n in await s.execute(
            sa.select(C.account_id, sa.func.count()).where(active, conversation_visible(actor)).group_by(C.account_id))}
        accounts = list(await s.scalars(
            sa.select(Account.id).where(account_visible(actor)).order_by(Account.name, Account.id)))
    items = [{"key": key, "filter": f, "count": int(n or 0)} for (key, f, _), n in zip(counted, row, strict=True)]
    items += [{"key": f"account-{a}", "account_id": a, "filter": {"status": statuses, "account_id": a},
               "count": per_account.get(a, 0)} for a in accounts]
    return items
