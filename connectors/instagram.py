"""An Instagram business account through the Graph API (the Facebook Login variant, PLATFORMS.md §3).

Comments: Instagram pages comments without ``since``, so the cursor remembers each recent medium's
``comments_count`` and only media whose count moved are read again (top-level comments with their
``replies``); ids seen inside the overlap window keep a re-read from bringing anything twice:

    {"since": <unix>, "seen": {"<id>": <unix>}, "media": {"<media id>": <comments_count>},
     "dms": {"since": <unix>, "seen": {…}} | {"unavailable_until": "<iso>"}, "newest"?: <unix>}

When the usage headers say the quota is nearly spent, a fetch stops before the next changed medium:
the media not yet read keep their old count and ``since`` stays put (``newest`` waits beside it), so
the next poll reads them with the same floor instead of skipping their older comments.

Mentions of the account cannot be listed: they arrive only by webhook (``from_webhook``) and are read
with ``mentioned_comment`` / ``mentioned_media``; replies to them go through ``/{ig-user-id}/mentions``.
Direct messages come from the Page's ``conversations?platform=instagram`` where the access allows;
without ``instagram_manage_messages`` (a permission error) they rest for a day while comments go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from connectors import graph_messaging as messaging
from connectors.base import Author, Capabilities, InboundMessage, OutboundReply, Page, Permanent
from connectors.common import same_text, utcnow
from connectors.graph import Graph, Refused, parse_time, unix
from connectors.graph_threads import (
    CONTEXT_LENGTH,
    OVERLAP,
    comment_thread,
    parse_thread,
    prune_seen,
    with_context,
)

log = logging.getLogger(__name__)

COMMENT_FIELDS = "id,text,timestamp,username,from{id,username},parent_id"
REPLY_FIELDS = "id,text,timestamp,username,from{id,username}"
DM_RETRY = dt.timedelta(days=1)
FIND_PAGES = 5


class InstagramConnector:
    platform = "instagram"
    capabilities = Capabilities(reply_max_length=2200)

    def __init__(self, graph: Graph, ig_user_id: str, page_id: str | None = None, *, recent_media: int = 25,
                 direct_messages: bool = True) -> None:
        self.graph = graph
        self.ig_user_id = ig_user_id
        self.page_id = page_id
        self.recent_media = recent_media
        self.direct_messages = direct_messages and bool(page_id)
        self._captions: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.graph.aclose()

    # -- inbound ---------------------------------------------------------------------------------

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        self.graph.check()
        media = await self._media()
        if cursor is None:
            now = unix(utcnow())
            return Page([], {"since": now, "seen": {}, "media": {m: c for m, (c, _) in media.items()},
                             "dms": {"since": now, "seen": {}}})
        since = int(cursor.get("since") or 0)
        floor = since - int(OVERLAP.total_seconds())
        seen: dict[str, Any] = dict(cursor.get("seen") or {})
        known: dict[str, Any] = dict(cursor.get("media") or {})
        newest = int(cursor.get("newest") or since)
        found: list[InboundMessage] = []
        behind = False
        for media_id, (count, caption) in media.items():
            if known.get(media_id) == count:
                continue
            if self.graph.busy:
                behind = True  # the quota is nearly spent: this medium is read at the next poll
                break
            self._captions[media_id] = caption
            for comment in await self._comments(media_id):
                at = unix(parse_time(comment.get("timestamp")))
                if at < floor or str(comment["id"]) in seen:
                    continue
                seen[str(comment["id"])] = at
                newest = max(newest, at)
                if not self._ours(comment):
                    found.append(self._comment(comment, caption))
            known[media_id] = count
        dms: dict[str, Any] = dict(cursor.get("dms") or {"since": since})
        if self.direct_messages and not behind:
            got, dms = await self._dms(dms)
            found += got
        found.sort(key=lambda m: m.created_at)
        media_counts = {m: known[m] for m in media if m in known}
        if behind:
            # The watermark stays until every changed medium is read, or their older comments would fall
            # below the floor; what was read meanwhile is in ``seen`` (and its medium's count is stored).
            return Page(found, {"since": since, "seen": seen, "newest": newest, "media": media_counts, "dms": dms},
                        has_more=True)
        return Page(found, {"since": newest, "seen": prune_seen(seen, newest), "media": media_counts, "dms": dms})

    async def _media(self) -> dict[str, tuple[int, str]]:
        """The account's recent media: their comment counts and caption excerpts, newest first."""
        found: dict[str, tuple[int, str]] = {}
        async for items in self.graph.pages(f"/{self.ig_user_id}/media", max_pages=4, limit=25,
                                            fields="id,caption,timestamp,comments_count,permalink"):
            for item in items:
                found[str(item["id"])] = (int(item.get("comments_count") or 0),
                                          str(item.get("caption") or "")[:CONTEXT_LENGTH])
            if len(found) >= self.recent_media:
                break
        return dict(list(found.items())[: self.recent_media])

    async def _comments(self, media_id: str) -> list[dict[str, Any]]:
        """Every comment of a medium, replies included (with their top-level comment as ``parent_id``)."""
        comments: list[dict[str, Any]] = []
        async for items in self.graph.pages(f"/{media_id}/comments", limit=50,
                                            fields=f"{COMMENT_FIELDS},replies{{{REPLY_FIELDS}}}"):
            for comment in items:
                comments.append(comment)
                for reply in (comment.get("replies") or {}).get("data") or []:
                    comments.append({**reply, "parent_id": comment["id"], "parent": comment})
        return comments

    async def _dms(self, state: dict[str, Any]) -> tuple[list[InboundMessage], dict[str, Any]]:
        resting = state.get("unavailable_until")
        if resting and dt.datetime.fromisoformat(resting) > utcnow():
            return [], state
        if resting:
            state = {"since": unix(utcnow()), "seen": {}}
        assert self.page_id is not None
        try:
            return await messaging.sweep(self.graph, self.page_id, "instagram", "igdm",
                                         {self.ig_user_id, self.page_id}, state)
        except Refused as e:
            if e.permission:  # no instagram_manage_messages: comments go on without direct messages
                return [], {"unavailable_until": (utcnow() + DM_RETRY).isoformat(), "reason": str(e)[:200]}
            raise

    def _ours(self, comment: dict[str, Any]) -> bool:
        return str((comment.get("from") or {}).get("id")) == self.ig_user_id

    def _comment(self, comment: dict[str, Any], caption: str | None) -> InboundMessage:
        author = _author(comment)
        parent = comment.get("parent") if isinstance(comment.get("parent"), dict) else None
        root = str(comment.get("parent_id") or comment["id"])
        text = str(comment.get("text") or "")
        if not comment.get("parent_id"):
            text = with_context(text, caption)
        elif parent is not None and _author(parent).id != author.id:
            text = with_context(text, str(parent.get("text") or ""), f"replying to @{_author(parent).handle}")
        return InboundMessage(external_id=str(comment["id"]), author=author, text=text,
                              created_at=parse_time(comment.get("timestamp")),
                              thread_id=comment_thread(root, author.id), kind="comment", raw=dict(comment))

    async def from_webhook(self, entries: Sequence[dict[str, Any]]) -> list[InboundMessage]:
        """The messages an ``instagram`` delivery announces, read back from Graph as polling reads them;
        mentions, which polling cannot see, come only this way."""
        found: list[InboundMessage] = []
        for entry in entries:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                field = change.get("field")
                try:
                    if field == "comments" and value.get("id"):
                        if str((value.get("from") or {}).get("id")) == self.ig_user_id:
                            continue
                        found.append(await self._read_comment(str(value["id"]),
                                                              (value.get("media") or {}).get("id")))
                    elif field == "mentions" and value.get("media_id"):
                        mention = await self._mention(str(value["media_id"]), value.get("comment_id"))
                        if mention is not None:
                            found.append(mention)
                except Permanent as e:  # deleted meanwhile, or not ours to see: the delivery's other items go on
                    log.info("Instagram webhook item %s cannot be read back: %s", value, e)
            for event in entry.get("messaging") or []:
                message = event.get("message") or {}
                sender = str((event.get("sender") or {}).get("id") or "")
                if not message.get("mid") or message.get("is_echo") or sender in ("", self.ig_user_id, self.page_id):
                    continue
                author = await messaging.profile(self.graph, sender, "username")
                found.append(messaging.direct_message("igdm", {
                    "id": message["mid"], "message": message.get("text"),
                    "created_time": parse_time(event.get("timestamp")).isoformat()}, author))
        return found

    async def _read_comment(self, comment_id: str, media_id: str | None) -> InboundMessage:
        comment = await self.graph.get(f"/{comment_id}", fields=f"{COMMENT_FIELDS},media{{id}}")
        media_id = media_id or (comment.get("media") or {}).get("id")
        if comment.get("parent_id"):
            comment["parent"] = await self.graph.get(f"/{comment['parent_id']}", fields=REPLY_FIELDS)
        caption = None
        if media_id and not comment.get("parent_id"):
            if media_id not in self._captions:
                medium = await self.graph.get(f"/{media_id}", fields="id,caption")
                self._captions[media_id] = str(medium.get("caption") or "")[:CONTEXT_LENGTH]
            caption = self._captions[media_id]
        return self._comment(comment, caption)

    async def _mention(self, media_id: str, comment_id: Any) -> InboundMessage | None:
        if comment_id:
            body = await self.graph.get(f"/{self.ig_user_id}", fields=(
                f"mentioned_comment.comment_id({comment_id}){{id,text,timestamp,username,from{{id,username}}}}"))
            item = body.get("mentioned_comment") or {}
            text = str(item.get("text") or "")
        else:
            body = await self.graph.get(f"/{self.ig_user_id}", fields=(
                f"mentioned_media.media_id({media_id}){{id,caption,timestamp,username}}"))
            item = body.get("mentioned_media") or {}
            text = str(item.get("caption") or "")
        if not item.get("id"):
            return None
        author = _author(item)
        return InboundMessage(external_id=str(item["id"]), author=author, text=text,
                              created_at=parse_time(item.get("timestamp")),
                              thread_id=f"mention:{media_id}:{comment_id or ''}", kind="mention", raw=dict(item))

    # -- outbound --------------------------------------------------------------------------------

    async def send_reply(self, reply: OutboundReply) -> str:
        kind, parts = parse_thread(reply.thread_id)
        if kind == "comment":
            body = await self.graph.post(f"/{parts[0]}/replies", {"message": reply.text})
        elif kind == "mention":
            params = {"media_id": parts[0], "message": reply.text}
            if len(parts) > 1 and parts[1]:
                params["comment_id"] = parts[1]
            body = await self.graph.post(f"/{self.ig_user_id}/mentions", params)
        elif kind == "igdm" and self.page_id:
            return await messaging.send(self.graph, self.page_id, parts[0], reply.text)
        else:
            raise Permanent(f"an Instagram reply needs a comment thread, a mention or a conversation, "
                            f"not {reply.thread_id!r}")
        if not body.get("id"):
            raise Permanent("Graph accepted the reply without an id")
        return str(body["id"])

    async def find_sent(self, reply: OutboundReply) -> str | None:
        kind, parts = parse_thread(reply.thread_id)
        if kind == "igdm" and self.page_id:
            return await messaging.find(self.graph, self.page_id, "instagram", parts[0], reply.text,
                                        {self.ig_user_id, self.page_id}, reply.in_reply_to)
        if kind == "mention":
            # Our reply lives on someone else's media, which we cannot list: posting again could double it,
            # so a person looks on Instagram instead.
            raise Permanent("whether this reply to a mention reached Instagram cannot be checked; "
                            "look on Instagram before sending it again")
        if kind != "comment":
            return None
        floor = None
        if reply.in_reply_to:
            answered = await self.graph.get(f"/{reply.in_reply_to}", fields="id,timestamp")
            floor = parse_time(answered.get("timestamp")) - dt.timedelta(seconds=1)
        async for replies in self.graph.pages(f"/{parts[0]}/replies", max_pages=FIND_PAGES, fields=REPLY_FIELDS):
            for item in replies:
                if floor is not None and parse_time(item.get("timestamp")) < floor:
                    continue
                if self._ours(item) and same_text(str(item.get("text") or ""), reply.text):
                    return str(item["id"])
        return None

    # -- moderation ------------------------------------------------------------------------------

    async def set_hidden(self, external_id: str, hidden: bool) -> None:
        body = await self.graph.post(f"/{external_id}", {"hide": "true" if hidden else "false"})
        if body.get("success") is False:
            raise Permanent("Graph did not change the comment's visibility")


def _author(item: dict[str, Any]) -> Author:
    raw = item.get("from")
    sender: dict[str, Any] = raw if isinstance(raw, dict) else {}
    username = str(sender.get("username") or item.get("username") or sender.get("id") or "unknown")
    return Author(id=str(sender.get("id") or username), handle=username, name=username)
