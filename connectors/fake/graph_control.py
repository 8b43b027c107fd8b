"""Control routes for the fake Graph API, under ``/_control/graph``:

    POST /pages      {"username", "name"?, "token"?, "app_secret"?, "instagram"?, "instagram_messaging"?}
                     -> {"page_id", "token", "app_secret", "ig_user_id"}
    POST /pages/{username}/revoke   the page's token answers code 190 from now on
    POST /posts      {"page", "message"} -> the post
    POST /comments   {"post_id" | "media_id", "message", "author", "author_name"?, "parent_id"?, "ago"?}
    POST /messages   {"page", "text", "sender", "sender_name"?, "platform": messenger|instagram, "ago"?}
    POST /media      {"page", "caption"} -> the Instagram medium
    POST /mentions   {"page", "text", "author"} -> a comment mentioning the page's IG account
    POST /subscribe  {"url"}: every inject above is also delivered, signed, to this webhook URL
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fake.graph import GraphApi
from connectors.fake.graph_webhooks import comment_event, deliver, mention_event, message_event
from connectors.fake.state import FakePlatform

log = logging.getLogger(__name__)


class GraphControl:
    def __init__(self, fake: FakePlatform, body: Any, text: Any) -> None:
        self.fake = fake
        self.api = GraphApi(fake)
        self._body = body
        self._text = text
        self._tasks: set[asyncio.Task[Any]] = set()

    def routes(self) -> list[Route]:
        return [Route("/graph/pages", self.add_page, methods=["POST"]),
                Route("/graph/pages/{username}/revoke", self.revoke, methods=["POST"]),
                Route("/graph/posts", self.post, methods=["POST"]),
                Route("/graph/comments", self.comment, methods=["POST"]),
                Route("/graph/messages", self.message, methods=["POST"]),
                Route("/graph/media", self.medium, methods=["POST"]),
                Route("/graph/mentions", self.mention, methods=["POST"]),
                Route("/graph/subscribe", self.subscribe, methods=["POST"])]

    async def add_page(self, request: Request) -> Response:
        body = await self._body(request)
        page = self.fake.graph.add_page(self._text(body, "username"), body.get("name"), token=body.get("token"),
                                        app_secret=body.get("app_secret"), instagram=body.get("instagram"),
                                        instagram_messaging=bool(body.get("instagram_messaging", True)))
        return JSONResponse({"page_id": page.id, "token": page.token, "app_secret": page.app_secret,
                             "ig_user_id": page.ig_user_id}, 201)

    async def revoke(self, request: Request) -> Response:
        with self.fake.lock:
            self.fake.graph.page(request.path_params["username"]).revoked = True
        return JSONResponse({"revoked": True})

    async def post(self, request: Request) -> Response:
        body = await self._body(request)
        post = self.fake.graph.add_post(self.fake.graph.page(self._text(body, "page")), self._text(body, "message"))
        return JSONResponse(self.api.post_json(post), 201)

    async def comment(self, request: Request) -> Response:
        body = await self._body(request)
        w = self.fake.graph
        author = w.person(self._text(body, "author"), body.get("author_name"))
        target = str(body.get("post_id") or body.get("media_id") or "")
        if target not in w.posts and target not in w.media:
            raise KeyError(f"no post or medium {target!r}")
        comment = w.add_comment("facebook" if target in w.posts else "instagram", target, author.id,
                                self._text(body, "message"), parent_id=body.get("parent_id"),
                                ago=float(body.get("ago") or 0))
        self._notify(comment_event(w, comment), comment.object_id)
        return JSONResponse(self.api.comment_json(comment, nested=False), 201)

    async def message(self, request: Request) -> Response:
        body = await self._body(request)
        w = self.fake.graph
        page = w.page(self._text(body, "page"))
        sender = w.person(self._text(body, "sender"), body.get("sender_name"))
        message = w.add_direct_message(page, body.get("platform") or "messenger", sender.id, self._text(body, "text"),
                                       ago=float(body.get("ago") or 0))
        self._notify(message_event(w, message), page.id)
        return JSONResponse(self.api.message_json(message), 201)

    async def medium(self, request: Request) -> Response:
        body = await self._body(request)
        page = self.fake.graph.page(self._text(body, "page"))
        if page.ig_user_id is None:
            raise KeyError(f"page {page.username!r} has no Instagram account")
        medium = self.fake.graph.add_medium(page.ig_user_id, self._text(body, "caption"))
        return JSONResponse(self.api.medium_json(medium), 201)

    async def mention(self, request: Request) -> Response:
        body = await self._body(request)
        w = self.fake.graph
        page = w.page(self._text(body, "page"))
        author = w.person(self._text(body, "author"))
        if page.ig_user_id is None:
            raise KeyError(f"page {page.username!r} has no Instagram account")
        medium = w.add_medium(page.ig_user_id, f"a post by @{author.username}", owner_id=author.id)
        comment = w.add_comment("instagram", medium.id, author.id, self._text(body, "text"))
        self._notify(mention_event(page, comment), page.id)
        return JSONResponse(self.api.comment_json(comment, nested=False), 201)

    async def subscribe(self, request: Request) -> Response:
        body = await self._body(request)
        self.fake.graph_webhook_url = self._text(body, "url")
        return JSONResponse({"url": self.fake.graph_webhook_url})

    def _notify(self, payload: dict[str, Any], object_id: str) -> None:
        url = getattr(self.fake, "graph_webhook_url", None)
        if not url:
            return
        notify(self.fake, payload, self._tasks)


def notify(fake: FakePlatform, payload: dict[str, Any], tasks: set[asyncio.Task[Any]]) -> None:
    """Deliver ``payload`` to the subscribed webhook URL in the background, signed by its page's secret."""
    url = getattr(fake, "graph_webhook_url", None)
    entry_id = payload["entry"][0]["id"]
    with fake.lock:
        page = next((p for p in fake.graph.pages.values() if entry_id in (p.id, p.ig_user_id)), None)
    if not url or page is None:
        return
    async def send() -> None:
        try:
            await deliver(url, page.app_secret, [payload])
        except Exception as e:  # the app is down or slow: Meta would retry; polling catches up anyway
            log.warning("webhook delivery to %s failed: %s", url, e)

    task = asyncio.get_running_loop().create_task(send())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
