"""The tables of one voice and smart assist: house style, approval, saved replies, routing, links and
surges. Imported by :mod:`webcare.models`, so ``Base.metadata`` (and Alembic) always sees them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webcare.models import Base, JSONType, utcnow

LINK_KINDS = ("cross_post", "duplicate", "surge")
REVIEW_DECISIONS = ("submitted", "approved", "sent_back")


class HouseStyle(Base):
    """The house style of one account, or of a department as the default for its accounts."""

    __tablename__ = "house_styles"
    __table_args__ = (
        sa.CheckConstraint("(account_id IS NULL) <> (department_id IS NULL)", name="one_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"),
                                                      unique=True)
    #: Appended to every reply, e.g. ``^{agent_initials}``.
    signature: Mapped[str | None] = mapped_column(sa.String(200))
    #: Overrides the platform's own limit; the signature counts.
    max_length: Mapped[int | None]
    banned_phrases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: ``[{"name": ..., "any_of": [phrase, ...]}]``: each element needs one of its phrases.
    required: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApprovalRule(Base):
    """Replies that match every condition set here wait for a coordinator's approval (four eyes)."""

    __tablename__ = "approval_rules"
    __table_args__ = (
        sa.CheckConstraint("account_id IS NOT NULL OR department_id IS NOT NULL OR author_role IS NOT NULL "
                           "OR author_user_id IS NOT NULL", name="some_condition"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    author_role: Mapped[str | None] = mapped_column(sa.String(20))
    #: One person, e.g. a colleague marked as new.
    author_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReplyReview(Base):
    """The approval history of a reply: submitted (with the rules that held it), approved, sent back."""

    __tablename__ = "reply_reviews"
    __table_args__ = (sa.CheckConstraint(
        "decision IN (" + ", ".join(f"'{d}'" for d in REVIEW_DECISIONS) + ")", name="decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(sa.ForeignKey("replies.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(sa.String(20))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SavedReply(Base):
    __tablename__ = "saved_replies"
    __table_args__ = (sa.UniqueConstraint("department_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    #: May hold {author}, {agent_initials} and {account}.
    text: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RoutingRule(Base):
    """Keywords and fuzzy phrases that send a new conversation to a department's view or suggest an expert."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        sa.CheckConstraint("department_id IS NOT NULL OR expert_user_id IS NOT NULL", name="some_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    expert_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    #: Only messages to this account, when set.
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    phrases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: The rapidfuzz score (0-100) a phrase needs.
    threshold: Mapped[int] = mapped_column(default=85)
    #: Lower goes first; the first rule that matches decides.
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationRoute(Base):
    """Why a conversation was routed where it was."""

    __tablename__ = "conversation_routes"

    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True, autoincrement=False)
    rule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("routing_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(sa.String(200))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="SET NULL"))
    expert_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Fingerprint(Base):
    """A new conversation's first message as matching sees it, indexed for narrowing candidates by
    author, time and normalised-text hash.

    Derived data, written with the conversation it describes, and without foreign keys: their checks
    cost 1.6 ms of a page of 80 on PostgreSQL, and guarded nothing (conversations are never deleted; the
    account is the conversation's).
    """

    __tablename__ = "conversation_fingerprints"
    __table_args__ = (
        sa.Index("ix_conversation_fingerprints_author_posted", "author_key", "posted_at"),
        sa.Index("ix_conversation_fingerprints_hash_posted", "text_hash", "posted_at"),
    )

    conversation_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int]
    author_key: Mapped[str] = mapped_column(sa.String(200))
    text_hash: Mapped[str] = mapped_column(sa.String(16))
    norm_text: Mapped[str] = mapped_column(sa.Text)
    keys: Mapped[str] = mapped_column(sa.Text, default="")
    #: Platform time of the message.
    posted_at: Mapped[dt.datetime] = mapped_column(index=True)


class Cluster(Base):
    """A surge: many people about one thing in a short time, gathered around its first conversation."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    root_conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                                                      unique=True)
    topic: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ConversationLink(Base):
    """A later conversation linked to the first one it repeats (or to its surge's first conversation).

    A conversation links to at most one other; the first one of a group has no row of its own.
    """

    __tablename__ = "conversation_links"
    __table_args__ = (sa.CheckConstraint(
        "kind IN (" + ", ".join(f"'{k}'" for k in LINK_KINDS) + ")", name="kind"),)

    # Written with the conversation, to one found among the fingerprints; conversations are never deleted,
    # so keys on both would only cost two look-ups and row locks per link (1.7 ms of a page of 80 links).
    conversation_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    linked_id: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    cluster_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
