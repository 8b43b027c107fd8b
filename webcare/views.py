"""The inbox's views: named slices of the queue, each one filter of ``GET /api/conversations``, with counts.

A view's ``filter`` is exactly the query to list it with, and its ``count`` is how many conversations
that listing holds, so the numbers beside the views never disagree with what opening them shows.
``last_seq`` is the event log's head, read before the counts: a client that follows the live stream
from there (``/api/live?after=last_seq``) misses no change made after what it was shown. With
``first=<key>`` the answer also holds that view's first page of the queue, read after ``last_seq``
too: a page opens with one request instead of two in a row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webcare.access import Actor, account_visible, conversation_visible
from webcare.conversations import QueueFilter, list_queue
from webcare.db import Database
from webcare.models import Account, Conversation, Event

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


async def views(db: Database, actor: Actor, *, first: str | None = None, limit: int = 50) -> dict[str, Any]:
    """``{items, last_seq}``: every view this person has, in the order to show them, as ``{key, filter, count}``
    (per account also ``account_id``), and the event log's head before they were counted.

    The counts come from one grouped scan of what still needs someone (and what was answered). Closed
    conversations are the whole history and grow without end: their view has no count (``null``).
    """
    statuses = ",".join(ACTIVE)
    department = actor.department_id
    flags = [(C.claimed_by_id == actor.id).label("mine"), _assigned_to(actor).label("assigned")]
    if department is not None:
        flags.append((C.assignee_department_id == department).label("to_department"))
    async with db.read() as s:
        last_seq = int(await s.scalar(sa.select(sa.func.coalesce(sa.func.max(Event.seq), 0))) or 0)
        accounts = (await s.execute(sa.select(Account.id, Account.department_id).where(account_visible(actor))
                                    .order_by(Account.name, Account.id))).all()
        groups = (await s.execute(
            sa.select(C.account_id, C.status, *flags, sa.func.count().label("n"))
            .where(C.status.in_((*ACTIVE, "answered")), conversation_visible(actor))
            .group_by(C.account_id, C.status, *flags)
        )).mappings().all()
    account_department = {a.id: a.department_id for a in accounts}
    counts = dict.fromkeys(("open", "mine", "escalated", "department", "answered"), 0)
    per_account: dict[int, int] = {}
    for g in groups:
        account_id, status, n = g["account_id"], g["status"], g["n"]
        if status == "answered":
            counts["answered"] += n
            continue
        counts["open"] += n
        per_account[account_id] = per_account.get(account_id, 0) + n
        if g["mine"]:
            counts["mine"] += n
        if status == "escalated" and g["assigned"]:
            counts["escalated"] += n
        if department is not None and (g["to_department"] or account_department.get(account_id) == department):
            counts["department"] += n
    items: list[dict[str, Any]] = [
        {"key": "open", "filter": {"status": statuses}, "count": counts["open"]},
        {"key": "mine", "filter": {"status": statuses, "claimed_by": "me"}, "count": counts["mine"]},
        {"key": "escalated", "filter": {"status": "escalated", "assignee": "me"}, "count": counts["escalated"]},
    ]
    if department is not None:
        items.append({"key": "department", "filter": {"status": statuses, "department_id": department},
                      "count": counts["department"]})
    items += [{"key": "answered", "filter": {"status": "answered"}, "count": counts["answered"]},
              {"key": "closed", "filter": {"status": "closed"}, "count": None}]
    items += [{"key": f"account-{a.id}", "account_id": a.id, "filter": {"status": statuses, "account_id": a.id},
               "count": per_account.get(a.id, 0)} for a in accounts]
    answer: dict[str, Any] = {"items": items, "last_seq": last_seq}
    chosen = next((v for v in items if v["key"] == first), None)
    if chosen is not None:
        f = chosen["filter"]
        page = await list_queue(db, actor, QueueFilter(
            statuses=tuple(f["status"].split(",")), account_id=f.get("account_id"),
            department_id=f.get("department_id"), assignee=f.get("assignee"), claimed_by=f.get("claimed_by"),
            limit=limit))
        answer["first"] = {"key": chosen["key"], **page}
    return answer
