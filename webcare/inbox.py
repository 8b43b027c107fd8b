"""The inbox service: every change to a conversation's life cycle, each in one transaction with its event.

Claim is one conditional UPDATE, so of two people claiming at once exactly one wins. The other verbs
read the conversation, decide by its state, and write only if the version they read is still
current; a concurrent change makes them read and decide again.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from webcare import metrics
from webcare.access import Actor, conversation_visible
from webcare.approval import admit, announce
from webcare.conversations import conversation_item, iso, message_json, visible_conversation
from webcare.db import Database, Tx
from webcare.errors import AlreadyClaimed, Conflict, InvalidState, NotFound, RuleViolation
from webcare.models import (
    ON_ITS_WAY,
    Account,
    Conversation,
    Department,
    Event,
    EventCounter,
    Message,
    Reply,
    User,
    utcnow,
)
from webcare.people import require_department, require_user
from webcare.reply_window import check_reply_window
from webcare.settings import Settings

C = Conversation
#: The table itself, for the hot path: a Core UPDATE skips the ORM's bookkeeping.
T = cast(sa.Table, Conversation.__table__)
Values = dict[str, Any]

# Claim is the hottest write, so its statements are built once; the second adds the visibility rule
# of access.account_visible for people who do not see every account.
_CLAIM = (
    sa.update(T)
    .where(T.c.id == sa.bindparam("cid"), T.c.status != "closed",
           sa.or_(T.c.claimed_by_id.is_(None), T.c.lease_expires_at <= sa.bindparam("now")))
    .values(status=sa.case((T.c.status == "escalated", "escalated"), else_="claimed"),
            claimed_by_id=sa.bindparam("actor"), claimed_at=sa.bindparam("now"), lease_expires_at=sa.bindparam("lease"),
            updated_at=sa.bindparam("now"), version=T.c.version + 1)
    .returning(*T.c)
)
_CLAIM_VISIBLE = _CLAIM.where(T.c.account_id.in_(
    sa.select(Account.id)
    .where(sa.or_(Account.restricted.is_(False), Account.department_id == sa.bindparam("department")))
))



def _with_claimed_event(claim: sa.Update) -> sa.Select[Any]:
    """``claim`` as a CTE that also takes the next event number and writes conversation.claimed (PostgreSQL)."""
    events, counter_table = cast(sa.Table, Event.__table__), cast(sa.Table, EventCounter.__table__)
    claimed = claim.cte("claimed")
    counter = (
        sa.update(counter_table)
        .where(counter_table.c.id == 1, sa.exists(sa.select(claimed.c.id)))
        .values(last_seq=counter_table.c.last_seq + 1)
        .returning(counter_table.c.last_seq)
        .cte("counter")
    )
    event = sa.insert(events).from_select(
        ["seq", "type", "conversation_id", "actor_id", "at", "data"],
        sa.select(counter.c.last_seq, sa.literal("conversation.claimed"), claimed.c.id, claimed.c.claimed_by_id,
                  claimed.c.claimed_at, sa.cast(sa.bindparam("data", type_=sa.String), JSONB))
        .select_from(counter.join(claimed, sa.true())),
    ).cte("event")
    return sa.select(claimed, counter.c.last_seq).select_from(claimed.join(counter, sa.true())).add_cte(event)


_PG_CLAIM = _with_claimed_event(_CLAIM)
_PG_CLAIM_VISIBLE = _with_claimed_event(_CLAIM_VISIBLE)

_UNCLAIMED: Values = {"claimed_by_id": None, "claimed_at": None, "lease_expires_at": None}


@dataclass(frozen=True)
class Before:
    """What a conversation looked like when a change decided on it."""

    status: str
    claimed_by_id: int | None
    lease_expires_at: dt.datetime | None

    def claimed_by_other(self, actor: Actor, now: dt.datetime) -> bool:
        return (self.claimed_by_id is not None and self.claimed_by_id != actor.id
                and self.lease_expires_at is not None and self.lease_expires_at > now)


class Inbox:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def _lease(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.settings.claim_lease_seconds)

    async def claim(self, actor: Actor, conversation_id: int) -> dict[str, Any]:
        if not self.db.is_sqlite:
            claimed = await self._claim_in_one_statement(actor, conversation_id)
            if claimed is not None:
                return claimed
        async with self.db.write() as tx:
            now = tx.now
            lease = self._lease(now)
            stmt = _CLAIM if actor.sees_everything else _CLAIM_VISIBLE
            won = (await tx.session.execute(stmt, {"cid": conversation_id, "actor": actor.id, "now": now,
                                                   "lease": lease, "department": actor.department_id})).first()
            if won is not None:
                tx.emit("conversation.claimed", conversation_id, actor.id, claimed_by=actor.id,
                        lease_expires_at=iso(lease))
                return await conversation_item(tx.session, won, known_users={actor.id: actor.name})
            conversation = await visible_conversation(tx.session, actor, conversation_id)
            if conversation.status == "closed":
                raise InvalidState("this conversation is closed; reopen it before claiming it")
            if conversation.claimed_by_id != actor.id:
                raise await _already_claimed(tx, conversation.claimed_by_id)
            # Claiming what one already has renews the lease.
            renewed = (await tx.session.scalars(
                sa.update(C).where(C.id == conversation_id, C.claimed_by_id == actor.id)
                .values(lease_expires_at=lease, version=C.version + 1).returning(C)
            )).one_or_none()
            if renewed is None:
                raise InvalidState("this conversation changed while you claimed it; look again")
            return await conversation_item(tx.session, renewed)

    async def _claim_in_one_statement(self, actor: Actor, conversation_id: int) -> dict[str, Any] | None:
        """PostgreSQL: the claim, its event number and its event row in one autocommitted statement.

        One round trip instead of four (BEGIN, UPDATE, events, COMMIT); the counter row's lock still
        orders the commit. None when the claim did not win: the caller explains why in a transaction.
        """
        now = utcnow()
        lease = self._lease(now)
        data = json.dumps({"claimed_by": actor.id, "lease_expires_at": iso(lease)})
        stmt = _PG_CLAIM if actor.sees_everything else _PG_CLAIM_VISIBLE
        async with self.db.connect() as conn:
            won = (await conn.execute(stmt, {"cid": conversation_id, "actor": actor.id, "now": now, "lease": lease,
                                             "department": actor.department_id, "data": data})).first()
        if won is None:
            return None
        self.db.committed(won.last_seq)
        async with self.db.read() as session:
            return await conversation_item(session, won, known_users={actor.id: actor.name})

    async def release(self, actor: Actor, conversation_id: int) -> dict[str, Any]:
        def decide(c: Conversation, before: Before) -> Values:
            if c.claimed_by_id is not None and (c.claimed_by_id == actor.id or actor.oversees):
                return {**_UNCLAIMED, "status": "open" if c.status == "claimed" else c.status}
            if c.status == "escalated" and (actor.oversees or c.assignee_user_id == actor.id or (
                    c.assignee_department_id is not None and c.assignee_department_id == actor.department_id)):
                # The expert hands it back to the queue.
                return {"status": "open", "assignee_user_id": None, "assignee_department_id": None}
            raise InvalidState("you have not claimed this conversation, nor is it escalated to you",
                               code="not_claimed")

        async with self.db.write() as tx:
            before, conversation = await self._change(tx, actor, conversation_id, decide)
            tx.emit("conversation.released", conversation_id, actor.id, reason="released",
                    previous_claimed_by=before.claimed_by_id,
                    handed_back=before.status == "escalated" and conversation.status == "open")
            return await conversation_item(tx.session, conversation)

    async def escalate(self, actor: Actor, conversation_id: int, *, user_id: int | None, department_id: int | None,
                       note: str) -> dict[str, Any]:
        async with self.db.write() as tx:
            target: dict[str, Any]
            current = await visible_conversation(tx.session, actor, conversation_id)
            if user_id is not None:
                user = await require_user(tx.session, user_id)
                target = {"type": "user", "id": user.id, "name": user.name}
                if await tx.session.scalar(sa.select(C.id).where(
                        C.id == conversation_id, conversation_visible(Actor.of(user)))) is None:
                    raise RuleViolation(f"{user.name} cannot see this conversation's account",
                                        code="assignee_cannot_see")
            else:
                assert department_id is not None
                department: Department = await require_department(tx.session, department_id)
                target = {"type": "department", "id": department.id, "name": department.name}
                account = await tx.session.get(Account, current.account_id)
                if account is not None and account.restricted and account.department_id != department_id:
                    raise RuleViolation(f"{department.name} cannot see this conversation's restricted account",
                                        code="assignee_cannot_see")

            def decide(c: Conversation, before: Before) -> Values:
                if c.status == "closed":
                    raise InvalidState("this conversation is closed; reopen it before escalating it")
                if before.claimed_by_other(actor, tx.now) and not actor.oversees:
                    raise _ClaimedBy(before.claimed_by_id)
                return {**_UNCLAIMED, "status": "escalated", "assignee_user_id": user_id,
                        "assignee_department_id": department_id}

            _, conversation = await self._change_explained(tx, actor, conversation_id, decide)
            message = await _add_message(tx, conversation, actor, "note", note)
            await metrics.escalated(tx, conversation_id)
            tx.emit("conversation.escalated", conversation_id, actor.id, to=target, note=note, message_id=message.id)
            return await conversation_item(tx.session, conversation)

    async def add_note(self, actor: Actor, conversation_id: int, text: str) -> dict[str, Any]:
        async with self.db.write() as tx:
            conversation = await visible_conversation(tx.session, actor, conversation_id)
            await self._renew_lease(tx, actor, conversation_id)
            message = await _add_message(tx, conversation, actor, "note", text)
            body = message_json(message, None, actor.name)
            tx.emit("note.added", conversation_id, actor.id, message=body)
            return body

    async def reply(self, actor: Actor, conversation_id: int, text: str, *, once: bool = False) -> dict[str, Any]:
        """Record a reply in the outbox. With ``once``, a conversation that has a reply on its way already
        is refused (409 ``reply_pending``), decided under the conversation's row lock: a batch pressed
        twice answers nobody twice."""
        async with self.db.write() as tx:
            now = tx.now

            def decide(c: Conversation, before: Before) -> Values:
                if c.status == "closed":
                    raise InvalidState("this conversation is closed; reopen it before replying")
                if before.claimed_by_other(actor, now):
                    raise _ClaimedBy(before.claimed_by_id)
                mine = c.claimed_by_id == actor.id and before.lease_expires_at is not None
                return {"status": c.status if c.status in ("escalated", "claimed") else "claimed",
                        "claimed_by_id": actor.id, "claimed_at": c.claimed_at if mine else now,
                        "lease_expires_at": self._lease(now)}

            before, conversation = await self._change_explained(tx, actor, conversation_id, decide)
            if once and await tx.session.scalar(sa.select(Reply.id).where(
                    Reply.conversation_id == conversation_id, Reply.state.in_(ON_ITS_WAY)).limit(1)) is not None:
                raise Conflict("a reply to this conversation is still on its way", code="reply_pending")
            await check_reply_window(tx.session, conversation_id, now)
            if before.claimed_by_id != actor.id or (before.lease_expires_at or now) <= now:
                tx.emit("conversation.claimed", conversation_id, actor.id, claimed_by=actor.id,
                        lease_expires_at=iso(conversation.lease_expires_at))
            admission = await admit(tx, actor, conversation, text)  # 422 when the house style refuses it
            message = await _add_message(tx, conversation, actor, "out", admission.text)
            # A reply answers the latest message from the public, in its thread.
            latest = (await tx.session.execute(
                sa.select(Message.external_id, Message.thread_id)
                .where(Message.conversation_id == conversation_id, Message.direction == "in")
                .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))).first()
            reply = Reply(message_id=message.id, conversation_id=conversation_id, account_id=conversation.account_id,
                          user_id=actor.id, state=admission.state, in_reply_to=latest.external_id if latest else None,
                          thread_id=latest.thread_id if latest else None,
                          idempotency_key=secrets.token_hex(16), created_at=now,
                          next_attempt_at=now if admission.state == "queued" else None)
            tx.session.add(reply)
            await tx.session.flush()
            announce(tx, actor, reply, message_json(message, reply, actor.name), admission)
            return {"id": reply.id, "state": reply.state, "message_id": message.id, "conversation_id": conversation_id,
                    "text": message.text}

    async def retry_reply(self, actor: Actor, reply_id: int) -> dict[str, Any]:
        """Queue a failed reply again; if an earlier attempt may have been posted, the platform is asked first."""
        async with self.db.write() as tx:
            reply = await tx.session.get(Reply, reply_id)
            if reply is None:
                raise NotFound(f"reply {reply_id} does not exist", code="reply_not_found")
            await visible_conversation(tx.session, actor, reply.conversation_id)
            done = (await tx.session.execute(
                sa.update(Reply).where(Reply.id == reply_id, Reply.state == "failed")
                .values(state="queued", attempts=0, next_attempt_at=tx.now).returning(Reply.id)
            )).scalar_one_or_none()
            if done is None:
                raise InvalidState(f"only a failed reply can be retried; this one is {reply.state}")
            tx.emit("reply.queued", reply.conversation_id, actor.id, reply_id=reply_id, retry=True)
            return {"id": reply_id, "state": "queued", "message_id": reply.message_id,
                    "conversation_id": reply.conversation_id}

    async def close(self, actor: Actor, conversation_id: int, reason: str) -> dict[str, Any]:
        async with self.db.write() as tx:
            def decide(c: Conversation, before: Before) -> Values:
                if c.status == "closed":
                    raise InvalidState("this conversation is closed already")
                if before.claimed_by_other(actor, tx.now) and not actor.oversees:
                    raise _ClaimedBy(before.claimed_by_id)
                return {**_UNCLAIMED, "status": "closed", "close_reason": reason, "waiting_since": None}

            _, conversation = await self._change_explained(tx, actor, conversation_id, decide)
            tx.emit("conversation.closed", conversation_id, actor.id, reason=reason)
            await metrics.closed(tx, conversation_id, reason)
            return await conversation_item(tx.session, conversation)

    async def reopen(self, actor: Actor, conversation_id: int) -> dict[str, Any]:
        async with self.db.write() as tx:
            def decide(c: Conversation, before: Before) -> Values:
                if c.status not in ("closed", "answered"):
                    raise InvalidState(f"only closed or answered conversations can be reopened; this one is {c.status}")
                return {**_UNCLAIMED, "status": "open", "close_reason": None, "assignee_user_id": None,
                        "assignee_department_id": None, "waiting_since": c.waiting_since or tx.now}

            _, conversation = await self._change_explained(tx, actor, conversation_id, decide)
            tx.emit("conversation.reopened", conversation_id, actor.id, reason="by_user")
            await metrics.reopened(tx, conversation_id, tx.now)
            return await conversation_item(tx.session, conversation)

    async def expire_leases(self) -> int:
        """Return every claim whose lease ran out to the queue; the number returned."""
        async with self.db.write() as tx:
            now = tx.now
            stale = (await tx.session.execute(
                sa.select(C.id, C.claimed_by_id, C.version)
                .where(C.claimed_by_id.is_not(None), C.lease_expires_at <= now)
                .order_by(C.id).limit(500)
            )).all()
            expired = 0
            for conversation_id, claimed_by, version in stale:
                done = (await tx.session.execute(
                    sa.update(C).where(C.id == conversation_id, C.version == version)
                    .values(**_UNCLAIMED, status=sa.case((C.status == "claimed", "open"), else_=C.status),
                            version=version + 1, updated_at=now)
                    .returning(C.id)
                )).scalar_one_or_none()
                if done is not None:
                    expired += 1
                    tx.emit("conversation.released", conversation_id, None, reason="lease_expired",
                            previous_claimed_by=claimed_by, handed_back=False)
            return expired

    async def _renew_lease(self, tx: Tx, actor: Actor, conversation_id: int) -> None:
        await tx.session.execute(
            sa.update(C).where(C.id == conversation_id, C.claimed_by_id == actor.id, C.lease_expires_at > tx.now)
            .values(lease_expires_at=self._lease(tx.now))
        )

    async def _change_explained(self, tx: Tx, actor: Actor, conversation_id: int,
                                decide: Callable[[Conversation, Before], Values]) -> tuple[Before, Conversation]:
        try:
            return await self._change(tx, actor, conversation_id, decide)
        except _ClaimedBy as e:
            raise await _already_claimed(tx, e.user_id) from None

    async def _change(self, tx: Tx, actor: Actor, conversation_id: int,
                      decide: Callable[[Conversation, Before], Values]) -> tuple[Before, Conversation]:
        for _ in range(10):
            c = await visible_conversation(tx.session, actor, conversation_id, fresh=True)
            before = Before(c.status, c.claimed_by_id, c.lease_expires_at)
            values = decide(c, before)
            changed = (await tx.session.scalars(
                sa.update(C).where(C.id == conversation_id, C.version == c.version)
                .values(**values, version=c.version + 1, updated_at=tx.now)
                .returning(C)
            )).one_or_none()
            if changed is not None:
                return before, changed
        raise Conflict("this conversation keeps changing under us; try again", code="busy")


class _ClaimedBy(Exception):
    def __init__(self, user_id: int | None) -> None:
        self.user_id = user_id


async def _already_claimed(tx: Tx, user_id: int | None) -> AlreadyClaimed:
    user = await tx.session.get(User, user_id) if user_id is not None else None
    who = user.name if user else "someone else"
    return AlreadyClaimed(f"{who} has claimed this conversation",
                          details={"claimed_by": {"id": user_id, "name": user.name if user else None}})


async def _add_message(tx: Tx, conversation: Conversation, actor: Actor, direction: str, text: str) -> Message:
    message = Message(conversation_id=conversation.id, account_id=conversation.account_id, direction=direction,
                      text=text, user_id=actor.id, created_at=tx.now, received_at=tx.now)
    tx.session.add(message)
    await tx.session.flush()
    return message
