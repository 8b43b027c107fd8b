"""Who is acting, and what they may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from webcare.errors import Forbidden
from webcare.models import Account, Conversation, Event, User


@dataclass(frozen=True)
class Actor:
    id: int
    email: str
    name: str
    role: str
    department_id: int | None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.email, user.name, user.role, user.department_id)

    @property
    def sees_everything(self) -> bool:
        return self.role in ("coordinator", "admin")

    @property
    def oversees(self) -> bool:
        """Coordinators and admins may take over or close what someone else has claimed."""
        return self.role in ("coordinator", "admin")

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}; you are {self.role}")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name, "role": self.role,
                "department_id": self.department_id}


def account_visible(actor: Actor) -> sa.ColumnElement[bool]:
    """Visibility is organisation-wide, except restricted accounts outside one's own department."""
    if actor.sees_everything:
        return sa.true()
    return sa.or_(Account.restricted.is_(False), Account.department_id == actor.department_id)


def conversation_visible(actor: Actor) -> sa.ColumnElement[bool]:
    if actor.sees_everything:
        return sa.true()
    return Conversation.account_id.in_(sa.select(Account.id).where(account_visible(actor)))


def event_visible(actor: Actor) -> sa.ColumnElement[bool]:
    if actor.sees_everything:
        return sa.true()
    hidden = (
        sa.select(Conversation.id)
        .join(Account, Account.id == Conversation.account_id)
        .where(sa.not_(account_visible(actor)))
    )
    return sa.or_(Event.conversation_id.is_(None), Event.conversation_id.not_in(hidden))
