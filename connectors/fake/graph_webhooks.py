"""Webhook deliveries as Meta sends them: the payloads for new comments, messages and mentions, signed
with ``X-Hub-Signature-256`` (and the legacy ``X-Hub-Signature``) under the page's app secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from typing import Any

import httpx

from connectors.fake.graph_state import Comment, DirectMessage, GraphPage, GraphWorld


def sign(app_secret: str, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-Hub-Signature": "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest(),
            "Content-Type": "application/json"}


def comment_event(world: GraphWorld, comment: Comment) -> dict[str, Any]:
    """The ``feed`` (Facebook) or ``comments`` (Instagram) change for a new comment."""
    with world.lock:
        if comment.platform == "instagram":
            medium = world.media[comment.object_id]
            page = next(p for p in world.pages.values() if p.ig_user_id == medium.ig_user_id)
            person = world.people.get(comment.from_id)
            value: dict[str, Any] = {"id": comment.id, "text": comment.message,
                                     "from": {"id": comment.from_id, "username": person.username if person else ""},
                                     "media": {"id": medium.id, "media_product_type": "FEED"}}
            if comment.parent_id:
                value["parent_id"] = comment.parent_id
            return _entry("instagram", str(page.ig_user_id), {"changes": [{"field": "comments", "value": value}]},
                          comment.created)
        post = world.posts[comment.object_id]
        person = world.people.get(comment.from_id)
        value = {"item": "comment", "verb": "add", "comment_id": comment.id, "post_id": post.id,
                 "parent_id": comment.parent_id or post.id, "message": comment.message,
                 "from": {"id": comment.from_id, "name": person.name if person else ""},
                 "created_time": int(comment.created)}
        return _entry("page", post.page_id, {"changes": [{"field": "feed", "value": value}]}, comment.created)


def mention_event(page: GraphPage, comment: Comment) -> dict[str, Any]:
    return _entry("instagram", str(page.ig_user_id), {"changes": [{"field": "mentions", "value": {
        "media_id": comment.object_id, "comment_id": comment.id}}]}, comment.created)


def message_event(world: GraphWorld, message: DirectMessage) -> dict[str, Any]:
    with world.lock:
        thread = world.threads[message.thread_id]
        page = world.pages[thread.page_id]
    instagram = thread.platform == "instagram"
    entry_id = str(page.ig_user_id) if instagram else page.id
    return _entry("instagram" if instagram else "page", entry_id, {"messaging": [{
        "sender": {"id": message.from_id}, "recipient": {"id": message.to_id},
        "timestamp": int(message.created * 1000), "message": {"mid": message.id, "text": message.text}}]},
        message.created)


def _entry(obj: str, entry_id: str, content: dict[str, Any], at: float) -> dict[str, Any]:
    return {"object": obj, "entry": [{"id": entry_id, "time": int(at), **content}]}


async def deliver(url: str, app_secret: str, payloads: list[dict[str, Any]], *, times: int = 1,
                  shuffle: bool = False, client: httpx.AsyncClient | None = None) -> list[int]:
    """POST each payload ``times`` times (in random order when ``shuffle``); the status of each delivery."""
    bodies = [json.dumps(p, separators=(",", ":")).encode() for p in payloads for _ in range(times)]
    if shuffle:
        random.shuffle(bodies)
    own = client is None
    http = client or httpx.AsyncClient(timeout=10)
    try:
        statuses = []
        for body in bodies:
            response = await http.post(url, content=body, headers=sign(app_secret, body))
            statuses.append(response.status_code)
        return statuses
    finally:
        if own:
            await http.aclose()
