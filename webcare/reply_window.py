"""Platform reply windows: Messenger and Instagram direct messages may be answered only within 24 hours
of the person's last message. A reply outside the window is refused before it reaches the outbox,
with a reason a person can act on, instead of failing at the platform later."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import reply_window
from webcare.conversations import iso
from webcare.errors import RuleViolation
from webcare.models import Account, Message


async def check_reply_window(session: AsyncSession, conversation_id: int, now: dt.datetime) -> None:
    """Raise RuleViolation ``reply_window_closed`` when the conversation's platform no longer takes a reply."""
    latest = (await session.execute(
        sa.select(Account.platform, Message.thread_id, Message.created_at)
        .join(Account, Account.id == Message.account_id)
        .where(Message.conversation_id == conversation_id, Message.direction == "in")
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))).first()
    if latest is None:
        return
    window = reply_window(latest.platform, latest.thread_id)
    if window is None or now <= latest.created_at + window:
        return
    hours = int(window.total_seconds() // 3600)
    closed = latest.created_at + window
    raise RuleViolation(
        f"{latest.platform.title()} allows a reply to a direct message only within {hours} hours of the person's "
        f"last message; this window closed at {iso(closed)}. Wait for them to write again.",
        code="reply_window_closed", details={"window_hours": hours, "closed_at": iso(closed)})
