"""A Facebook Page through the Graph API: comments under the page's posts and Messenger conversations.

Comments: the page feed lists posts newest first; those updated since the watermark (a comment updates
its post) within ``lookback_days`` go into a queue, and each fetch reads the comments of a few queued
posts (``filter=stream``, ``since`` the watermark less an overlap). The cursor keeps the watermark,
the ids seen inside the overlap and the queue, never Graph's paging cursors, which can be invalidated:

    {"comments": {"since": 1795760000, "seen": {"<id>": <unix>}, "queue": [["<post id>", "<excerpt>"]]},
     "messenger": {"since": 1795760000, "seen": {…}}}

``None`` starts "from now on". Threads and the 24-hour Messenger window are described in ``graph_threads``.
Replies to comments go under the thread's top-level comment; Messenger replies are ``RESPONSE``
messages to the person's PSID. Neither has an idempotency key, so ``find_sent`` looks for our text
among the page's replies in that thread. ``set_hidden`` hides or unhides a comment.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from connectors import graph_messaging as messaging
from connectors.base import Capabilities, InboundMessage, OutboundReply, Page, Permanent
from connectors.common import same_text, utcnow
from connectors.graph import Graph, parse_time, unix
from connectors.graph_threads import (
    CONTEXT_LENGTH,
    OVERLAP,
    comment_thread,
    parse_thread,
    prune_seen,
    with_context,
)

log = logging.getLogger(__name__)

COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id,message,from{id,name}}"
FIND_PAGES = 5
MAX_DEPTH = 4


class FacebookConnector:
    platform = "facebook"
    capabilities = Capabilities(reply_max_length=8000)

    def __init__(self, graph: Graph, page_id: str, *, lookback_days: int = 14, page_size: int = 100,
                 posts_per_fetch: int = 5, messenger: bool = True) -> None:
        self.graph = graph
        self.page_id = page_id
        self.lookback = dt.timedelta(days=lookback_days)
        self.page_size = page_size
        self.posts_per_fetch = posts_per_fetch
        self.messenger = messenger
        self._posts: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.graph.aclose()

    # -- inbound ---------------------------------------------------------------------------------

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        self.graph.check()
        if cursor is None:
            now = unix(utcnow())
            return Page([], {"comments": {"since": now, "seen": {}}, "messenger": {"since": now, "seen": {}}})
        comments: dict[str, Any] = dict(cursor.get("comments") or {"since": 0})
        direct: dict[str, Any] = dict(cursor.get("messenger") or {"since": 0})
        found: list[InboundMessage] = []
        if not comments.get("queue"):
            # A new round: Messenger at once, and the posts whose comments changed into the queue.
            if self.messenger:
                got, direct = await messaging.sweep(self.graph, self.page_id, "messenger", "messenger",
                                                    {self.page_id}, direct)
                found += got
            comments = await self._queue_posts(comments)
        got, comments = await self._scan(comments)
        found += got
        found.sort(key=lambda m: m.created_at)
        return Page(found, {"comments": comments, "messenger": direct}, has_more=bool(comments.get("queue")))

    async def _queue_posts(self, state: dict[str, Any]) -> dict[str, Any]:
        since = int(state.get("since") or 0)
        floor = since - int(OVERLAP.total_seconds())
        oldest = utcnow() - self.lookback
        queue: list[list[str]] = []
        async for posts in self.graph.pages(f"/{self.page_id}/feed", limit=25, max_pages=10,
                                            fields="id,message,created_time,updated_time"):
            if any(parse_time(p.get("created_time")) < oldest for p in posts):
                queue += [[str(p["id"]), _excerpt(p)] for p in posts
                          if parse_time(p.get("created_time")) >= oldest and _updated(p) >= floor]
                break
            queue += [[str(p["id"]), _excerpt(p)] for p in posts if _updated(p) >= floor]
        return {"since": since, "seen": dict(state.get("seen") or {}), "queue": queue, "newest": since}

    async def _scan(self, state: dict[str, Any]) -> tuple[list[InboundMessage], dict[str, Any]]:
        since = int(state.get("since") or 0)
        floor = since - int(OVERLAP.total_seconds())
        queue: list[list[str]] = [list(q) for q in state.get("queue") or []]
        seen: dict[str, Any] = dict(state.get("seen") or {})
        newest = int(state.get("newest") or since)
        found: list[InboundMessage] = []
        taken = 0
        while queue and taken < self.posts_per_fetch and len(found) < self.page_size:
            post_id, excerpt = queue[0]
            self._posts[post_id] = excerpt
            comments: list[dict[str, Any]] = []
            async for items in self.graph.pages(f"/{post_id}/comments", filter="stream", order="chronological",
                                                since=floor, fields=COMMENT_FIELDS, limit=100):
                comments += items
            parents = {str(c["id"]): _parent_id(c) for c in comments}
            for comment in comments:
                at = unix(parse_time(comment.get("created_time")))
                if at < floor or str(comment["id"]) in seen:
                    continue
                seen[str(comment["id"])] = at
                newest = max(newest, at)
                if str((comment.get("from") or {}).get("id")) != self.page_id:
                    found.append(await self._comment(comment, parents, excerpt))
            queue.pop(0)
            taken += 1
            if self.graph.busy:
                break  # the rest of the queue waits in the cursor for the next poll
        if queue:
            return found, {"since": since, "seen": seen, "queue": queue, "newest": newest}
        return found, {"since": newest, "seen": prune_seen(seen, newest)}

    async def _comment(self, comment: dict[str, Any], parents: dict[str, str | None],
                       post_excerpt: str | None) -> InboundMessage:
        author = messaging.person(comment.get("from"), "unknown")
        parent = comment.get("parent") if isinstance(comment.get("parent"), dict) else None
        root = await self._root(str(comment["id"]), parents)
        text = str(comment.get("message") or "(an attachment)")
        if parent is None:
            text = with_context(text, post_excerpt)
        elif str((parent.get("from") or {}).get("id")) != author.id:
            who = (parent.get("from") or {}).get("name") or "someone"
            text = with_context(text, str(parent.get("message") or ""), f"replying to {who}")
        return InboundMessage(external_id=str(comment["id"]), author=author, text=text,
                              created_at=parse_time(comment.get("created_time")),
                              thread_id=comment_thread(root, author.id), kind="comment", raw=dict(comment))

    async def _root(self, comment_id: str, parents: dict[str, str | None]) -> str:
        """The top-level comment above this one: from what was fetched, else by asking Graph."""
        current = comment_id
        for _ in range(MAX_DEPTH):
            if current in parents:
                parent = parents[current]
            else:
                parent = _parent_id(await self.graph.get(f"/{current}", fields="id,parent{id}"))
                parents[current] = parent
            if not parent:
                return current
            current = parent
        return current

    async def from_webhook(self, entries: Sequence[dict[str, Any]]) -> list[InboundMessage]:
        """The messages a verified ``page`` delivery announces, read back from Graph in full, so they come
        out exactly as polling would make them (text, context, thread)."""
        found: list[InboundMessage] = []
        parents: dict[str, str | None] = {}
        for entry in entries:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                if change.get("field") != "feed" or value.get("item") != "comment" or \
                        value.get("verb") not in ("add", "edited") or not value.get("comment_id"):
                    continue
                if str((value.get("from") or {}).get("id")) == self.page_id:
                    continue
                try:
                    comment = await self.graph.get(f"/{value['comment_id']}", fields=COMMENT_FIELDS)
                except Permanent as e:  # deleted meanwhile, or hidden from us: the delivery's other items go on
                    log.info("Facebook webhook comment %s cannot be read back: %s", value.get("comment_id"), e)
                    continue
                parents[str(comment["id"])] = _parent_id(comment)
                excerpt = await self._post_excerpt(str(value.get("post_id") or ""))
                found.append(await self._comment(comment, parents, excerpt))
            for event in entry.get("messaging") or []:
                message = event.get("message") or {}
                sender = str((event.get("sender") or {}).get("id") or "")
                if not message.get("mid") or message.get("is_echo") or sender in ("", self.page_id):
                    continue
                author = await messaging.profile(self.graph, sender, "name")
                found.append(messaging.direct_message("messenger", {
                    "id": message["mid"], "message": message.get("text"),
                    "created_time": parse_time(event.get("timestamp")).isoformat()}, author))
        return found

    async def _post_excerpt(self, post_id: str) -> str | None:
        if not post_id:
            return None
        if post_id not in self._posts:
            self._posts[post_id] = _excerpt(await self.graph.get(f"/{post_id}", fields="id,message"))
        return self._posts[post_id]

    # -- outbound --------------------------------------------------------------------------------

    async def send_reply(self, reply: OutboundReply) -> str:
        kind, parts = parse_thread(reply.thread_id)
        if kind == "comment":
            body = await self.graph.post(f"/{parts[0]}/comments", {"message": reply.text})
            if not body.get("id"):
                raise Permanent("Graph accepted the comment without an id")
            return str(body["id"])
        if kind == "messenger":
            return await messaging.send(self.graph, self.page_id, parts[0], reply.text)
        raise Permanent(f"a Facebook reply needs a comment thread or a Messenger conversation, not {reply.thread_id!r}")

    async def find_sent(self, reply: OutboundReply) -> str | None:
        kind, parts = parse_thread(reply.thread_id)
        if kind == "messenger":
            return await messaging.find(self.graph, self.page_id, "messenger", parts[0], reply.text, {self.page_id},
                                        reply.in_reply_to)
        if kind != "comment":
            return None
        floor = None
        if reply.in_reply_to:  # our reply is newer than the comment it answers
            answered = await self.graph.get(f"/{reply.in_reply_to}", fields="id,created_time")
            floor = parse_time(answered.get("created_time")) - dt.timedelta(seconds=1)
        async for comments in self.graph.pages(f"/{parts[0]}/comments", max_pages=FIND_PAGES, filter="stream",
                                               order="reverse_chronological", limit=100,
                                               fields="id,message,created_time,from{id}"):
            for comment in comments:
                if floor is not None and parse_time(comment.get("created_time")) < floor:
                    return None
                if str((comment.get("from") or {}).get("id")) == self.page_id and \
                        same_text(str(comment.get("message") or ""), reply.text):
                    return str(comment["id"])
        return None

    # -- moderation ------------------------------------------------------------------------------

    async def set_hidden(self, external_id: str, hidden: bool) -> None:
        """Hide a comment from everyone but its author and their friends (or show it again)."""
        body = await self.graph.post(f"/{external_id}", {"is_hidden": "true" if hidden else "false"})
        if body.get("success") is False:
            raise Permanent("Graph did not change the comment's visibility")


def _parent_id(comment: dict[str, Any]) -> str | None:
    parent = comment.get("parent")
    return str(parent["id"]) if isinstance(parent, dict) and parent.get("id") else None


def _updated(post: dict[str, Any]) -> int:
    return unix(parse_time(post.get("updated_time") or post.get("created_time")))


def _excerpt(post: dict[str, Any]) -> str:
    return str(post.get("message") or "")[:CONTEXT_LENGTH]
