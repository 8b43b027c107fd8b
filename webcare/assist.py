"""Smart assist where messages come in and where a conversation is read.

When a message opens a conversation, routing rules place it and linking joins it to the first
conversation it repeats, or to a surge. An account whose ``settings.assist`` is ``false`` skips both
(the benchmark's baseline, or a channel where they make no sense).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import InboundMessage
from webcare import approval, clusters, linking, routing
from webcare.access import Actor, conversation_visible
from webcare.assist_models import ConversationLink, RoutingRule
from webcare.db import Tx
from webcare.models import Account, Conversation


async def new_conversations(tx: Tx, account_id: int, opened: Sequence[tuple[int, InboundMessage]],
                            settings: dict[str, Any] | None = None) -> None:
    """Route and link conversations just opened in ``tx``: (conversation id, its first message). The
    account's ``settings`` where the caller has them already (a look-up fewer)."""
    if not opened or (settings is not None and settings.get("assist") is False):
        return
    pg = tx.session.get_bind().dialect.name == "postgresql"
    if settings is None:
        # One round trip for whether assist is on for the account, and for the active routing rules.
        rows = (await tx.session.execute(_PG_SETTINGS_AND_RULES if pg else _SETTINGS_AND_RULES,
                                         {"account_id": account_id})).all()
        if rows and rows[0][0] and rows[0][0].get("assist") is False:
            return
        rules = [row[1] for row in rows if row[1] is not None]
    else:
        rules = [row[0] for row in await tx.session.execute(_PG_RULES if pg else _RULES) if row[0] is not None]
    if rules:
        await routing.route_new(tx, account_id, [(cid, m.text) for cid, m in opened], rules)
    await linking.link_new(tx, account_id, [(cid, m.author, m.text, m.created_at) for cid, m in opened])


_RULES = sa.select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id)
_SETTINGS_AND_RULES = (
    sa.select(Account.settings, RoutingRule).outerjoin(RoutingRule, RoutingRule.active.is_(True))
    .where(Account.id == sa.bindparam("account_id")).order_by(RoutingRule.position, RoutingRule.id))
# After five runs PostgreSQL may plan a prepared statement once for any values; for the candidate query that
# plan cannot see the page's authors and time window and is several times slower. Plan each statement for
# its values for the rest of the transaction, in the same round trip as the rules. (A row comes back with
# no rule, for the setting.)
_CUSTOM_PLANS = sa.func.set_config("plan_cache_mode", "force_custom_plan", True)
_PG_RULES = sa.select(RoutingRule, _CUSTOM_PLANS).select_from(sa.select(sa.literal(1)).subquery()).outerjoin(
    RoutingRule, RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id)
_PG_SETTINGS_AND_RULES = _SETTINGS_AND_RULES.add_columns(_CUSTOM_PLANS)


async def conversation_extras(session: AsyncSession, actor: Actor, conversation_id: int) -> dict[str, Any]:
    """What a conversation's page shows besides its messages: links, why it was routed, its surge, reviews."""
    return {
        "links": await links_of(session, actor, conversation_id),
        "routing": await routing.route_of(session, conversation_id),
        "cluster": await clusters.cluster_of(session, conversation_id),
        "reviews": await approval.reviews_of_conversation(session, conversation_id),
    }


async def links_of(session: AsyncSession, actor: Actor, conversation_id: int) -> list[dict[str, Any]]:
    """Both directions: the first conversation this one repeats, and those that repeat this one."""
    L, C = ConversationLink, Conversation
    out = []
    outgoing = sa.select(L.linked_id.label("other"), L.kind, L.cluster_id, L.score, sa.true().label("first")) \
        .where(L.conversation_id == conversation_id)
    incoming = sa.select(L.conversation_id.label("other"), L.kind, L.cluster_id, L.score, sa.false().label("first")) \
        .where(L.linked_id == conversation_id)
    for part in (outgoing, incoming):
        sub = part.subquery()
        rows = await session.execute(
            sa.select(sub, C.status, C.account_id).join(C, C.id == sub.c.other)
            .where(conversation_visible(actor)).order_by(sub.c.other))
        for row in rows:
            out.append({"conversation_id": row.other, "kind": row.kind, "first": bool(row.first),
                        "cluster_id": row.cluster_id, "score": row.score, "status": row.status,
                        "account_id": row.account_id})
    return out
