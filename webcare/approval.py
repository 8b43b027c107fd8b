"""Four eyes: replies that match an approval rule wait in ``awaiting_approval`` until a coordinator
approves them (they are queued for the outbox) or sends them back with a comment (a ``draft`` its
author edits and submits again). The outbox takes only ``queued`` replies, so nothing waiting or sent
back can reach a platform.

A rule names an account, a department (of the account the reply goes out on), an author role or one
author (a colleague marked as new); a reply matches when every condition the rule sets holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare import style
from webcare.access import Actor
from webcare.assist_models import ApprovalRule, ReplyReview
from webcare.conversations import conversation_items, iso, message_json, visible_conversation
from webcare.db import Database, Tx
from webcare.errors import Forbidden, InvalidState, NotFound, RuleViolation
from webcare.models import Account, Conversation, Message, Reply, User
from webcare.people import require_department, require_user

OVERSEERS = ("coordinator", "admin")


@dataclass(frozen=True)
class Admission:
    """What happens to a reply that passed the house style: its final text and the state it starts in."""

    text: str
    rules: list[dict[str, Any]]

    @property
    def state(self) -> str:
        return "awaiting_approval" if self.rules else "queued"


def rule_json(r: ApprovalRule) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "account_id": r.account_id, "department_id": r.department_id,
            "author_role": r.author_role, "author_user_id": r.author_user_id, "created_at": iso(r.created_at)}


async def matching_rules(session: AsyncSession, account: Account, author: Actor) -> list[ApprovalRule]:
    R = ApprovalRule
    return list(await session.scalars(sa.select(R).where(
        sa.or_(R.account_id.is_(None), R.account_id == account.id),
        sa.or_(R.department_id.is_(None), R.department_id == account.department_id),
        sa.or_(R.author_role.is_(None), R.author_role == author.role),
        sa.or_(R.author_user_id.is_(None), R.author_user_id == author.id),
    ).order_by(R.id)))


async def admit(tx: Tx, author: Actor, conversation: Conversation, text: str) -> Admission:
    """House style first (422 when it refuses), then the approval rules decide the starting state."""
    account = await tx.session.get(Account, conversation.account_id)
    assert account is not None
    final = await style.prepare(tx.session, author.name, conversation, account, text)
    return Admission(final, [{"id": r.id, "name": r.name} for r in await matching_rules(tx.session, account, author)])


def announce(tx: Tx, author: Actor, reply: Reply, message: dict[str, Any], admission: Admission,
             **extra: Any) -> None:
    """The events (and the review row) of a reply that has just been submitted."""
    if admission.state == "queued":
        tx.emit("reply.queued", reply.conversation_id, author.id, reply_id=reply.id, message=message, **extra)
        return
    tx.session.add(ReplyReview(reply_id=reply.id, decision="submitted", rules=admission.rules, user_id=author.id,
                               at=tx.now))
    tx.emit("reply.awaiting_approval", reply.conversation_id, author.id, reply_id=reply.id, rules=admission.rules,
            message=message, **extra)


async def check_draft(db: Database, actor: Actor, conversation_id: int, text: str) -> dict[str, Any]:
    """What would happen to this draft, without sending it: the composer's check while typing."""
    async with db.read() as s:
        conversation = await visible_conversation(s, actor, conversation_id)
        account = await s.get(Account, conversation.account_id)
        assert account is not None
        draft = await style.check(s, actor.name, conversation, account, text)
        rules = await matching_rules(s, account, actor)
    return {**draft.as_json(), "approval": {"required": bool(rules),
                                            "rules": [{"id": r.id, "name": r.name} for r in rules]}}


def reply_json(reply: Reply, text: str) -> dict[str, Any]:
    return {"id": reply.id, "state": reply.state, "message_id": reply.message_id,
            "conversation_id": reply.conversation_id, "text": text}


async def approve(db: Database, actor: Actor, reply_id: int) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        reply, message, conversation = await _reply(tx.session, actor, reply_id)
        if reply.user_id == actor.id:
            raise RuleViolation("four eyes: someone else must approve your own reply", code="four_eyes")
        if conversation.status == "closed":
            raise InvalidState("this conversation is closed; reopen it before approving a reply to it")
        done = await _move(tx, reply_id, "awaiting_approval", state="queued", next_attempt_at=tx.now)
        tx.session.add(ReplyReview(reply_id=reply_id, decision="approved", user_id=actor.id, at=tx.now))
        author = await tx.session.get(User, done.user_id)
        body = message_json(message, done, author.name if author else None)
        tx.emit("reply.approved", done.conversation_id, actor.id, reply_id=reply_id, author_id=done.user_id)
        tx.emit("reply.queued", done.conversation_id, actor.id, reply_id=reply_id, approved_by=actor.id,
                message=body)
        return reply_json(done, message.text)


async def send_back(db: Database, actor: Actor, reply_id: int, comment: str) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        _, message, _ = await _reply(tx.session, actor, reply_id)
        done = await _move(tx, reply_id, "awaiting_approval", state="draft", next_attempt_at=None)
        tx.session.add(ReplyReview(reply_id=reply_id, decision="sent_back", comment=comment, user_id=actor.id,
                                   at=tx.now))
        author = await tx.session.get(User, done.user_id)
        tx.emit("reply.sent_back", done.conversation_id, actor.id, reply_id=reply_id, comment=comment,
                author_id=done.user_id, message=message_json(message, done, author.name if author else None))
        return reply_json(done, message.text)


async def resubmit(db: Database, actor: Actor, reply_id: int, text: str) -> dict[str, Any]:
    """The author's edited draft, checked again by house style and approval rules as a new reply would be."""
    async with db.write() as tx:
        reply, message, conversation = await _reply(tx.session, actor, reply_id)
        if reply.user_id != actor.id:
            raise Forbidden("only the author of a reply that was sent back can submit it again", code="not_author")
        if conversation.status == "closed":
            raise InvalidState("this conversation is closed; reopen it before replying")
        admission = await admit(tx, actor, conversation, text)
        done = await _move(tx, reply_id, "draft", state=admission.state,
                           next_attempt_at=tx.now if admission.state == "queued" else None)
        await tx.session.execute(sa.update(Message).where(Message.id == message.id).values(text=admission.text))
        message.text = admission.text
        announce(tx, actor, done, message_json(message, done, actor.name), admission, resubmitted=True)
        return reply_json(done, admission.text)


async def approval_queue(db: Database, actor: Actor, limit: int = 100) -> dict[str, Any]:
    """Replies awaiting approval, oldest first, with why they wait."""
    actor.require(*OVERSEERS)
    async with db.read() as s:
        rows = (await s.execute(
            sa.select(Reply, Message.text, User.name, Account)
            .join(Message, Message.id == Reply.message_id).join(User, User.id == Reply.user_id)
            .join(Account, Account.id == Reply.account_id)
            .where(Reply.state == "awaiting_approval").order_by(Reply.created_at, Reply.id).limit(limit)
        )).all()
        reviews = await _reviews(s, [r.id for r, *_ in rows])
        conversations = {c.id: c for c in await s.scalars(
            sa.select(Conversation).where(Conversation.id.in_({r.conversation_id for r, *_ in rows})))}
        items = {c["id"]: c for c in await conversation_items(s, list(conversations.values()))}
    return {"items": [{
        **reply_json(reply, text), "author": {"id": reply.user_id, "name": author},
        "account": {"id": account.id, "name": account.name, "handle": account.handle, "platform": account.platform},
        "submitted_at": iso(reply.created_at), "conversation": items.get(reply.conversation_id),
        "rules": next((r["rules"] for r in reversed(reviews.get(reply.id, [])) if r["decision"] == "submitted"), []),
        "reviews": reviews.get(reply.id, []),
    } for reply, text, author, account in rows]}


async def reviews_of_conversation(session: AsyncSession, conversation_id: int) -> list[dict[str, Any]]:
    ids = list(await session.scalars(sa.select(Reply.id).where(Reply.conversation_id == conversation_id)))
    reviews = await _reviews(session, ids)
    return [r for reply_id in ids for r in reviews.get(reply_id, [])]


async def _reviews(session: AsyncSession, reply_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not reply_ids:
        return {}
    out: dict[int, list[dict[str, Any]]] = {}
    rows = await session.execute(
        sa.select(ReplyReview, User.name).outerjoin(User, User.id == ReplyReview.user_id)
        .where(ReplyReview.reply_id.in_(reply_ids)).order_by(ReplyReview.at, ReplyReview.id))
    for review, name in rows:
        out.setdefault(review.reply_id, []).append({
            "reply_id": review.reply_id, "decision": review.decision, "comment": review.comment,
            "rules": review.rules, "by": {"id": review.user_id, "name": name}, "at": iso(review.at)})
    return out


async def _reply(session: AsyncSession, actor: Actor, reply_id: int) -> tuple[Reply, Message, Conversation]:
    reply = await session.get(Reply, reply_id)
    if reply is None:
        raise NotFound(f"reply {reply_id} does not exist", code="reply_not_found")
    conversation = await visible_conversation(session, actor, reply.conversation_id, fresh=True)
    message = await session.get(Message, reply.message_id)
    assert message is not None
    return reply, message, conversation


async def _move(tx: Tx, reply_id: int, from_state: str, **values: Any) -> Reply:
    """One conditional UPDATE: of two coordinators deciding at once, one wins and the other gets 409."""
    done = (await tx.session.scalars(
        sa.update(Reply).where(Reply.id == reply_id, Reply.state == from_state).values(**values).returning(Reply)
        .execution_options(populate_existing=True)
    )).one_or_none()
    if done is None:
        current = await tx.session.scalar(sa.select(Reply.state).where(Reply.id == reply_id))
        raise InvalidState(f"this reply is {current}, not {from_state.replace('_', ' ')}")
    return done


# Rules


async def list_rules(db: Database) -> list[dict[str, Any]]:
    async with db.read() as s:
        return [rule_json(r) for r in await s.scalars(sa.select(ApprovalRule).order_by(ApprovalRule.id))]


async def create_rule(db: Database, actor: Actor, *, name: str, account_id: int | None, department_id: int | None,
                      author_role: str | None, author_user_id: int | None) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        if account_id is not None and await tx.session.get(Account, account_id) is None:
            raise NotFound(f"account {account_id} does not exist", code="account_not_found")
        if department_id is not None:
            await require_department(tx.session, department_id)
        if author_user_id is not None:
            await require_user(tx.session, author_user_id)
        rule = ApprovalRule(name=name, account_id=account_id, department_id=department_id, author_role=author_role,
                            author_user_id=author_user_id, created_by_id=actor.id, created_at=tx.now)
        tx.session.add(rule)
        await tx.session.flush()
        tx.emit("approval_rule.created", None, actor.id, rule=rule_json(rule))
        return rule_json(rule)


async def delete_rule(db: Database, actor: Actor, rule_id: int) -> dict[str, Any]:
    """Replies already waiting keep waiting: a rule decides when a reply is submitted."""
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        gone = (await tx.session.execute(
            sa.delete(ApprovalRule).where(ApprovalRule.id == rule_id).returning(ApprovalRule.id))).scalar_one_or_none()
        if gone is None:
            raise NotFound(f"approval rule {rule_id} does not exist", code="rule_not_found")
        tx.emit("approval_rule.deleted", None, actor.id, rule_id=rule_id)
        return {"id": rule_id, "deleted": True}
