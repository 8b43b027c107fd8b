"""The live backlog (what waits now, the oldest, what is about to breach) and the CSV exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from webcare.conversations import iso
from webcare.db import Database
from webcare.metrics_models import ConversationMetrics
from webcare.models import Account, Conversation, Department, User, utcnow

M = ConversationMetrics
C = Conversation
WAITING = ("open", "claimed", "escalated")
LISTED = 100
EXPORT_PAGE = 2000


def _seconds(since: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if since is None else round((now - since).total_seconds(), 1)


async def backlog(db: Database, *, within_seconds: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Counts per account and department of what is not closed, the oldest waiting, and the targets
    due within ``within_seconds`` (``at_risk``) or already breached and still unmet (``breached``)."""
    now = now or utcnow()
    async with db.read() as s:
        counts = (await s.execute(
            sa.select(C.account_id, Account.name, Account.department_id, Department.name, C.status,
                      sa.func.count(), sa.func.min(C.waiting_since))
            .join(Account, Account.id == C.account_id).join(Department, Department.id == Account.department_id)
            .where(C.status != "closed")
            .group_by(C.account_id, Account.name, Account.department_id, Department.name, C.status)
        )).all()
        oldest = (await s.execute(
            sa.select(C.id, C.account_id, C.status, C.waiting_since, C.subject_preview)
            .where(C.status.in_(WAITING), C.waiting_since.is_not(None))
            .order_by(C.waiting_since, C.id).limit(10)
        )).all()
        horizon = now + dt.timedelta(seconds=within_seconds)
        at_risk = await _targets(s, now, horizon, pending=True)
        breached = await _targets(s, now, horizon, pending=False)

    def empty(key: int, name: str) -> dict[str, Any]:
        return {"key": key, "name": name, "open": 0, "claimed": 0, "escalated": 0, "answered": 0, "waiting": 0,
                "oldest_waiting_since": None, "oldest_waiting_seconds": None}

    accounts: dict[int, dict[str, Any]] = {}
    departments: dict[int, dict[str, Any]] = {}
    overall = empty(0, "")
    for account_id, account_name, department_id, department_name, status, n, since in counts:
        for table, key, name in ((accounts, account_id, account_name), (departments, department_id, department_name)):
            group = table.setdefault(key, empty(key, name))
            if table is accounts:
                group["department_id"] = department_id
            _count(group, status, n, since, now)
        _count(overall, status, n, since, now)
    del overall["key"], overall["name"]
    return {
        "now": iso(now), "within_seconds": within_seconds, "overall": overall,
        "accounts": sorted(accounts.values(), key=lambda g: (-g["waiting"], g["name"].lower(), g["key"])),
        "departments": sorted(departments.values(), key=lambda g: (-g["waiting"], g["name"].lower(), g["key"])),
        "oldest_waiting": [{"conversation_id": r.id, "account_id": r.account_id, "status": r.status,
                            "waiting_since": iso(r.waiting_since), "waiting_seconds": _seconds(r.waiting_since, now),
                            "subject_preview": r.subject_preview} for r in oldest],
        "at_risk": at_risk, "breached": breached,
    }


def _count(group: dict[str, Any], status: str, n: int, since: dt.datetime | None, now: dt.datetime) -> None:
    group[status] = group.get(status, 0) + n
    if status in WAITING:
        group["waiting"] += n
        if since is not None and (group["oldest_waiting_since"] is None or iso(since) < group["oldest_waiting_since"]):
            group["oldest_waiting_since"] = iso(since)
            group["oldest_waiting_seconds"] = _seconds(since, now)


async def _targets(s: Any, now: dt.datetime, horizon: dt.datetime, *, pending: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for target, sla, due, done in (("first_response", M.fr_sla, M.fr_due_at, M.first_response_at),
                                   ("resolution", M.res_sla, M.res_due_at, M.resolved_at)):
        condition = sa.and_(sla.is_(None), due > now, due <= horizon) if pending else sla == "breached"
        rows = (await s.execute(
            sa.select(M.conversation_id, M.account_id, M.department_id, due, C.status, C.waiting_since,
                      C.subject_preview)
            .join(C, C.id == M.conversation_id)
            .where(condition, done.is_(None), C.status != "closed")
            .order_by(due, M.conversation_id).limit(LISTED)
        )).all()
        out += [{"conversation_id": r[0], "account_id": r[1], "department_id": r[2], "target": target,
                 "due_at": iso(r[3]), "seconds_left": _seconds(now, r[3]), "status": r[4],
                 "waiting_since": iso(r[5]), "subject_preview": r[6]} for r in rows]
    out.sort(key=lambda item: (item["due_at"], item["conversation_id"]))
    return out[:LISTED]


# ---------------------------------------------------------------------------------------------- CSV


def _cell(value: Any) -> Any:
    # Text from the public must not turn into a formula in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, dt.datetime):
        return iso(value)
    return "" if value is None else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def stats_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The response-times report as one table: the overall row first, then a row per group."""
    header = ["key", "name", "first_response_count", "first_response_median", "first_response_p90",
              "resolution_count", "resolution_median", "resolution_p90", "sla_hits", "sla_breaches"]

    def row(key: Any, name: Any, g: dict[str, Any]) -> list[Any]:
        fr, res = g["first_response"], g["resolution"]
        return [key, name, fr["count"], fr["median"], fr["p90"], res["count"], res["median"], res["p90"],
                g["sla"]["hits"], g["sla"]["breaches"]]

    rows = [row("overall", "", report["overall"])]
    rows += [row(g["key"], g["name"], g) for g in report["groups"]]
    return header, rows


def backlog_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["kind", "key", "name", "open", "claimed", "escalated", "answered", "waiting", "oldest_waiting_since",
              "oldest_waiting_seconds"]
    rows = []
    for kind in ("accounts", "departments"):
        for g in report[kind]:
            rows.append([kind[:-1], g["key"], g["name"], g["open"], g["claimed"], g["escalated"], g["answered"],
                         g["waiting"], g["oldest_waiting_since"], g["oldest_waiting_seconds"]])
    return header, rows


CONVERSATION_HEADER = [
    "conversation_id", "account_id", "account", "department_id", "department", "status", "close_reason",
    "author_handle", "started_at", "first_response_at", "first_response_seconds", "answered_by_id", "answered_by",
    "resolved_at", "resolution_seconds", "replies", "escalated", "reopened", "first_response_due_at",
    "first_response_sla", "resolution_due_at", "resolution_sla",
]


async def conversation_csv(db: Database, start: dt.datetime | None, end: dt.datetime | None,
                           ) -> AsyncIterator[str]:
    """Conversations that started within [start, end) with their metrics, streamed a page at a time."""
    yield csv_text(CONVERSATION_HEADER, [])
    after = 0
    while True:
        q = (sa.select(M.conversation_id, M.account_id, Account.name, M.department_id, Department.name, C.status,
                       C.close_reason, C.author_handle, M.started_at, M.first_response_at, M.first_response_seconds,
                       M.first_responder_id, User.name, M.resolved_at, M.resolution_seconds, M.replies, M.escalated,
                       M.reopened, M.fr_due_at, M.fr_sla, M.res_due_at, M.res_sla)
             .join(C, C.id == M.conversation_id).join(Account, Account.id == M.account_id)
             .join(Department, Department.id == M.department_id)
             .outerjoin(User, User.id == M.first_responder_id)
             .where(M.conversation_id > after).order_by(M.conversation_id).limit(EXPORT_PAGE))
        if start is not None:
            q = q.where(M.started_at >= start)
        if end is not None:
            q = q.where(M.started_at < end)
        async with db.read() as s:
            rows = (await s.execute(q)).all()
        if not rows:
            return
        text = csv_text(CONVERSATION_HEADER, [[*r[:16], "true" if r[16] else "false", *r[17:]] for r in rows])
        yield text.split("\r\n", 1)[1]
        after = rows[-1][0]
