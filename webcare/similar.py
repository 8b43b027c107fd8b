"""Similar answered questions: for an open conversation, the earlier conversations most like it that got
an answer, with that answer, from every department, so what one department knows reaches the others."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from rapidfuzz import fuzz, process

from webcare.access import Actor, conversation_visible
from webcare.assist_models import Fingerprint
from webcare.conversations import iso, visible_conversation
from webcare.db import Database
from webcare.models import Account, Conversation, Department, Message, Reply, User
from webcare.normalize import Normalised, normalise

#: token_set_ratio of the normalised texts below which a conversation is not similar.
CUTOFF = 60
LOOKBACK = dt.timedelta(days=180)
#: Candidates must contain one of the question's longest words: the database narrows before rapidfuzz.
NARROW_WORDS = 4


async def similar_answered(db: Database, actor: Actor, conversation_id: int, *, limit: int = 5,
                           now: dt.datetime | None = None) -> dict[str, Any]:
    async with db.read() as s:
        conversation = await visible_conversation(s, actor, conversation_id)
        texts = list(await s.scalars(
            sa.select(Message.text).where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.created_at, Message.id).limit(5)))
        question = normalise(" ".join(texts))
        narrow = sorted((w for w in question.words if len(w) >= 4 or w in question.ids), key=len,
                        reverse=True)[:NARROW_WORDS]
        if not narrow:
            return {"items": []}
        since = (now or dt.datetime.now(dt.UTC)) - LOOKBACK
        F = Fingerprint
        answered = sa.select(Reply.conversation_id).where(Reply.state == "sent", Reply.sent_at >= since)
        rows = (await s.execute(
            sa.select(F.conversation_id, F.norm_text, F.keys).join(Conversation, Conversation.id == F.conversation_id)
            .where(F.conversation_id.in_(answered), F.conversation_id != conversation.id, conversation_visible(actor),
                   sa.or_(*(F.norm_text.contains(w, autoescape=True) for w in narrow))))).all()
        ranked = _rank(question, [(r.conversation_id, Normalised.stored(r.norm_text, r.keys)) for r in rows], limit)
        if not ranked:
            return {"items": []}
        ids = [cid for cid, _ in ranked]
        answers = await _answers(s, ids)
        info = {row.id: row for row in await s.execute(
            sa.select(Conversation.id, Conversation.subject_preview, Conversation.status, Conversation.author_handle,
                      Account.id.label("account_id"), Account.name.label("account_name"),
                      Department.id.label("department_id"), Department.name.label("department_name"))
            .join(Account, Account.id == Conversation.account_id)
            .join(Department, Department.id == Account.department_id)
            .where(Conversation.id.in_(ids)))}
    return {"items": [{
        "conversation_id": cid, "score": score, "question": info[cid].subject_preview, "status": info[cid].status,
        "account": {"id": info[cid].account_id, "name": info[cid].account_name},
        "department": {"id": info[cid].department_id, "name": info[cid].department_name},
        "answer": answers.get(cid),
    } for cid, score in ranked if cid in info]}


def _rank(question: Normalised, candidates: list[tuple[int, Normalised]], limit: int) -> list[tuple[int, int]]:
    if not candidates:
        return []
    found = process.extract(question.text, [n.text for _, n in candidates], scorer=fuzz.token_set_ratio,
                            score_cutoff=CUTOFF, limit=limit * 4)
    ranked = []
    for _, score, index in found:
        cid, other = candidates[index]
        if question.ids and other.ids and not question.ids & other.ids:
            score *= 0.8  # another number (a bus line, a plate): likely another case, so lower, not gone
        if score >= CUTOFF:
            ranked.append((cid, round(score)))
    ranked.sort(key=lambda pair: (-pair[1], -pair[0]))
    return ranked[:limit]


async def _answers(session: Any, conversation_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The latest sent reply of each conversation."""
    rows = await session.execute(
        sa.select(Reply.conversation_id, Message.text, Reply.sent_at, User.id, User.name)
        .join(Message, Message.id == Reply.message_id).join(User, User.id == Reply.user_id)
        .where(Reply.conversation_id.in_(conversation_ids), Reply.state == "sent")
        .order_by(Reply.sent_at, Reply.id))
    return {cid: {"text": text, "sent_at": iso(at), "by": {"id": uid, "name": name}}
            for cid, text, at, uid, name in rows}
