"""Moderation of public comments: hide one from the public (its author still sees it) or show it again.

The platform is asked first, through the account's connector; only what the platform did is written to
the event log (``message.hidden`` / ``message.unhidden``). Hiding is idempotent on the platform, so a
person may simply try again when the platform could not be reached.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from connectors.base import AuthExpired, Permanent, RateLimited, Transient
from webcare.access import Actor
from webcare.connections import ConnectorPool
from webcare.conversations import visible_conversation
from webcare.db import Database
from webcare.errors import AppError, Conflict, NotFound, RuleViolation
from webcare.models import Account, Message


class PlatformUnavailable(AppError):
    status = 503
    code = "platform_unavailable"


class Moderation:
    def __init__(self, db: Database, connectors: ConnectorPool) -> None:
        self.db = db
        self.connectors = connectors

    async def set_hidden(self, actor: Actor, conversation_id: int, message_id: int, hidden: bool) -> dict[str, Any]:
        async with self.db.read() as s:
            await visible_conversation(s, actor, conversation_id)
            row = (await s.execute(
                sa.select(Message, Account).join(Account, Account.id == Message.account_id)
                .where(Message.id == message_id, Message.conversation_id == conversation_id)
            )).first()
        if row is None:
            raise NotFound(f"message {message_id} is not in conversation {conversation_id}", code="message_not_found")
        message, account = row
        if message.direction != "in" or not message.external_id:
            raise RuleViolation("only a message from the public can be hidden", code="not_moderatable")
        try:
            connector = self.connectors.get(account)
        except AuthExpired as e:
            raise Conflict(f"the account's credentials need renewing: {e}", code="account_needs_reauth") from None
        setter = getattr(connector, "set_hidden", None)
        if setter is None:
            raise RuleViolation(f"{account.platform} does not let us hide messages", code="moderation_unsupported")
        try:
            await setter(message.external_id, hidden)
        except (RateLimited, Transient) as e:
            raise PlatformUnavailable(f"{account.platform} could not be reached; try again: {e}") from None
        except AuthExpired as e:
            raise Conflict(f"the account's credentials need renewing: {e}", code="account_needs_reauth") from None
        except Permanent as e:
            raise RuleViolation(f"{account.platform} refused: {e}", code="platform_refused") from None
        async with self.db.write() as tx:
            tx.emit("message.hidden" if hidden else "message.unhidden", conversation_id, actor.id,
                    message_id=message.id, external_id=message.external_id)
        return {"message_id": message.id, "conversation_id": conversation_id, "hidden": hidden}
