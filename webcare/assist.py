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
from webcare.access import Actor
from webcare.assist_models import RoutingRule
from webcare.db import Tx
from webcare.models import Account


async def new_conversations(tx: Tx, account_id: int, opened: Sequence[tuple[int, InboundMessage]]) -> None:
    """Route and link conversations just opened in ``tx``: (conversation id, its first message)."""
    if not opened:
        return
    # One round trip says whether assist is on for the account and whether any routing rule is.
    settings, any_rule = (await tx.session.execute(
        sa.select(Account.settings, sa.exists().where(RoutingRule.active.is_(True)))
        .where(Account.id == account_id))).one()
    if settings and settings.get("assist") is False:
        return
    if any_rule:
        await routing.route_new(tx, account_id, [(cid, m.text) for cid, m in opened])
    await linking.link_new(tx, account_id, [(cid, m.author, m.text, m.created_at) for cid, m in opened])


async def conversation_extras(session: AsyncSession, actor: Actor, conversation_id: int) -> dict[str, Any]:
    """What a conversation's page shows besides its messages: links, why it was routed, its surge, reviews."""
    return {
        "links": await linking.links_of(session, actor, conversation_id),
        "routing": await routing.route_of(session, conversation_id),
        "cluster": await clusters.cluster_of(session, conversation_id),
        "reviews": await approval.reviews_of_conversation(session, conversation_id),
    }
