"""Taking messages in: deduplicate, thread, open or reopen a conversation, all in one transaction.

The unique constraint on (account, external_id) decides what is a duplicate, never a look-up alone:
two deliveries of one message racing each other store it once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import InboundMessage
from webcare import metrics
from webcare.assist import new_conversations as assist_new_conversations
from webcare.conversations import inbound_json, message_json
from webcare.db import Database, Tx
from webcare.models import Account, Conversation, Message

PREVIEW_LENGTH = 140
_CONVERSATIONS = cast(sa.Table, Conversation.__table__)
_MESSAGES = cast(sa.Table, Message.__table__)


@dataclass(frozen=True)
class Ingested:
    conversation_id: int
    message_id: int
    created: bool


class _Duplicate(Exception):
    """Rolls back the transaction that lost a race to store the same message."""


async def ingest(db: Database, account_id: int, message: InboundMessage) -> Ingested:
    try:
        async with db.write() as tx:
            existing = await _existing(tx.session, account_id, message.external_id)
            if existing is not None:
                return existing
            return await ingest_in(tx, account_id, message)
    except _Duplicate:
        async with db.read() as session:
            existing = await _existing(session, account_id, message.external_id)
        assert existing is not None, "a message that lost the race must be there"
        return existing


async def store_page(db: Database, account_id: int, messages: Sequence[InboundMessage],
                     also: Callable[[Tx], Awaitable[None]]) -> int:
    """Store a page of fetched messages and run ``also`` (storing the cursor) in the same transaction;
    the number of messages that were new.

    Messages that start a conversation of their own are stored in bulk, a few statements for the whole
    page; those that continue one (a reply, a thread) follow one by one, oldest first, so a reply finds
    the message it answers even within the page. A message that another writer stores meanwhile makes
    the whole page start again, and the second pass skips it.
    """
    ordered = sorted({m.external_id: m for m in messages}.values(), key=lambda m: m.created_at)
    for _ in range(5):
        try:
            async with db.write() as tx:
                # One writer per account at a time, across processes (SQLite has one writer anyway):
                # a reply stored beside the message it answers would not see it and open a second conversation.
                department_id, settings, known = await _lock_account(tx.session, account_id,
                                                                     [m.external_id for m in ordered])
                new = [m for m in ordered if m.external_id not in known]
                linked = await _continuing(tx.session, account_id, new)
                fresh = [m for m in new if m.external_id not in linked]
                await _store_fresh(tx, account_id, department_id, settings, fresh)
                for message in new:
                    if message.external_id in linked:
                        await ingest_in(tx, account_id, message)
                await also(tx)
                return len(new)
        except _Duplicate:
            continue
    raise RuntimeError(f"a page for account {account_id} kept colliding with other writers")


async def _lock_account(session: AsyncSession, account_id: int, external_ids: list[str]
                        ) -> tuple[int, dict[str, Any], set[str | None]]:
    """Lock the account's row for this page; its department, its settings and which of ``external_ids`` are
    stored already."""
    if session.get_bind().dialect.name == "postgresql":
        row = (await session.execute(_PG_LOCK, {"account_id": account_id, "ids": external_ids})).one()
        return row[0], row[1], set(row[2])
    # SQLite: one writer holds the database already; no arrays, so an expanding IN.
    department_id, settings = (await session.execute(_SQLITE_ACCOUNT, {"account_id": account_id})).one()
    known = set(await session.scalars(_SQLITE_KNOWN, {"account_id": account_id, "ids": external_ids})
                ) if external_ids else set()
    return department_id, settings, known


# One round trip: the lock, the department, the settings and the duplicates (an array parameter, so the
# statement is prepared once for any page size).
_PG_LOCK = sa.select(Account.department_id, Account.settings, sa.func.array(
    sa.select(_MESSAGES.c.external_id)
    .where(_MESSAGES.c.account_id == sa.bindparam("account_id"), _MESSAGES.c.external_id == sa.any_(
        sa.bindparam("ids", type_=ARRAY(sa.String)))).scalar_subquery())
).where(Account.id == sa.bindparam("account_id")).with_for_update(of=Account)
_SQLITE_ACCOUNT = sa.select(Account.department_id, Account.settings).where(Account.id == sa.bindparam("account_id"))
_SQLITE_KNOWN = sa.select(_MESSAGES.c.external_id).where(
    _MESSAGES.c.account_id == sa.bindparam("account_id"), _MESSAGES.c.external_id.in_(sa.bindparam("ids",
                                                                                                 expanding=True)))


async def _continuing(session: AsyncSession, account_id: int, messages: Sequence[InboundMessage]) -> set[str]:
    """The external ids of the messages that continue a conversation: by reply or thread, to a stored
    message or to an earlier one in the same page."""
    replies_to = {m.in_reply_to for m in messages if m.in_reply_to}
    threads = {m.thread_id for m in messages if m.thread_id}
    stored_parents: set[str] = set()
    stored_threads: set[str] = set()
    if replies_to:
        stored_parents = set(await session.scalars(sa.select(Message.external_id).where(
            Message.account_id == account_id, Message.external_id.in_(replies_to))))
    if threads:
        stored_threads = set(await session.scalars(sa.select(Message.thread_id).where(
            Message.account_id == account_id, Message.thread_id.in_(threads))))
    continuing: set[str] = set()
    seen_ids: set[str] = set()
    seen_threads: set[str] = set()
    for m in messages:
        if (m.in_reply_to and (m.in_reply_to in stored_parents or m.in_reply_to in seen_ids)) or (
                m.thread_id and (m.thread_id in stored_threads or m.thread_id in seen_threads)):
            continuing.add(m.external_id)
        seen_ids.add(m.external_id)
        if m.thread_id:
            seen_threads.add(m.thread_id)
    return continuing


async def _store_fresh(tx: Tx, account_id: int, department_id: int, settings: dict[str, Any],
                       messages: Sequence[InboundMessage]) -> None:
    """Messages that each open a new conversation: one statement on PostgreSQL, three on SQLite, however
    many there are."""
    if not messages:
        return
    session = tx.session
    if session.get_bind().dialect.name == "postgresql":
        conversation_ids, message_ids = await _insert_fresh_pg(tx, account_id, department_id, messages)
    else:
        conversation_ids, message_ids = await _insert_fresh_sqlite(tx, account_id, department_id, messages)
    for m, conversation_id, message_id in zip(messages, conversation_ids, message_ids, strict=True):
        tx.emit("conversation.created", conversation_id, None, account_id=account_id,
                author={"id": m.author.id, "handle": m.author.handle, "name": m.author.name},
                subject_preview=_preview(m.text))
        tx.emit("message.received", conversation_id, None, message=inbound_json(
            message_id, m.text, m.author.id, m.author.handle, m.author.name, m.created_at, m.external_id,
            m.in_reply_to))
    await assist_new_conversations(tx, account_id, list(zip(conversation_ids, messages, strict=True)), settings)


async def _insert_fresh_pg(tx: Tx, account_id: int, department_id: int, messages: Sequence[InboundMessage]
                           ) -> tuple[list[int], list[int]]:
    """Conversations, messages and metrics rows in one statement, the page as one array per column (so
    it is prepared once for any page size); the conversation and message ids, in the order of ``messages``."""
    metrics_rows = await metrics.start_rows(tx, account_id, department_id, [(None, m.created_at) for m in messages])
    params: dict[str, Any] = {
        "account_id": account_id, "department_id": department_id, "now": tx.now,
        "author_id": [m.author.id for m in messages], "author_handle": [m.author.handle for m in messages],
        "author_name": [m.author.name for m in messages], "preview": [_preview(m.text) for m in messages],
        "posted_at": [m.created_at for m in messages], "external_id": [m.external_id for m in messages],
        "in_reply_to": [m.in_reply_to for m in messages], "thread_id": [m.thread_id for m in messages],
        "text": [m.text for m in messages],
        **{k: [r[k] for r in metrics_rows] for k in ("fr_target_id", "fr_due_at", "res_target_id", "res_due_at")}}
    stored = {n: (conversation_id, message_id)
              for n, conversation_id, message_id in await tx.session.execute(_PG_FRESH, params)}
    if len(stored) != len(messages):
        raise _Duplicate
    ordered = [stored[n] for n in range(1, len(messages) + 1)]
    return [c for c, _ in ordered], [m for _, m in ordered]


# Each conversation's id is taken from its sequence in the statement itself; the i-th smallest goes to the
# i-th message, so ids follow the page's order as they would one insert at a time. The metrics rows and
# messages refer to conversations inserted by the same statement: foreign keys are checked at its end.
_PG_FRESH = sa.text("""
WITH page AS (
    SELECT * FROM unnest(
        CAST(:author_id AS text[]), CAST(:author_handle AS text[]), CAST(:author_name AS text[]),
        CAST(:preview AS text[]), CAST(:posted_at AS timestamptz[]), CAST(:external_id AS text[]),
        CAST(:in_reply_to AS text[]), CAST(:thread_id AS text[]), CAST(:text AS text[]),
        CAST(:fr_target_id AS int[]), CAST(:fr_due_at AS timestamptz[]), CAST(:res_target_id AS int[]),
        CAST(:res_due_at AS timestamptz[])
    ) WITH ORDINALITY AS p(author_id, author_handle, author_name, preview, posted_at, external_id, in_reply_to,
                           thread_id, text, fr_target_id, fr_due_at, res_target_id, res_due_at, n)
),
ids AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM (SELECT nextval(pg_get_serial_sequence('conversations', 'id')) AS id FROM page) AS taken
),
new AS MATERIALIZED (SELECT ids.id, page.* FROM page JOIN ids USING (n)),
conversations AS (
    INSERT INTO conversations (id, account_id, status, author_id, author_handle, author_name, subject_preview,
                               waiting_since, last_message_at, created_at, updated_at, version)
    SELECT id, :account_id, 'open', author_id, author_handle, author_name, preview, posted_at, posted_at,
           :now, :now, 1
    FROM new
),
metrics AS (
    INSERT INTO conversation_metrics (conversation_id, account_id, department_id, started_at, replies, escalated,
                                      reopened, fr_target_id, fr_due_at, res_target_id, res_due_at)
    SELECT id, :account_id, :department_id, posted_at, 0, false, 0, fr_target_id, fr_due_at, res_target_id,
           res_due_at
    FROM new
),
stored AS (
    INSERT INTO messages (conversation_id, account_id, direction, external_id, in_reply_to, thread_id, text,
                          author_external_id, author_handle, author_name, created_at, received_at)
    SELECT id, :account_id, 'in', external_id, in_reply_to, thread_id, text, author_id, author_handle,
           author_name, posted_at, :now
    FROM new
    ON CONFLICT (account_id, external_id) DO NOTHING
    RETURNING conversation_id, id
)
SELECT new.n, stored.conversation_id, stored.id FROM stored JOIN new ON new.id = stored.conversation_id
""")


async def _insert_fresh_sqlite(tx: Tx, account_id: int, department_id: int, messages: Sequence[InboundMessage]
                               ) -> tuple[list[int], list[int]]:
    session = tx.session
    conversations = [
        {"account_id": account_id, "status": "open", "author_id": m.author.id, "author_handle": m.author.handle,
         "author_name": m.author.name, "subject_preview": _preview(m.text), "waiting_since": m.created_at,
         "last_message_at": m.created_at, "created_at": tx.now, "updated_at": tx.now, "version": 1}
        for m in messages]
    # SQLite cannot promise RETURNING's order for many rows, so SQLAlchemy would insert them one statement
    # each. This transaction is the only writer (BEGIN IMMEDIATE), so the next ids are ours to give.
    last = await session.scalar(sa.select(sa.func.max(_CONVERSATIONS.c.id))) or 0
    conversation_ids = list(range(last + 1, last + 1 + len(conversations)))
    # Core inserts on the tables: the ORM's bulk machinery costs more than the statements themselves.
    await session.execute(sa.insert(_CONVERSATIONS),
                          [{"id": cid, **row} for cid, row in zip(conversation_ids, conversations, strict=True)])
    rows = [_message_row(account_id, conversation_id, m, tx.now)
            for m, conversation_id in zip(messages, conversation_ids, strict=True)]
    # Matched by external id, so in any order: one multi-row statement.
    result = await session.execute(
        sqlite_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["account_id", "external_id"])
        .returning(_MESSAGES.c.external_id, _MESSAGES.c.id), rows)
    stored: dict[str, int] = {external_id: message_id for external_id, message_id in result}
    if len(stored) != len(rows):
        raise _Duplicate
    await metrics.started(tx, account_id, [(conversation_id, m.created_at)
                                           for m, conversation_id in zip(messages, conversation_ids, strict=True)],
                          department_id=department_id)
    return conversation_ids, [stored[m.external_id] for m in messages]


def _message_row(account_id: int, conversation_id: int, m: InboundMessage, now: dt.datetime) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "account_id": account_id, "direction": "in",
            "external_id": m.external_id, "in_reply_to": m.in_reply_to, "thread_id": m.thread_id, "text": m.text,
            "author_external_id": m.author.id, "author_handle": m.author.handle, "author_name": m.author.name,
            "created_at": m.created_at, "received_at": now}


async def ingest_in(tx: Tx, account_id: int, message: InboundMessage) -> Ingested:
    """Store one new inbound message inside ``tx``; raises _Duplicate when it was stored meanwhile."""
    session = tx.session
    conversation = await _thread(session, account_id, message)
    is_new = conversation is None
    if conversation is None:
        conversation = Conversation(
            account_id=account_id, status="open", author_id=message.author.id,
            author_handle=message.author.handle, author_name=message.author.name,
            subject_preview=_preview(message.text), waiting_since=message.created_at,
            last_message_at=message.created_at, created_at=tx.now, updated_at=tx.now,
        )
        session.add(conversation)
        await session.flush()
        tx.emit("conversation.created", conversation.id, None, account_id=account_id,
                author={"id": message.author.id, "handle": message.author.handle, "name": message.author.name},
                subject_preview=conversation.subject_preview)
        await metrics.started(tx, account_id, [(conversation.id, message.created_at)])
    message_id = await _insert_message(session, tx, conversation, account_id, message)
    if message_id is None:
        raise _Duplicate
    if not is_new:
        await _follow_up(tx, conversation, message)
    stored = await session.get(Message, message_id)
    assert stored is not None
    tx.emit("message.received", conversation.id, None, message=message_json(stored, None, None))
    if is_new:
        await assist_new_conversations(tx, account_id, [(conversation.id, message)])
    return Ingested(conversation.id, message_id, True)


async def _existing(session: AsyncSession, account_id: int, external_id: str) -> Ingested | None:
    row = (await session.execute(
        sa.select(Message.id, Message.conversation_id)
        .where(Message.account_id == account_id, Message.external_id == external_id)
    )).first()
    return Ingested(row.conversation_id, row.id, False) if row else None


async def _thread(session: AsyncSession, account_id: int, message: InboundMessage) -> Conversation | None:
    """The conversation this message continues: the one holding the message it replies to, else the
    latest one of its platform thread (a direct-message conversation has no reply chain)."""
    if message.in_reply_to:
        found = await session.scalar(
            sa.select(Conversation)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.account_id == account_id, Message.external_id == message.in_reply_to)
            .execution_options(populate_existing=True)
        )
        if found is not None:
            return found
    if message.thread_id:
        return await session.scalar(
            sa.select(Conversation)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.account_id == account_id, Message.thread_id == message.thread_id)
            .order_by(Conversation.id.desc()).limit(1)
            .execution_options(populate_existing=True)
        )
    return None


async def _insert_message(session: AsyncSession, tx: Tx, conversation: Conversation, account_id: int,
                          message: InboundMessage) -> int | None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(Message).values(**_message_row(account_id, conversation.id, message, tx.now))
        .on_conflict_do_nothing(index_elements=["account_id", "external_id"])
        .returning(Message.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _follow_up(tx: Tx, conversation: Conversation, message: InboundMessage) -> None:
    """A new message in an existing conversation: it waits again, and an answered or closed one reopens."""
    c = Conversation
    for _ in range(10):
        current = await tx.session.scalar(
            sa.select(c).where(c.id == conversation.id).execution_options(populate_existing=True))
        assert current is not None
        # Read before the UPDATE: the ORM update synchronises ``current`` to the new values.
        previous_status = current.status
        reopen = previous_status in ("answered", "closed")
        values: dict[str, Any] = {
            "last_message_at": max(current.last_message_at, message.created_at),
            "waiting_since": min(current.waiting_since, message.created_at) if current.waiting_since
            else message.created_at,
        }
        if reopen:
            values.update(status="open", close_reason=None, claimed_by_id=None, claimed_at=None,
                          lease_expires_at=None, assignee_user_id=None, assignee_department_id=None)
        done = (await tx.session.execute(
            sa.update(c).where(c.id == current.id, c.version == current.version)
            .values(**values, version=current.version + 1, updated_at=tx.now).returning(c.id)
        )).scalar_one_or_none()
        if done is not None:
            if reopen:
                tx.emit("conversation.reopened", conversation.id, None, reason="new_message",
                        previous_status=previous_status)
                await metrics.reopened(tx, conversation.id, message.created_at)
            return
    raise RuntimeError(f"conversation {conversation.id} kept changing while a message was added")


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"
