"""The tables. Timestamps are timezone-aware UTC on both engines."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("agent", "expert", "coordinator", "admin")
PLATFORMS = ("x", "mastodon", "facebook", "instagram", "email", "api")
STATUSES = ("open", "claimed", "escalated", "answered", "closed")
DIRECTIONS = ("in", "out", "note")
REPLY_STATES = ("draft", "awaiting_approval", "queued", "sending", "sent", "failed")
#: A reply in one of these states is on its way to the platform (or to a coordinator first).
ON_ITS_WAY = ("awaiting_approval", "queued", "sending")
CLOSE_REASONS = ("resolved", "no_reply_needed", "spam")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=name)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSONType}


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (_one_of("role", ROLES, "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (sa.Index("ix_login_failures_email_at", "email", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (_one_of("platform", PLATFORMS, "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    handle: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(200))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Fernet token of the JSON credentials; never leaves the service.
    credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    #: Restricted accounts are seen only by their own department, coordinators and admins.
    restricted: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    cursor: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Polling: one worker at a time holds an account's poll lease; when it dies the lease runs out.
    poll_owner: Mapped[str | None] = mapped_column(sa.String(100))
    poll_lease_expires_at: Mapped[dt.datetime | None]
    next_poll_at: Mapped[dt.datetime | None]
    poll_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    # Health: what a person looking after the account needs to see.
    last_polled_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[dt.datetime | None]
    #: The platform refused the credentials: polling stops until someone renews them.
    needs_reauth: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        _one_of("status", STATUSES, "status"),
        sa.Index("ix_conversations_status_last", "status", "last_message_at", "id"),
        sa.Index("ix_conversations_lease", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    author_id: Mapped[str] = mapped_column(sa.String(200))
    author_handle: Mapped[str] = mapped_column(sa.String(200))
    author_name: Mapped[str] = mapped_column(sa.String(200))
    subject_preview: Mapped[str] = mapped_column(sa.String(200))
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    claimed_at: Mapped[dt.datetime | None]
    lease_expires_at: Mapped[dt.datetime | None]
    assignee_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    assignee_department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    #: When the oldest unanswered inbound message was posted (platform time); null when nobody waits.
    waiting_since: Mapped[dt.datetime | None]
    last_message_at: Mapped[dt.datetime]
    close_reason: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Bumped by every change: a write that decided on what it read updates only the version it read.
    version: Mapped[int] = mapped_column(default=1)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        _one_of("direction", DIRECTIONS, "direction"),
        sa.Index("ix_messages_account_thread", "account_id", "thread_id"),
        # Ingesting the same platform message twice changes nothing: this constraint decides.
        sa.UniqueConstraint("account_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    #: The conversation's account (for the platform's ids, unique per account); no key of its own, that
    #: would only check the conversation's again (per message taken in).
    account_id: Mapped[int]
    direction: Mapped[str] = mapped_column(sa.String(10))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(200))
    #: A platform thread without a reply chain (a direct-message conversation).
    thread_id: Mapped[str | None] = mapped_column(sa.String(200))
    text: Mapped[str] = mapped_column(sa.Text)
    #: The platform author of an inbound message.
    author_external_id: Mapped[str | None] = mapped_column(sa.String(200))
    author_handle: Mapped[str | None] = mapped_column(sa.String(200))
    author_name: Mapped[str | None] = mapped_column(sa.String(200))
    #: The staff member who wrote a note or reply.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: Platform time: when the person posted it (for ours, when it was accepted).
    created_at: Mapped[dt.datetime]
    #: Ingest time: when we stored it.
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Reply(Base):
    """The outbox: one row per outbound message, carrying its delivery state."""

    __tablename__ = "replies"
    __table_args__ = (
        _one_of("state", REPLY_STATES, "state"),
        sa.Index("ix_replies_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(sa.String(20))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(200))
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_expires_at: Mapped[dt.datetime | None]
    #: Names the attempt that holds the send lease, so a worker whose lease ran out cannot record over another's.
    attempt_token: Mapped[str | None] = mapped_column(sa.String(64))
    #: An earlier attempt may have reached the platform: ask the platform before posting again.
    outcome_unknown: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    thread_id: Mapped[str | None] = mapped_column(sa.String(200))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class Event(Base):
    """The append-only event log. ``seq`` comes from :class:`EventCounter`, never from a sequence.

    ``conversation_id`` has no foreign key: every event is written in the transaction that makes the change
    it tells of, and conversations are never deleted, so the key guarded nothing, while its check (a lookup
    and a row lock on the conversation per event) was the costliest part of taking messages in: 2.5 ms of
    a page of 80 on PostgreSQL.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                                     autoincrement=False)
    type: Mapped[str] = mapped_column(sa.String(60))
    conversation_id: Mapped[int | None] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EventCounter(Base):
    """One row holding the last handed-out event number.

    Taking numbers is an UPDATE of this row as the last statement before commit, so the row lock
    orders commits: no transaction can commit a number below one that a reader has already seen.
    """

    __tablename__ = "event_counter"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), default=0)


# Tables of their own modules, imported here so that Base.metadata (and Alembic) always has them.
from webcare import assist_models as assist_models  # noqa: E402
from webcare import metrics_models  # noqa: E402, F401


class WebhookDelivery(Base):
    """A verified webhook delivery's entries for one account, stored before the platform gets its 200 and
    kept until processed: the fast path processes it at once, the sweep whatever a crash or failure left."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_due", "done", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: ``{"object": "page" | "instagram", "entry": [...]}``: the delivery's entries for this account.
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: When the sweep may take it: a lease while someone processes it, a backoff after a failure.
    next_attempt_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    done: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    done_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
