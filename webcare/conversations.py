"""Reading the queue: conversation listings and one conversation with its messages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare.access import Actor, conversation_visible
from webcare.db import Database
from webcare.errors import BadRequest, NotFound
from webcare.models import STATUSES, Account, Conversation, Message, Reply
from webcare.people import names
from webcare.schemas import MAX_ID

MAX_PAGE = 200
#: A Conversation, or a row with the conversations table's columns.
ConversationRow = Any


@dataclass(frozen=True)
class QueueFilter:
    statuses: tuple[str, ...] = ()
    account_id: int | None = None
    department_id: int | None = None
    #: ``me``, a user id, or None.
    assignee: str | None = None
    #: Who holds the claim: ``me``, a user id, or None.
    claimed_by: str | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.statuses if s not in STATUSES]
        if unknown:
            raise BadRequest(f"unknown status {unknown[0]!r}; use {', '.join(STATUSES)}", code="invalid_query")
        if not 1 <= self.limit <= MAX_PAGE:
            raise BadRequest(f"limit must be from 1 to {MAX_PAGE}", code="invalid_query")
        if self.assignee not in (None, "me") and not (
                self.assignee.isascii() and self.assignee.isdigit() and int(self.assignee) <= MAX_ID):
            raise BadRequest("assignee must be 'me' or a user id", code="invalid_query")
        if self.claimed_by not in (None, "me") and not (
                self.claimed_by.isascii() and self.claimed_by.isdigit() and int(self.claimed_by) <= MAX_ID):
            raise BadRequest("claimed_by must be 'me' or a user id", code="invalid_query")
        if self.q is not None and "\x00" in self.q:
            raise BadRequest("q must not contain NUL characters", code="invalid_query")


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


async def conversation_items(session: AsyncSession, conversations: Sequence[ConversationRow],
                             known_users: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """The queue's view of conversations (ORM objects or rows of the conversations table)."""
    known = dict(known_users or {})
    user_ids = {i for c in conversations for i in (c.claimed_by_id, c.assignee_user_id) if i is not None} - set(known)
    department_ids = {c.assignee_department_id for c in conversations if c.assignee_department_id is not None}
    users, departments = await names(session, user_ids, department_ids)
    users.update(known)

    def item(c: ConversationRow) -> dict[str, Any]:
        if c.assignee_user_id is not None:
            assignee: dict[str, Any] | None = {"type": "user", "id": c.assignee_user_id,
                                               "name": users.get(c.assignee_user_id)}
        elif c.assignee_department_id is not None:
            assignee = {"type": "department", "id": c.assignee_department_id,
                        "name": departments.get(c.assignee_department_id)}
        else:
            assignee = None
        return {
            "id": c.id,
            "status": c.status,
            "account_id": c.account_id,
            "subject_preview": c.subject_preview,
            "author": {"id": c.author_id, "handle": c.author_handle, "name": c.author_name},
            "claimed_by": {"id": c.claimed_by_id, "name": users.get(c.claimed_by_id)} if c.claimed_by_id else None,
            "claim_expires_at": iso(c.lease_expires_at),
            "assignee": assignee,
            "waiting_since": iso(c.waiting_since),
            "last_message_at": iso(c.last_message_at),
            "close_reason": c.close_reason,
            "created_at": iso(c.created_at),
        }

    return [item(c) for c in conversations]


async def conversation_item(session: AsyncSession, conversation: ConversationRow,
                            known_users: Mapping[int, str] | None = None) -> dict[str, Any]:
    return (await conversation_items(session, [conversation], known_users))[0]


def message_json(m: Message, reply: Reply | None, user_name: str | None) -> dict[str, Any]:
    if m.direction == "in":
        return inbound_json(m.id, m.text, m.author_external_id, m.author_handle, m.author_name, m.created_at,
                            m.external_id, m.in_reply_to)
    out = {"id": m.id, "direction": m.direction, "text": m.text,
           "author": {"type": "user", "id": m.user_id, "name": user_name},
           "created_at": iso(m.created_at), "external_id": m.external_id, "in_reply_to": m.in_reply_to,
           "state": reply.state if reply else None}
    if reply is not None:
        out["reply"] = {"id": reply.id, "state": reply.state, "error": reply.last_error,
                        "sent_at": iso(reply.sent_at), "attempts": reply.attempts}
    return out


def inbound_json(message_id: int, text: str, author_id: str | None, handle: str | None, name: str | None,
                 created_at: dt.datetime, external_id: str | None, in_reply_to: str | None) -> dict[str, Any]:
    """A message from the public as :func:`message_json` shows it, from its values (ingest has no Message)."""
    return {"id": message_id, "direction": "in", "text": text,
            "author": {"type": "public", "id": author_id, "handle": handle, "name": name},
            "created_at": iso(created_at), "external_id": external_id, "in_reply_to": in_reply_to, "state": None}


async def list_queue(db: Database, actor: Actor, f: QueueFilter) -> dict[str, Any]:
    # Newest activity first, paged by keyset on (last_message_at, id) so pages stay cheap at any depth.
    stmt = sa.select(Conversation).where(conversation_visible(actor))
    if f.statuses:
        stmt = stmt.where(Conversation.status.in_(f.statuses))
    if f.account_id is not None:
        stmt = stmt.where(Conversation.account_id == f.account_id)
    if f.department_id is not None:
        stmt = stmt.where(sa.or_(
            Conversation.assignee_department_id == f.department_id,
            Conversation.account_id.in_(sa.select(Account.id).where(Account.department_id == f.department_id)),
        ))
    if f.assignee is not None:
        if f.assignee == "me":
            # Mine: escalated to me by name, or to my department's experts.
            mine = Conversation.assignee_user_id == actor.id
            if actor.department_id is not None:
                mine = sa.or_(mine, Conversation.assignee_department_id == actor.department_id)
            stmt = stmt.where(mine)
        else:
            stmt = stmt.where(Conversation.assignee_user_id == int(f.assignee))
    if f.claimed_by is not None:
        stmt = stmt.where(Conversation.claimed_by_id == (actor.id if f.claimed_by == "me" else int(f.claimed_by)))
    if f.q:
        needle = f.q.lower()
        stmt = stmt.where(sa.or_(
            sa.func.lower(Conversation.author_handle).contains(needle, autoescape=True),
            sa.func.lower(Conversation.author_name).contains(needle, autoescape=True),
            Conversation.id.in_(sa.select(Message.conversation_id)
                                .where(sa.func.lower(Message.text).contains(needle, autoescape=True))),
        ))
    if f.cursor:
        at, last_id = _decode_cursor(f.cursor)
        stmt = stmt.where(sa.or_(Conversation.last_message_at < at,
                                 sa.and_(Conversation.last_message_at == at, Conversation.id < last_id)))
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(f.limit + 1)
    async with db.read() as s:
        rows = list(await s.scalars(stmt))
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        items = await conversation_items(s, rows)
    next_cursor = _encode_cursor(rows[-1]) if more else None
    return {"items": items, "next_cursor": next_cursor}


async def get_conversation(db: Database, actor: Actor, conversation_id: int) -> dict[str, Any]:
    from webcare.assist import conversation_extras  # here: smart assist builds on this module

    async with db.read() as s:
        conversation = await visible_conversation(s, actor, conversation_id)
        item = await conversation_item(s, conversation)
        rows = (await s.execute(
            sa.select(Message, Reply).outerjoin(Reply, Reply.message_id == Message.id)
            .where(Message.conversation_id == conversation_id).order_by(Message.created_at, Message.id)
        )).all()
        users, _ = await names(s, {m.user_id for m, _ in rows if m.user_id is not None}, set())
        extras = await conversation_extras(s, actor, conversation_id)
    item["messages"] = [message_json(m, r, users.get(m.user_id) if m.user_id else None) for m, r in rows]
    item.update(extras)
    return item


async def visible_conversation(session: AsyncSession, actor: Actor, conversation_id: int,
                               *, fresh: bool = False) -> Conversation:
    stmt = sa.select(Conversation).where(Conversation.id == conversation_id, conversation_visible(actor))
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    conversation = await session.scalar(stmt)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist", code="conversation_not_found")
    return conversation


def _encode_cursor(c: Conversation) -> str:
    raw = json.dumps([c.last_message_at.isoformat(), c.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        at, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = dt.datetime.fromisoformat(at)
        if type(last_id) is not int or not 0 <= last_id <= MAX_ID or when.tzinfo is None:
            raise ValueError
        return when.astimezone(dt.UTC), last_id
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise BadRequest("that cursor is not one this server handed out", code="invalid_cursor") from None
