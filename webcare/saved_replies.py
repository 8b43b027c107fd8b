"""Saved replies: shared across the organisation, owned by a department, managed by coordinators.

Their text may hold {author}, {agent_initials} and {account}, filled in for one conversation. The
composer finds them by fuzzy search on what is typed (rapidfuzz), or, with nothing typed, by how well
they fit the conversation's question.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rapidfuzz import fuzz, process
from sqlalchemy.exc import IntegrityError

from webcare import style
from webcare.access import Actor
from webcare.assist_models import SavedReply
from webcare.conversations import iso, visible_conversation
from webcare.db import Database
from webcare.errors import Conflict, NotFound
from webcare.models import Account, Department, Message
from webcare.normalize import fold, normalise
from webcare.people import require_department

OVERSEERS = ("coordinator", "admin")
#: Scores (0-100) below these are not worth showing.
QUERY_CUTOFF = 60
CONVERSATION_CUTOFF = 40


def saved_reply_json(r: SavedReply, department: str | None = None) -> dict[str, Any]:
    return {"id": r.id, "department_id": r.department_id, "department": department, "title": r.title,
            "text": r.text, "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}


async def search(db: Database, actor: Actor, *, q: str | None = None, conversation_id: int | None = None,
                 department_id: int | None = None, limit: int = 20) -> dict[str, Any]:
    """Saved replies ranked by ``q`` (fuzzy), else by fit with the conversation; rendered for the conversation."""
    async with db.read() as s:
        stmt = sa.select(SavedReply, Department.name).join(Department, Department.id == SavedReply.department_id)
        if department_id is not None:
            stmt = stmt.where(SavedReply.department_id == department_id)
        rows = (await s.execute(stmt.order_by(SavedReply.title, SavedReply.id))).all()
        conversation = account = None
        question = ""
        if conversation_id is not None:
            conversation = await visible_conversation(s, actor, conversation_id)
            account = await s.get(Account, conversation.account_id)
            question = " ".join(await s.scalars(
                sa.select(Message.text).where(Message.conversation_id == conversation_id, Message.direction == "in")
                .order_by(Message.created_at.desc(), Message.id.desc()).limit(3)))
    values = style.variables(actor.name, conversation, account)
    scored: list[tuple[float, Any]] = []
    if q:
        needle = fold(q).strip()
        titles = [fold(r.title) for r, _ in rows]
        texts = [fold(r.text) for r, _ in rows]
        for i, (row, department) in enumerate(rows):
            score = max(fuzz.partial_ratio(needle, titles[i]), fuzz.WRatio(needle, titles[i]),
                        0.9 * fuzz.partial_ratio(needle, texts[i]) if len(needle) >= 4 else 0,
                        0.9 * fuzz.WRatio(needle, texts[i]))
            if score >= QUERY_CUTOFF:
                scored.append((score, (row, department)))
    elif question:
        asked = normalise(question).text
        choices = [normalise(f"{r.title} {r.text}").text for r, _ in rows]
        for _, score, i in process.extract(asked, choices, scorer=fuzz.token_set_ratio, limit=None,
                                           score_cutoff=CONVERSATION_CUTOFF):
            scored.append((score, rows[i]))
    else:
        scored = [(0.0, row) for row in rows]
    scored.sort(key=lambda pair: (-pair[0], pair[1][0].title))
    items = []
    for score, (row, department) in scored[:limit]:
        item = saved_reply_json(row, department)
        item["score"] = round(score, 1)
        item["rendered"] = style.render(row.text, values)
        items.append(item)
    return {"items": items}


async def render_for(db: Database, actor: Actor, saved_reply_id: int, conversation_id: int | None) -> dict[str, Any]:
    async with db.read() as s:
        row = await s.get(SavedReply, saved_reply_id)
        if row is None:
            raise NotFound(f"saved reply {saved_reply_id} does not exist", code="saved_reply_not_found")
        conversation = account = None
        if conversation_id is not None:
            conversation = await visible_conversation(s, actor, conversation_id)
            account = await s.get(Account, conversation.account_id)
    return {"id": row.id, "text": style.render(row.text, style.variables(actor.name, conversation, account))}


async def text_of(db: Database, saved_reply_id: int) -> str:
    async with db.read() as s:
        text = await s.scalar(sa.select(SavedReply.text).where(SavedReply.id == saved_reply_id))
    if text is None:
        raise NotFound(f"saved reply {saved_reply_id} does not exist", code="saved_reply_not_found")
    return text


async def create(db: Database, actor: Actor, *, department_id: int, title: str, text: str) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    style.check_template(text, "the saved reply")
    try:
        async with db.write() as tx:
            await require_department(tx.session, department_id)
            row = SavedReply(department_id=department_id, title=title, text=text, created_by_id=actor.id,
                             created_at=tx.now, updated_at=tx.now)
            tx.session.add(row)
            await tx.session.flush()
            tx.emit("saved_reply.created", None, actor.id, saved_reply=saved_reply_json(row))
            return saved_reply_json(row)
    except IntegrityError:
        raise _title_taken(title) from None


async def update(db: Database, actor: Actor, saved_reply_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    if fields.get("text") is not None:
        style.check_template(fields["text"], "the saved reply")
    try:
        async with db.write() as tx:
            row = await tx.session.get(SavedReply, saved_reply_id, with_for_update=True)
            if row is None:
                raise NotFound(f"saved reply {saved_reply_id} does not exist", code="saved_reply_not_found")
            if fields.get("department_id") is not None:
                await require_department(tx.session, fields["department_id"])
            for key, value in fields.items():
                if value is not None:
                    setattr(row, key, value)
            row.updated_at = tx.now
            await tx.session.flush()
            tx.emit("saved_reply.updated", None, actor.id, saved_reply=saved_reply_json(row))
            return saved_reply_json(row)
    except IntegrityError:
        raise _title_taken(str(fields.get("title"))) from None


async def delete(db: Database, actor: Actor, saved_reply_id: int) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        gone = (await tx.session.execute(sa.delete(SavedReply).where(SavedReply.id == saved_reply_id)
                                         .returning(SavedReply.id))).scalar_one_or_none()
        if gone is None:
            raise NotFound(f"saved reply {saved_reply_id} does not exist", code="saved_reply_not_found")
        tx.emit("saved_reply.deleted", None, actor.id, saved_reply_id=saved_reply_id)
        return {"id": saved_reply_id, "deleted": True}


def _title_taken(title: str) -> Conflict:
    return Conflict(f"that department has a saved reply titled {title!r} already", code="saved_reply_exists")
