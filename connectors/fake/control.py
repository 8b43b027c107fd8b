"""The control API under ``/_control``: set the fake's world up, make it misbehave, see what it got.

    POST   /_control/x/accounts               {"username", "name"?, "dm_access"?, credentials?} -> credentials
    POST   /_control/x/accounts/{name}/revoke  its tokens answer 401 from now on
    POST   /_control/x/mentions               {"account", "text", "author"?, "author_name"?, "in_reply_to"?}
    POST   /_control/x/dms                    {"account", "text", "sender"?, "sender_name"?}
    POST   /_control/mastodon/accounts        {"username", "display_name"?, "access_token"?} -> access token
    POST   /_control/mastodon/accounts/{name}/revoke
    POST   /_control/mastodon/mentions        {"account", "text", "author"?, "author_name"?, "visibility"?,
                                               "in_reply_to_id"?, "spoiler_text"?}
    GET    /_control/faults                   POST one (see ``Fault``), DELETE all
    GET    /_control/posts?platform=&account= what our accounts published, one entry per stored post
    GET    /_control/requests?platform=       every platform request: method, path, query, account, keys,
                                              started and ended (monotonic seconds)
    POST   /_control/release                  end every pending delay now
    POST   /_control/clock                    {"advance": seconds}: rate windows and idempotency keys age
    POST   /_control/limits                   {"platform", "limit", "window"?}: the quota per window
    POST   /_control/chaos                    {"probability"}: random 429/503/slowness (demo mode)
    POST   /_control/reset                    forget everything
    POST   /_control/graph/...                Facebook pages, posts, comments, Messenger, Instagram (see graph_control)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fake.graph_control import GraphControl
from connectors.fake.mastodon import MastodonApi
from connectors.fake.state import FakePlatform, Fault
from connectors.fake.x import XApi

TWEET_FIELDS = {"created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets"}
DM_FIELDS = {"created_at", "dm_conversation_id", "sender_id"}


class _Invalid(Exception):
    pass


class Control:
    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake
        self.x = XApi(fake)
        self.mastodon = MastodonApi(fake)

    def routes(self) -> list[Route]:
        return [
            Route("/x/accounts", self.add_x_account, methods=["POST"]),
            Route("/x/accounts/{username}/revoke", self.revoke_x, methods=["POST"]),
            Route("/x/mentions", self.x_mention, methods=["POST"]),
            Route("/x/dms", self.x_dm, methods=["POST"]),
            Route("/mastodon/accounts", self.add_mastodon_account, methods=["POST"]),
            Route("/mastodon/accounts/{username}/revoke", self.revoke_mastodon, methods=["POST"]),
            Route("/mastodon/mentions", self.mastodon_mention, methods=["POST"]),
            Route("/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/posts", self.posts),
            Route("/requests", self.requests),
            Route("/release", self.release, methods=["POST"]),
            Route("/clock", self.clock, methods=["POST"]),
            Route("/limits", self.limits, methods=["POST"]),
            Route("/chaos", self.chaos, methods=["POST"]),
            Route("/reset", self.reset, methods=["POST"]),
            *GraphControl(self.fake, _body, _text).routes(),
        ]

    async def add_x_account(self, request: Request) -> Response:
        body = await _body(request)
        account = self.fake.add_x_account(_text(body, "username"), body.get("name"),
                                          dm_access=bool(body.get("dm_access", True)),
                                          **{k: str(v) for k, v in body.items() if k in CREDENTIALS})
        return JSONResponse({"id": account.user.id, "username": account.user.username, "name": account.user.name,
                             "credentials": account.credentials()}, 201)

    async def revoke_x(self, request: Request) -> Response:
        with self.fake.lock:
            self.fake.x_account(request.path_params["username"]).revoked = True
        return JSONResponse({"revoked": True})

    async def x_mention(self, request: Request) -> Response:
        body = await _body(request)
        tweet = self.fake.inject_x_mention(_text(body, "account"), _text(body, "text"),
                                           author=body.get("author") or "burger", author_name=body.get("author_name"),
                                           in_reply_to=body.get("in_reply_to"))
        return JSONResponse(self.x.tweet_json(tweet, TWEET_FIELDS), 201)

    async def x_dm(self, request: Request) -> Response:
        body = await _body(request)
        event = self.fake.inject_x_dm(_text(body, "account"), _text(body, "text"),
                                      sender=body.get("sender") or "burger", sender_name=body.get("sender_name"))
        return JSONResponse(self.x.dm_json(event, DM_FIELDS), 201)

    async def add_mastodon_account(self, request: Request) -> Response:
        body = await _body(request)
        account = self.fake.add_mastodon_account(_text(body, "username"), body.get("display_name"),
                                                 body.get("access_token"))
        return JSONResponse({"id": account.id, "username": account.username, "acct": account.acct,
                             "access_token": account.access_token}, 201)

    async def revoke_mastodon(self, request: Request) -> Response:
        with self.fake.lock:
            self.fake.mastodon_account(request.path_params["username"]).revoked = True
        return JSONResponse({"revoked": True})

    async def mastodon_mention(self, request: Request) -> Response:
        body = await _body(request)
        visibility = body.get("visibility") or "public"
        status = self.fake.inject_mastodon_mention(
            _text(body, "account"), _text(body, "text"), author=body.get("author") or "burger@elders.example",
            author_name=body.get("author_name"), visibility=visibility, in_reply_to_id=body.get("in_reply_to_id"),
            spoiler_text=body.get("spoiler_text") or "")
        return JSONResponse(self.mastodon.status_json(status), 201)

    async def faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self.fake.lock:
                self.fake.faults.clear()
            self.fake.release()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            body = await _body(request)
            fields = {k: v for k, v in body.items() if k in Fault.__dataclass_fields__ and k not in ("id", "kind")}
            try:
                fault = self.fake.add_fault(_text(body, "kind"), **fields)
            except (TypeError, ValueError) as e:
                raise _Invalid(str(e)) from None
            return JSONResponse(fault.json(), 201)
        with self.fake.lock:
            return JSONResponse({"faults": [f.json() for f in self.fake.faults]})

    async def posts(self, request: Request) -> Response:
        found = self.fake.posts(request.query_params.get("platform"), request.query_params.get("account"))
        return JSONResponse({"posts": [p.json() for p in found]})

    async def requests(self, request: Request) -> Response:
        platform = request.query_params.get("platform")
        with self.fake.lock:
            found = [r for r in self.fake.requests if platform is None or r["platform"] == platform]
        return JSONResponse({"requests": found})

    async def release(self, request: Request) -> Response:
        self.fake.release()
        return JSONResponse({"released": True})

    async def clock(self, request: Request) -> Response:
        body = await _body(request)
        self.fake.advance(float(body.get("advance") or 0))
        return JSONResponse({"now": self.fake.now()})

    async def limits(self, request: Request) -> Response:
        body = await _body(request)
        platform = _text(body, "platform")
        if platform not in self.fake.limits:
            raise _Invalid(f"unknown platform {platform!r}")
        with self.fake.lock:
            window = float(body.get("window") or self.fake.limits[platform][1])
            self.fake.limits[platform] = (int(body["limit"]), window)
            self.fake.windows.clear()
        return JSONResponse({"platform": platform, "limit": int(body["limit"]), "window": window})

    async def chaos(self, request: Request) -> Response:
        body = await _body(request)
        self.fake.chaos = float(body.get("probability") or 0)
        return JSONResponse({"probability": self.fake.chaos})

    async def reset(self, request: Request) -> Response:
        self.fake.reset()
        return JSONResponse({"reset": True})


CREDENTIALS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _Invalid("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{name} is required")
    return value


async def control_error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, KeyError) else 400
    return JSONResponse({"error": str(exc.args[0]) if exc.args else type(exc).__name__}, status)


CONTROL_ERRORS: dict[Any, Any] = {_Invalid: control_error, KeyError: control_error}
