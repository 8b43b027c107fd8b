"""The Graph API, as far as the Facebook and Instagram connectors use it (PLATFORMS.md §2-3).

Served under ``/graph/{version}``: objects by id (pages, posts, comments, media, people, IG users with
``mentioned_comment``/``mentioned_media``) and their edges (``feed``, ``comments``, ``replies``,
``conversations``, ``messages``, ``media``, ``mentions``); ``POST /{comment-id}`` hides or unhides.
Errors are Graph's: HTTP 400/403/5xx with ``error.code`` (a spent quota is code 32 with
``estimated_time_to_regain_access``, never a 429), and every answer carries usage headers.
Paging is ``paging.cursors`` plus ``paging.next``, which is absent on the last page.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fake.graph_state import Comment, DirectMessage, GraphPage, GraphWorld, Medium, Post
from connectors.fake.middleware import PlatformMiddleware, Reject
from connectors.fake.state import FakePlatform, Posted, RateWindow

WINDOW_SECONDS = 24 * 3600
_ERRORS: dict[int, tuple[int, int, int | None, str]] = {
    # our status -> (HTTP status, code, subcode, message)
    400: (400, 100, None, "(#100) Invalid parameter"),
    401: (400, 190, 460, "Error validating access token: The session has been invalidated."),
    403: (403, 200, None, "(#200) Permissions error"),
    404: (400, 100, 33, "Unsupported get request. Object does not exist, cannot be loaded due to missing "
                        "permissions, or does not support this operation."),
    429: (400, 32, None, "(#32) Page request limit reached"),
    500: (500, 1, None, "An unknown error has occurred."),
    502: (502, 2, None, "An unexpected error has occurred. Please retry your request later."),
    503: (503, 2, None, "An unexpected error has occurred. Please retry your request later."),
    504: (504, 2, None, "An unexpected error has occurred. Please retry your request later."),
}


def graph_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "A" + secrets.token_urlsafe(15)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if code in (1, 2):
        error["is_transient"] = True
    return JSONResponse({"error": error}, status)


class GraphStyle:
    name = "graph"

    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    def error(self, status: int, message: str | None = None, reset: float | None = None) -> Response:
        http, code, subcode, default = _ERRORS.get(status, (status, 1, None, "An unknown error has occurred."))
        response = graph_error(http, code, message or default, subcode)
        if status == 429:
            reset = reset if reset is not None else self.fake.now() + 60
            minutes = max(1, math.ceil((reset - self.fake.now()) / 60))
            response.headers["X-Business-Use-Case-Usage"] = json.dumps({"0": [{
                "type": "pages", "call_count": 100, "total_cputime": 40, "total_time": 40,
                "estimated_time_to_regain_access": minutes}]})
            response.headers["X-Page-Usage"] = json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 40})
        return response

    def rate_headers(self, window: RateWindow) -> dict[str, str]:
        used = min(100, round(100 * (window.limit - max(window.remaining, 0)) / max(window.limit, 1)))
        usage = json.dumps({"call_count": used, "total_cputime": used // 2, "total_time": used // 2})
        return {"X-App-Usage": usage, "X-Page-Usage": usage}

    def account(self, headers: Headers) -> str | None:
        page = self.fake.graph.by_token(_bearer(headers))
        return page.username if page else None

    def bucket(self, method: str, path: str) -> str:
        return "page"  # Graph counts a page's calls together


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.startswith(("Bearer ", "OAuth ")) else None


class GraphApi:
    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    @property
    def world(self) -> GraphWorld:
        return self.fake.graph

    def routes(self) -> list[Route]:
        return [Route("/{version}/me", self.me),
                Route("/{version}/{id}", self.node, methods=["GET", "POST", "DELETE"]),
                Route("/{version}/{id}/{edge}", self.edge, methods=["GET", "POST"])]

    def auth(self, request: Request) -> GraphPage:
        token = _bearer(request.headers) or request.query_params.get("access_token")
        page = self.world.by_token(token)
        if page is None or page.revoked:
            raise Reject(401)
        return page

    async def me(self, request: Request) -> Response:
        page = self.auth(request)
        return JSONResponse({"id": page.id, "name": page.name})

    # -- objects ---------------------------------------------------------------------------------

    async def node(self, request: Request) -> Response:
        page = self.auth(request)
        object_id = request.path_params["id"]
        w = self.world
        with w.lock:
            if request.method == "POST":
                return await self._moderate(request, page, object_id)
            if object_id in w.comments:
                return JSONResponse(self.comment_json(w.comments[object_id], nested=False))
            if object_id in w.posts:
                return JSONResponse(self.post_json(w.posts[object_id]))
            if object_id in w.media:
                return JSONResponse(self.medium_json(w.media[object_id]))
            if object_id == page.ig_user_id:
                return JSONResponse(self.ig_user(request, page))
            if object_id in w.pages:
                return JSONResponse({"id": object_id, "name": w.pages[object_id].name})
            if object_id in w.people:
                person = w.people[object_id]
                wanted = set(request.query_params.get("fields", "name").split(","))
                return JSONResponse({"id": person.id, **{k: v for k, v in (("name", person.name),
                                                                           ("username", person.username))
                                                         if k in wanted}})
        raise Reject(404)

    async def _moderate(self, request: Request, page: GraphPage, object_id: str) -> Response:
        comment = self.world.comments.get(object_id)
        if comment is None:
            raise Reject(404)
        params = {**request.query_params, **(await _form(request))}
        flag = params.get("is_hidden") if comment.platform == "facebook" else params.get("hide")
        if flag not in ("true", "false"):
            raise Reject(400, "(#100) is_hidden or hide must be true or false")
        comment.hidden = flag == "true"
        return JSONResponse({"success": True})

    def ig_user(self, request: Request, page: GraphPage) -> dict[str, Any]:
        fields = request.query_params.get("fields", "")
        assert page.ig_user_id is not None
        body: dict[str, Any] = {"id": page.ig_user_id}
        if match := re.search(r"mentioned_comment\.comment_id\(([^)]+)\)", fields):
            comment = self.world.comments.get(match.group(1))
            if comment is None:
                raise Reject(404)
            body["mentioned_comment"] = self.comment_json(comment, nested=False)
        if match := re.search(r"mentioned_media\.media_id\(([^)]+)\)", fields):
            medium = self.world.media.get(match.group(1))
            if medium is None:
                raise Reject(404)
            body["mentioned_media"] = self.medium_json(medium)
        person = self.world.people[page.ig_user_id]
        body.setdefault("username", person.username)
        return body

    # -- edges -----------------------------------------------------------------------------------

    async def edge(self, request: Request) -> Response:
        page = self.auth(request)
        object_id, edge = request.path_params["id"], request.path_params["edge"]
        if request.method == "POST":
            return await self._create(request, page, object_id, edge)
        w = self.world
        q = request.query_params
        with w.lock:
            if edge == "feed" and object_id == page.id:
                posts = sorted((p for p in w.posts.values() if p.page_id == page.id), key=lambda p: p.created,
                               reverse=True)
                return self.paged(request, [self.post_json(p) for p in posts], 25)
            if edge == "comments" and (object_id in w.posts or object_id in w.comments or object_id in w.media):
                return self.paged(request, self.comments(request, object_id), 25)
            if edge == "replies" and object_id in w.comments:
                replies = [c for c in w.comments.values() if c.parent_id == object_id]
                return self.paged(request, [self.comment_json(c, nested=False) for c in
                                            sorted(replies, key=lambda c: c.created)], 25)
            if edge == "media" and object_id == page.ig_user_id:
                media = sorted((m for m in w.media.values() if m.ig_user_id == object_id and m.owner_id == object_id),
                               key=lambda m: m.created, reverse=True)
                return self.paged(request, [self.medium_json(m) for m in media], 25)
            if edge == "conversations" and object_id == page.id:
                platform = q.get("platform", "messenger")
                if platform == "instagram" and not page.instagram_messaging:
                    raise Reject(403, "(#230) Requires instagram_manage_messages permission to manage the object")
                threads = sorted((t for t in w.threads.values() if t.page_id == page.id and t.platform == platform
                                  and q.get("user_id") in (None, t.person_id)), key=lambda t: t.updated, reverse=True)
                inline = re.search(r"messages\.limit\((\d+)\)", q.get("fields", ""))
                return self.paged(request, [self.thread_json(request, t.id, int(inline.group(1)) if inline else 25)
                                            for t in threads], 25)
            if edge == "messages" and object_id in w.threads:
                return self.paged(request, [self.message_json(m) for m in w.thread_messages(object_id)], 25)
        raise Reject(404)

    def comments(self, request: Request, object_id: str) -> list[dict[str, Any]]:
        w = self.world
        q = request.query_params
        target = w.comments.get(object_id)
        if target is not None:
            found = [c for c in w.comments.values() if c.parent_id == object_id]
        elif q.get("filter") == "stream" and object_id in w.posts:
            found = w.comments_of(object_id)
        else:
            found = [c for c in w.comments_of(object_id) if c.parent_id is None]
        since = q.get("since")
        if since and since.lstrip("-").isdigit():
            found = [c for c in found if c.created >= int(since)]
        found.sort(key=lambda c: c.created, reverse=q.get("order") == "reverse_chronological")
        return [self.comment_json(c, nested=object_id in w.media) for c in found]

    async def _create(self, request: Request, page: GraphPage, object_id: str, edge: str) -> Response:
        params = {**request.query_params, **(await _form(request))}
        w = self.world
        with w.lock:
            if edge == "messages" and object_id == page.id:
                return self._send_message(page, await _json(request))
            message = str(params.get("message") or "")
            if not message.strip():
                raise Reject(400, "(#100) The parameter message is required")
            if edge == "comments" and object_id in w.posts:
                comment = w.add_comment("facebook", object_id, page.id, message)
            elif edge == "comments" and object_id in w.comments and w.comments[object_id].platform == "facebook":
                parent = w.comments[object_id]
                comment = w.add_comment("facebook", parent.object_id, page.id, message, parent_id=parent.id)
            elif edge == "replies" and object_id in w.comments and page.ig_user_id:
                parent = w.comments[object_id]
                top = parent.parent_id or parent.id
                comment = w.add_comment("instagram", parent.object_id, page.ig_user_id, message, parent_id=top)
            elif edge == "mentions" and object_id == page.ig_user_id and params.get("media_id") in w.media:
                comment = w.add_comment("instagram", str(params["media_id"]), page.ig_user_id, message,
                                        parent_id=params.get("comment_id") or None)
            else:
                raise Reject(404)
            platform = comment.platform
            self.fake.record_post(Posted(platform, page.username, "comment", comment.id, message,
                                         in_reply_to=object_id, thread_id=comment.parent_id or comment.object_id))
        return JSONResponse({"id": comment.id})

    def _send_message(self, page: GraphPage, body: dict[str, Any]) -> Response:
        w = self.world
        recipient = str((body.get("recipient") or {}).get("id") or "")
        text = str((body.get("message") or {}).get("text") or "")
        if not recipient or not text:
            raise Reject(400, "(#100) recipient.id and message.text are required")
        thread = next((t for t in w.threads.values() if t.page_id == page.id and t.person_id == recipient), None)
        if thread is None:
            return graph_error(400, 100, "(#100) No matching user found", 2018001)
        last_inbound = max((m.created for m in w.thread_messages(thread.id) if m.from_id == recipient), default=0)
        if body.get("messaging_type") != "MESSAGE_TAG" and self.fake.now() - last_inbound > WINDOW_SECONDS:
            return graph_error(400, 10, "(#10) This message is sent outside of allowed window.", 2018278)
        message = w.add_direct_message(page, thread.platform, recipient, text, inbound=False)
        self.fake.record_post(Posted("instagram" if thread.platform == "instagram" else "facebook", page.username,
                                     "dm", message.id, text, in_reply_to=None, thread_id=recipient))
        return JSONResponse({"recipient_id": recipient, "message_id": message.id})

    # -- JSON ------------------------------------------------------------------------------------

    def paged(self, request: Request, items: list[dict[str, Any]], default: int) -> Response:
        raw = request.query_params.get("limit", "")
        limit = min(int(raw), 100) if raw.isdigit() and int(raw) > 0 else default
        after = request.query_params.get("after")
        start = int(base64.b64decode(after).decode()) if after else 0
        page = items[start:start + limit]
        body: dict[str, Any] = {"data": page}
        if page:
            body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}}
            if start + len(page) < len(items):
                kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
                url = request.url.replace_query_params(**dict(kept), after=_cursor(start + len(page)))
                body["paging"]["next"] = str(url)
        return JSONResponse(body)

    def person_json(self, person_id: str, instagram: bool) -> dict[str, Any]:
        w = self.world
        if person_id in w.pages:
            return {"id": person_id, "name": w.pages[person_id].name}
        person = w.people.get(person_id)
        if person is None:
            return {"id": person_id}
        return {"id": person.id, "username": person.username} if instagram else {"id": person.id, "name": person.name}

    def post_json(self, post: Post) -> dict[str, Any]:
        return {"id": post.id, "message": post.message, "created_time": graph_time(post.created),
                "updated_time": graph_time(post.updated),
                "permalink_url": f"https://www.facebook.com/{post.page_id}/posts/{post.id.split('_')[-1]}"}

    def comment_json(self, c: Comment, *, nested: bool) -> dict[str, Any]:
        w = self.world
        if c.platform == "instagram":
            author = self.person_json(c.from_id, True)
            body: dict[str, Any] = {"id": c.id, "text": c.message, "timestamp": graph_time(c.created),
                                    "username": author.get("username"), "from": author, "hidden": c.hidden,
                                    "media": {"id": c.object_id}}
            if c.parent_id:
                body["parent_id"] = c.parent_id
            if nested:
                replies = sorted((r for r in w.comments.values() if r.parent_id == c.id), key=lambda r: r.created)
                body["replies"] = {"data": [self.comment_json(r, nested=False) for r in replies]}
            return body
        body = {"id": c.id, "message": c.message, "created_time": graph_time(c.created),
                "from": self.person_json(c.from_id, False), "is_hidden": c.hidden}
        parent = w.comments.get(c.parent_id or "")
        if parent is not None:
            body["parent"] = {"id": parent.id, "message": parent.message,
                              "from": self.person_json(parent.from_id, False)}
        return body

    def medium_json(self, m: Medium) -> dict[str, Any]:
        count = sum(1 for c in self.world.comments.values() if c.object_id == m.id)
        return {"id": m.id, "caption": m.caption, "timestamp": graph_time(m.created), "comments_count": count,
                "media_type": "IMAGE", "permalink": f"https://www.instagram.com/p/{m.id}/",
                "username": self.world.people[m.owner_id].username if m.owner_id in self.world.people else None}

    def thread_json(self, request: Request, thread_id: str, inline: int) -> dict[str, Any]:
        w = self.world
        thread = w.threads[thread_id]
        messages = w.thread_messages(thread_id)
        instagram = thread.platform == "instagram"
        edge: dict[str, Any] = {"data": [self.message_json(m) for m in messages[:inline]]}
        if len(messages) > inline:
            root = str(request.url).split(f"/{thread.page_id}/conversations")[0]
            edge["paging"] = {"next": f"{root}/{thread_id}/messages?limit=25&after={_cursor(inline)}"}
        return {"id": thread_id, "updated_time": graph_time(thread.updated), "messages": edge,
                "participants": {"data": [self.person_json(thread.person_id, instagram),
                                          self.person_json(thread.page_id, instagram)]}}

    def message_json(self, m: DirectMessage) -> dict[str, Any]:
        instagram = self.world.threads[m.thread_id].platform == "instagram"
        return {"id": m.id, "message": m.text, "created_time": graph_time(m.created),
                "from": self.person_json(m.from_id, instagram)}


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    from urllib.parse import parse_qsl

    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Reject(400, "(#100) the body must be JSON") from None
    if not isinstance(body, dict):
        raise Reject(400, "(#100) the body must be a JSON object")
    return body


def create_graph_app(fake: FakePlatform) -> Starlette:
    style = GraphStyle(fake)

    async def rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Reject)
        return style.error(exc.status, exc.message)

    return Starlette(routes=GraphApi(fake).routes(), exception_handlers={Reject: rejected},
                     middleware=[Middleware(PlatformMiddleware, fake=fake, style=style)])
