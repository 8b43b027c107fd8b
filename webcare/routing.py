"""Routing rules: keywords and fuzzy phrases that send a new conversation to a department's view
(its ``assignee`` becomes that department, its status stays ``open``) or suggest an expert.

Rules run in ``position`` order when a message opens a conversation; the first that matches decides,
and why it matched is kept with the conversation. A keyword matches whole words (``parkeer*`` matches
words starting with it); a phrase matches when rapidfuzz's ``partial_ratio`` of the normalised phrase
against the normalised message reaches the rule's threshold, so typos and filler words do not hide it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from rapidfuzz import fuzz
from sqlalchemy.ext.asyncio import AsyncSession

from webcare.access import Actor
from webcare.assist_models import ConversationRoute, RoutingRule
from webcare.conversations import iso
from webcare.db import Database, Tx
from webcare.errors import BadRequest, NotFound
from webcare.models import Account, Conversation, Department, User
from webcare.normalize import normalise, words
from webcare.people import require_department, require_user

OVERSEERS = ("coordinator", "admin")
_CONVERSATIONS = cast(sa.Table, Conversation.__table__)


@dataclass(frozen=True)
class Match:
    rule_id: int
    rule_name: str
    department_id: int | None
    expert_user_id: int | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "rule_name": self.rule_name, "department_id": self.department_id,
                "expert_user_id": self.expert_user_id, "reason": self.reason}


def rule_json(r: RoutingRule) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "department_id": r.department_id, "expert_user_id": r.expert_user_id,
            "account_id": r.account_id, "keywords": list(r.keywords), "phrases": list(r.phrases),
            "threshold": r.threshold, "position": r.position, "active": r.active,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}


def match(rules: Sequence[RoutingRule], account_id: int, text: str) -> Match | None:
    """The first rule (in the order given) that matches the text, with the reason."""
    plain = " " + " ".join(words(text)) + " "
    norm = normalise(text).text
    for rule in rules:
        if rule.account_id is not None and rule.account_id != account_id:
            continue
        reason = _keyword(rule, plain) or _phrase(rule, norm)
        if reason:
            return Match(rule.id, rule.name, rule.department_id, rule.expert_user_id, reason)
    return None


def _keyword(rule: RoutingRule, plain: str) -> str | None:
    for keyword in rule.keywords:
        prefix = keyword.rstrip().endswith("*")
        needle = " ".join(words(keyword))
        if needle and re.search(r"(?<!\w)" + re.escape(needle) + ("" if prefix else r"(?!\w)"), plain):
            return f"keyword {keyword!r}"
    return None


def _phrase(rule: RoutingRule, norm: str) -> str | None:
    if not norm:
        return None
    for phrase in rule.phrases:
        needle = normalise(phrase).text
        if not needle:
            continue
        # partial_ratio aligns the shorter string inside the longer: a phrase found within a long message.
        score = fuzz.partial_ratio(needle, norm)
        if score >= rule.threshold:
            return f"phrase {phrase!r} ({score:.0f}% alike)"
    return None


async def active_rules(session: AsyncSession) -> list[RoutingRule]:
    return list(await session.scalars(sa.select(RoutingRule).where(RoutingRule.active.is_(True))
                                      .order_by(RoutingRule.position, RoutingRule.id)))


async def route_new(tx: Tx, account_id: int, items: Sequence[tuple[int, str]], rules: Sequence[RoutingRule]) -> None:
    """Route conversations just opened in ``tx`` (id and first message text) by the active ``rules``, in order."""
    routed = [(cid, m) for cid, text in items if (m := match(rules, account_id, text)) is not None]
    if not routed:
        return
    await tx.session.execute(sa.insert(ConversationRoute), [
        {"conversation_id": cid, "rule_id": m.rule_id, "rule_name": m.rule_name, "department_id": m.department_id,
         "expert_user_id": m.expert_user_id, "reason": m.reason, "at": tx.now} for cid, m in routed])
    to_department = [{"cid": cid, "dep": m.department_id} for cid, m in routed if m.department_id is not None]
    if to_department:
        T = _CONVERSATIONS
        await tx.session.execute(
            sa.update(T).where(T.c.id == sa.bindparam("cid"))
            .values(assignee_department_id=sa.bindparam("dep"), version=T.c.version + 1), to_department)
    for cid, m in routed:
        tx.emit("conversation.routed", cid, None, **m.as_json())


async def route_of(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    row = (await session.execute(
        sa.select(ConversationRoute, Department.name, User.name)
        .outerjoin(Department, Department.id == ConversationRoute.department_id)
        .outerjoin(User, User.id == ConversationRoute.expert_user_id)
        .where(ConversationRoute.conversation_id == conversation_id))).first()
    if row is None:
        return None
    route, department, expert = row
    return {"rule_id": route.rule_id, "rule_name": route.rule_name, "reason": route.reason, "at": iso(route.at),
            "department": {"id": route.department_id, "name": department} if route.department_id else None,
            "suggested_expert": {"id": route.expert_user_id, "name": expert} if route.expert_user_id else None}


# Managing the rules


async def list_rules(db: Database) -> list[dict[str, Any]]:
    async with db.read() as s:
        rows = await s.scalars(sa.select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
        return [rule_json(r) for r in rows]


async def create_rule(db: Database, actor: Actor, fields: dict[str, Any]) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        rule = RoutingRule(created_by_id=actor.id, created_at=tx.now, updated_at=tx.now)
        await _apply(tx.session, rule, fields)
        tx.session.add(rule)
        await tx.session.flush()
        tx.emit("routing_rule.created", None, actor.id, rule=rule_json(rule))
        return rule_json(rule)


async def update_rule(db: Database, actor: Actor, rule_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        rule = await tx.session.get(RoutingRule, rule_id, with_for_update=True)
        if rule is None:
            raise NotFound(f"routing rule {rule_id} does not exist", code="rule_not_found")
        await _apply(tx.session, rule, fields)
        rule.updated_at = tx.now
        await tx.session.flush()
        tx.emit("routing_rule.updated", None, actor.id, rule=rule_json(rule))
        return rule_json(rule)


async def delete_rule(db: Database, actor: Actor, rule_id: int) -> dict[str, Any]:
    actor.require(*OVERSEERS)
    async with db.write() as tx:
        gone = (await tx.session.execute(sa.delete(RoutingRule).where(RoutingRule.id == rule_id)
                                         .returning(RoutingRule.id))).scalar_one_or_none()
        if gone is None:
            raise NotFound(f"routing rule {rule_id} does not exist", code="rule_not_found")
        tx.emit("routing_rule.deleted", None, actor.id, rule_id=rule_id)
        return {"id": rule_id, "deleted": True}


async def try_rules(db: Database, text: str, account_id: int | None) -> dict[str, Any]:
    """Which rule would route this text, and why: for coordinators writing rules."""
    async with db.read() as s:
        rules = await active_rules(s)
    found = match(rules, account_id or 0, text)
    return {"match": found.as_json() if found else None}


async def _apply(session: AsyncSession, rule: RoutingRule, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if value is None and key not in ("department_id", "expert_user_id", "account_id"):
            continue
        setattr(rule, key, list(value) if isinstance(value, list | tuple) else value)
    if rule.department_id is None and rule.expert_user_id is None:
        raise BadRequest("a routing rule needs a department_id, an expert_user_id or both", code="invalid_body")
    if not rule.keywords and not rule.phrases:
        raise BadRequest("a routing rule needs at least one keyword or phrase", code="invalid_body")
    if rule.department_id is not None:
        await require_department(session, rule.department_id)
    if rule.expert_user_id is not None:
        await require_user(session, rule.expert_user_id)
    if rule.account_id is not None and await session.get(Account, rule.account_id) is None:
        raise NotFound(f"account {rule.account_id} does not exist", code="account_not_found")
