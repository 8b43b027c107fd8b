"""Surges as a whole: the clusters :mod:`webcare.linking` gathers, seen and answered together.

Answering a cluster answers each of its conversations that still waits with its own reply, from the
saved reply (or text) personalised for that person and sent from that conversation's account, in
house style and under the approval rules like any reply. Each conversation stays a conversation of
its own, so reports count them as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare import saved_replies, style
from webcare.access import Actor, conversation_visible
from webcare.assist_models import Cluster, ConversationLink
from webcare.conversations import conversation_items, iso
from webcare.db import Database
from webcare.errors import AppError, BadRequest, NotFound
from webcare.models import Account, Conversation

if TYPE_CHECKING:
    from webcare.inbox import Inbox

WAITING = ("open", "claimed", "escalated")


def cluster_json(c: Cluster) -> dict[str, Any]:
    return {"id": c.id, "root_conversation_id": c.root_conversation_id, "topic": c.topic, "size": c.size,
            "created_at": iso(c.created_at), "last_at": iso(c.last_at)}


def _members(cluster_id: int) -> sa.CompoundSelect[Any]:
    return sa.select(ConversationLink.conversation_id).where(ConversationLink.cluster_id == cluster_id).union(
        sa.select(Cluster.root_conversation_id).where(Cluster.id == cluster_id))


async def cluster_of(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    cluster = await session.scalar(sa.select(Cluster).where(sa.or_(
        Cluster.root_conversation_id == conversation_id,
        Cluster.id == sa.select(ConversationLink.cluster_id).where(
            ConversationLink.conversation_id == conversation_id).scalar_subquery())))
    return cluster_json(cluster) if cluster else None


async def list_clusters(db: Database, *, waiting_only: bool, limit: int) -> dict[str, Any]:
    """Newest surges first, with how many of their conversations still wait for an answer."""
    L, K, C = ConversationLink, Cluster, Conversation
    async with db.read() as s:
        clusters = list(await s.scalars(sa.select(K).order_by(K.last_at.desc(), K.id.desc()).limit(limit * 4
                                                                                                 if waiting_only
                                                                                                 else limit)))
        ids = [k.id for k in clusters]
        member = sa.union_all(
            sa.select(L.cluster_id.label("cluster_id"), L.conversation_id.label("cid")).where(L.cluster_id.in_(ids)),
            sa.select(K.id.label("cluster_id"), K.root_conversation_id.label("cid")).where(K.id.in_(ids)),
        ).subquery()
        waiting: dict[int, int] = {cluster_id: n for cluster_id, n in await s.execute(
            sa.select(member.c.cluster_id, sa.func.count()).join(C, C.id == member.c.cid)
            .where(C.status.in_(WAITING)).group_by(member.c.cluster_id))} if ids else {}
    items = [{**cluster_json(k), "waiting": waiting.get(k.id, 0)} for k in clusters]
    if waiting_only:
        items = [i for i in items if i["waiting"]]
    return {"items": items[:limit]}


async def cluster_detail(db: Database, actor: Actor, cluster_id: int) -> dict[str, Any]:
    async with db.read() as s:
        cluster = await s.get(Cluster, cluster_id)
        if cluster is None:
            raise NotFound(f"cluster {cluster_id} does not exist", code="cluster_not_found")
        conversations = list(await s.scalars(
            sa.select(Conversation).where(Conversation.id.in_(_members(cluster_id)), conversation_visible(actor))
            .order_by(Conversation.created_at, Conversation.id)))
        items = await conversation_items(s, conversations)
    return {**cluster_json(cluster), "conversations": items}


async def reply_to_cluster(db: Database, inbox: Inbox, actor: Actor, cluster_id: int, *, text: str | None,
                           saved_reply_id: int | None) -> dict[str, Any]:
    """One reply per waiting conversation of the cluster; those that cannot take one are listed with why."""
    actor.require("coordinator", "admin")
    if (text is None) == (saved_reply_id is None):
        raise BadRequest("give exactly one of text and saved_reply_id", code="invalid_body")
    template = text if text is not None else await saved_replies.text_of(db, saved_reply_id or 0)
    style.check_template(template, "the reply")
    async with db.read() as s:
        if await s.get(Cluster, cluster_id) is None:
            raise NotFound(f"cluster {cluster_id} does not exist", code="cluster_not_found")
        rows = (await s.execute(
            sa.select(Conversation, Account).join(Account, Account.id == Conversation.account_id)
            .where(Conversation.id.in_(_members(cluster_id)), Conversation.status.in_(WAITING))
            .order_by(Conversation.created_at, Conversation.id))).all()
    replies: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for conversation, account in rows:
        personal = style.render(template, style.variables(actor.name, conversation, account))
        try:
            # ``once``: pressed twice, or by two coordinators at once, nobody is answered twice.
            reply = await inbox.reply(actor, conversation.id, personal, once=True)
        except AppError as e:
            skipped.append({"conversation_id": conversation.id, **e.body()})
        else:
            replies.append({"conversation_id": conversation.id, "reply": reply})
    return {"cluster_id": cluster_id, "replies": replies, "skipped": skipped}
