"""Direct messages through a Page's conversations: Messenger, and Instagram's with Facebook Login.

Graph offers no time-based paging on ``/{page-id}/conversations``, so a sweep walks conversations by
``updated_time``, newest first, until it passes the watermark; the cursor keeps the watermark (unix
seconds, platform time) and the ids seen inside the overlap window (PLATFORMS.md §2: don't store
Graph's paging cursors).
"""

from __future__ import annotations

from typing import Any

from connectors.base import Author, InboundMessage, Permanent
from connectors.common import same_text
from connectors.graph import Graph, parse_time, unix
from connectors.graph_threads import OVERLAP, messaging_thread, prune_seen

MESSAGE_FIELDS = "id,message,from,created_time"
FIND_PAGES = 5


def empty_text(message: dict[str, Any]) -> str:
    return str(message.get("message") or message.get("text") or "(an attachment)")


def person(raw: Any, fallback_id: str) -> Author:
    raw = raw if isinstance(raw, dict) else {}
    person_id = str(raw.get("id") or fallback_id)
    name = str(raw.get("name") or raw.get("username") or person_id)
    return Author(id=person_id, handle=str(raw.get("username") or name), name=name)


def direct_message(kind: str, message: dict[str, Any], author: Author) -> InboundMessage:
    return InboundMessage(external_id=str(message["id"]), author=author, text=empty_text(message),
                          created_at=parse_time(message.get("created_time")),
                          thread_id=messaging_thread(kind, author.id), kind="dm", raw=dict(message))


async def sweep(graph: Graph, page_id: str, platform: str, kind: str, own_ids: set[str],
                state: dict[str, Any]) -> tuple[list[InboundMessage], dict[str, Any]]:
    """New messages from the public in conversations updated since the watermark, and the next state."""
    since = int(state.get("since") or 0)
    floor = since - int(OVERLAP.total_seconds())
    seen: dict[str, Any] = dict(state.get("seen") or {})
    newest = since
    found: list[InboundMessage] = []
    async for conversations in graph.pages(f"/{page_id}/conversations", platform=platform, limit=25,
                                           fields=f"id,updated_time,messages.limit(25){{{MESSAGE_FIELDS}}}"):
        passed = False
        for conversation in conversations:
            if unix(parse_time(conversation.get("updated_time"))) < floor:
                passed = True
                break
            for message in await _recent(graph, conversation, floor):
                at = unix(parse_time(message.get("created_time")))
                if at < floor or str(message.get("id")) in seen:
                    continue
                seen[str(message["id"])] = at
                newest = max(newest, at)
                sender = message.get("from") or {}
                if str(sender.get("id")) in own_ids:
                    continue
                found.append(direct_message(kind, message, person(sender, "unknown")))
        if passed:
            break
    return found, {"since": newest, "seen": prune_seen(seen, newest)}


async def _recent(graph: Graph, conversation: dict[str, Any], floor: int) -> list[dict[str, Any]]:
    """The conversation's messages back to ``floor``: the 25 inline ones, more pages when all are new."""
    edge = conversation.get("messages") or {}
    messages = [m for m in edge.get("data") or [] if isinstance(m, dict)]
    following = (edge.get("paging") or {}).get("next")
    for _ in range(FIND_PAGES):
        if not following or not messages or unix(parse_time(messages[-1].get("created_time"))) < floor:
            break
        body = await graph.follow(str(following))
        messages += [m for m in body.get("data") or [] if isinstance(m, dict)]
        following = (body.get("paging") or {}).get("next")
    return messages


async def send(graph: Graph, page_id: str, recipient: str, text: str) -> str:
    """A RESPONSE message to the person (allowed within 24 hours of their last message)."""
    body = await graph.post(f"/{page_id}/messages", json_body={
        "recipient": {"id": recipient}, "messaging_type": "RESPONSE", "message": {"text": text}})
    message_id = body.get("message_id")
    if not message_id:
        raise Permanent("Graph accepted the message without a message_id")
    return str(message_id)


async def find(graph: Graph, page_id: str, platform: str, recipient: str, text: str, own_ids: set[str],
               after_id: str | None) -> str | None:
    """Our message with this text in the conversation with ``recipient``, newer than ``after_id``."""
    body = await graph.get(f"/{page_id}/conversations", platform=platform, user_id=recipient,
                           fields=f"id,messages.limit(50){{{MESSAGE_FIELDS}}}")
    for conversation in body.get("data") or []:
        edge = conversation.get("messages") or {}
        for _ in range(FIND_PAGES):
            for message in edge.get("data") or []:
                if after_id and str(message.get("id")) == after_id:
                    return None  # what we answered: our reply would be newer
                sender = message.get("from") or {}
                if str(sender.get("id")) in own_ids and same_text(str(message.get("message") or ""), text):
                    return str(message["id"])
            following = (edge.get("paging") or {}).get("next")
            if not following:
                break
            edge = await graph.follow(str(following))
    return None


async def profile(graph: Graph, person_id: str, fields: str) -> Author:
    """A person's name from their page-scoped id (webhooks carry only the id); the id when Graph says no."""
    try:
        return person(await graph.get(f"/{person_id}", fields=fields), person_id)
    except Permanent:
        return Author(id=person_id, handle=person_id, name=person_id)
