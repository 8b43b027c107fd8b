"""The tables of response-time metrics and SLAs. Imported by :mod:`webcare.models`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from webcare.models import Base, _one_of, utcnow

SLA_METRICS = ("first_response", "resolution")
SLA_OUTCOMES = ("hit", "breached", "void")


class SlaTarget(Base):
    """A response-time promise for an account, a department or (neither) the whole organisation."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        _one_of("metric", SLA_METRICS, "metric"),
        _one_of("clock", ("business", "calendar"), "clock"),
        sa.CheckConstraint("account_id IS NULL OR department_id IS NULL", name="one_scope"),
        # One target per scope and metric: the most specific scope wins (account, department, organisation).
        sa.UniqueConstraint("scope", "metric"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``account:<id>``, ``department:<id>`` or ``organisation``.
    scope: Mapped[str] = mapped_column(sa.String(40))
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(sa.String(20))
    within_minutes: Mapped[int]
    #: ``business``: only opening hours count; ``calendar``: every minute counts.
    clock: Mapped[str] = mapped_column(sa.String(10))
    #: For messages posted outside opening hours: this many calendar minutes instead.
    outside_hours_minutes: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BusinessHours(Base):
    """Opening hours of a department, or (``scope`` ``organisation``) of everyone else."""

    __tablename__ = "business_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(40), unique=True)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    #: ``{"mon": [["09:00", "17:00"]], ...}``
    week: Mapped[dict[str, Any]] = mapped_column()
    #: ISO dates.
    holidays: Mapped[list[str]] = mapped_column(sa.JSON().with_variant(JSONB(), "postgresql"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationMetrics(Base):
    """Response-time facts of one conversation, kept in the transaction of each change.

    The per-day counts in :class:`MetricCount` are always the sum of what these rows contribute
    (see :func:`webcare.metrics.contributions`); a change to a row changes the counts by the difference.
    """

    __tablename__ = "conversation_metrics"
    __table_args__ = (
        sa.Index("ix_conversation_metrics_first_response_at", "first_response_at"),
        sa.Index("ix_conversation_metrics_resolved_at", "resolved_at"),
        sa.Index("ix_conversation_metrics_fr_due", "fr_sla", "fr_due_at"),
        sa.Index("ix_conversation_metrics_res_due", "res_sla", "res_due_at"),
        sa.Index("ix_conversation_metrics_started_at", "started_at"),
        _one_of("fr_sla", SLA_OUTCOMES, "fr_sla"),
        _one_of("res_sla", SLA_OUTCOMES, "res_sla"),
    )

    # No foreign keys: the row is written with its conversation, and neither conversations, accounts nor
    # departments are ever deleted; checking three keys per new conversation was 0.64 ms of a page of 80.
    conversation_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int]
    #: The account's department when the conversation began.
    department_id: Mapped[int]
    #: Platform time of the person's first message.
    started_at: Mapped[dt.datetime]
    first_response_at: Mapped[dt.datetime | None]
    first_response_seconds: Mapped[float | None]
    #: Who answered: the author of the first reply sent.
    first_responder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None]
    resolution_seconds: Mapped[float | None]
    replies: Mapped[int] = mapped_column(default=0, server_default="0")
    escalated: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    reopened: Mapped[int] = mapped_column(default=0, server_default="0")
    fr_target_id: Mapped[int | None]
    fr_due_at: Mapped[dt.datetime | None]
    #: Null while undecided; ``hit``, ``breached`` or ``void`` (closed without a reply in time to count).
    fr_sla: Mapped[str | None] = mapped_column(sa.String(10))
    res_target_id: Mapped[int | None]
    res_due_at: Mapped[dt.datetime | None]
    res_sla: Mapped[str | None] = mapped_column(sa.String(10))


class MetricCount(Base):
    """Pre-aggregated counts: per dimension, period, key, metric and log-scale bucket.

    ``dim`` is ``a`` (account), ``d`` (department) or ``u`` (user, 0 for nobody); ``grain`` is ``d``,
    ``m`` or ``y`` and ``period`` the first local day of that day, month or year in the organisation's
    time zone. Every contribution is counted once per dimension and grain, so any of them adds up to
    the overall figures.
    """

    __tablename__ = "metric_counts"

    dim: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[dt.date] = mapped_column(sa.Date(), primary_key=True)
    key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    metric: Mapped[int] = mapped_column(sa.SmallInteger(), primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(sa.SmallInteger(), primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
