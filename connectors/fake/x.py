"""The X API v2, as far as the X connector uses it, field for field (see PLATFORMS.md §1).

Users: ``GET /2/users/me``. Tweets: ``GET /2/users/:id/mentions``, ``GET /2/users/:id/tweets``,
``POST /2/tweets``. Direct messages: ``GET /2/dm_events`` (and per conversation),
``POST /2/dm_conversations/with/:participant_id/messages`` and ``/2/dm_conversations/:id/messages``.
Requests must carry OAuth 1.0a (the signature is not checked, the access token is) or a bearer token.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fake.middleware import PlatformMiddleware, Reject, endpoint_bucket
from connectors.fake.state import DMEvent, FakePlatform, Posted, RateWindow, Tweet, XAccount, XUser

MAX_TWEET_LENGTH = 280
T = TypeVar("T", Tweet, DMEvent)

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_CLIENT_FORBIDDEN = {
    "client_id": "28401625", "title": "Client Forbidden", "reason": "client-not-enrolled",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
              "Twitter developer App that is attached to a Project. You can create a project via the developer "
              "portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "required_enrollment": "Appropriate Level of API Access",
    "type": "https://api.twitter.com/2/problems/client-forbidden"}


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class XStyle:
    name = "x"

    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    def error(self, status: int, message: str | None = None, reset: float | None = None) -> Response:
        reason = _REASONS.get(status, "Error")
        body: dict[str, Any]
        if status == 400:
            body = {"errors": [{"message": message or "Invalid Request"}], "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request"}
        else:
            body = {"title": reason, "detail": message or reason, "type": "about:blank", "status": status}
        response = JSONResponse(body, status)
        if status == 429:
            limit = self.fake.limits["x"][0]
            reset = reset if reset is not None else self.fake.now() + 60
            response.headers.update(self.rate_headers(RateWindow(limit, 0, reset)))
        return response

    def rate_headers(self, window: RateWindow) -> dict[str, str]:
        return {"x-rate-limit-limit": str(window.limit), "x-rate-limit-remaining": str(max(window.remaining, 0)),
                "x-rate-limit-reset": str(int(window.reset))}

    def account(self, headers: Headers) -> str | None:
        token = _token(headers)
        found = self.fake.x_accounts.get(token) if token else None
        return found.user.username if found else None

    def bucket(self, method: str, path: str) -> str:
        return endpoint_bucket(method, path)


def _token(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    if value.startswith("OAuth "):
        match = re.search(r'oauth_token="([^"]*)"', value)
        return unquote(match.group(1)) if match else None
    if value.startswith("Bearer "):
        return value[7:].strip()
    return None


class XApi:
    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    def routes(self) -> list[Route]:
        return [
            Route("/2/users/me", self.me),
            Route("/2/users/{id:int}/mentions", self.mentions),
            Route("/2/users/{id:int}/tweets", self.user_tweets),
            Route("/2/tweets", self.create_tweet, methods=["POST"]),
            Route("/2/dm_events", self.dm_events),
            Route("/2/dm_conversations/with/{participant_id}/dm_events", self.dm_events),
            Route("/2/dm_conversations/with/{participant_id}/messages", self.create_dm, methods=["POST"]),
            Route("/2/dm_conversations/{dm_conversation_id}/dm_events", self.dm_events),
            Route("/2/dm_conversations/{dm_conversation_id}/messages", self.create_dm, methods=["POST"]),
        ]

    def auth(self, request: Request) -> XAccount:
        token = _token(request.headers)
        account = self.fake.x_accounts.get(token) if token else None
        if account is None or account.revoked:
            raise Reject(401)
        return account

    async def me(self, request: Request) -> Response:
        account = self.auth(request)
        return JSONResponse({"data": self.user_json(account.user, _fields(request, "user.fields"))})

    async def mentions(self, request: Request) -> Response:
        self.auth(request)
        user = self.fake.x_users.get(str(request.path_params["id"]))
        if user is None:
            raise Reject(404, "Could not find user with id.")
        with self.fake.lock:
            found = [t for t in self.fake.tweets.values() if user.id in t.mentioned_ids]
        return self.tweet_page(request, found)

    async def user_tweets(self, request: Request) -> Response:
        self.auth(request)
        user_id = str(request.path_params["id"])
        with self.fake.lock:
            found = [t for t in self.fake.tweets.values() if t.author_id == user_id]
        return self.tweet_page(request, found)

    async def create_tweet(self, request: Request) -> Response:
        account = self.auth(request)
        body = await _json(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Reject(400, "The `text` field is required when no media is attached.")
        if len(text) > MAX_TWEET_LENGTH:
            raise Reject(400, "Your Tweet text is too long.")
        parent = None
        reply = body.get("reply")
        if isinstance(reply, dict) and reply.get("in_reply_to_tweet_id") is not None:
            parent = self.fake.tweets.get(str(reply["in_reply_to_tweet_id"]))
            if parent is None:
                raise Reject(400, "The tweet you are replying to has been deleted or is not visible to you.")
        tweet = self.fake.add_tweet(account.user, text, in_reply_to=parent)
        self.fake.record_post(Posted("x", account.user.username, "tweet", tweet.id, text,
                                     in_reply_to=parent.id if parent else None, thread_id=tweet.conversation_id))
        return JSONResponse({"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}},
                            201)

    async def dm_events(self, request: Request) -> Response:
        account = self.dm_account(request)
        me = account.user.id
        conversation = request.path_params.get("dm_conversation_id")
        participant = request.path_params.get("participant_id")
        with self.fake.lock:
            found = [e for e in self.fake.dm_events.values() if me in e.participant_ids]
        if conversation is not None:
            found = [e for e in found if e.dm_conversation_id == conversation]
        if participant is not None:
            found = [e for e in found if participant in e.participant_ids and participant != me]
        types = _fields(request, "event_types")
        if types and "MessageCreate" not in types:
            found = []
        page, meta = _paginate(request, found, default=100, low=1)
        return JSONResponse(self.envelope(
            [self.dm_json(e, _fields(request, "dm_event.fields")) for e in page], meta, request,
            {e.sender_id: self.fake.x_users[e.sender_id] for e in page}
            if "sender_id" in _fields(request, "expansions") else {}))

    async def create_dm(self, request: Request) -> Response:
        account = self.dm_account(request)
        body = await _json(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Reject(400, "The `text` field is required when no attachments are present.")
        if "participant_id" in request.path_params:
            recipient = self.fake.x_users.get(request.path_params["participant_id"])
        else:
            low, _, high = request.path_params["dm_conversation_id"].partition("-")
            if account.user.id not in (low, high):
                raise Reject(403, "You are not a participant of this conversation.")
            recipient = self.fake.x_users.get(high if low == account.user.id else low)
        if recipient is None:
            raise Reject(400, "The participant does not exist.")
        event = self.fake.add_dm(account.user, recipient, text)
        self.fake.record_post(Posted("x", account.user.username, "dm", event.id, text, in_reply_to=None,
                                     thread_id=event.dm_conversation_id))
        return JSONResponse({"data": {"dm_conversation_id": event.dm_conversation_id, "dm_event_id": event.id}}, 201)

    def dm_account(self, request: Request) -> XAccount:
        account = self.auth(request)
        if not account.dm_access:
            raise _Forbidden()
        return account

    def tweet_page(self, request: Request, found: list[Tweet]) -> Response:
        page, meta = _paginate(request, found, default=10, low=5)
        expansions = _fields(request, "expansions")
        users: dict[str, XUser] = {}
        for tweet in page:
            if "author_id" in expansions:
                users[tweet.author_id] = self.fake.x_users[tweet.author_id]
            if "in_reply_to_user_id" in expansions and tweet.in_reply_to_user_id:
                users[tweet.in_reply_to_user_id] = self.fake.x_users[tweet.in_reply_to_user_id]
        fields = _fields(request, "tweet.fields")
        return JSONResponse(self.envelope([self.tweet_json(t, fields) for t in page], meta, request, users))

    def envelope(self, data: list[dict[str, Any]], meta: dict[str, Any], request: Request,
                 users: dict[str, XUser]) -> dict[str, Any]:
        if not data:
            return {"meta": meta}  # X omits data (and includes) when there is nothing
        body: dict[str, Any] = {"data": data}
        if users:
            fields = _fields(request, "user.fields")
            body["includes"] = {"users": [self.user_json(u, fields) for u in users.values()]}
        body["meta"] = meta
        return body

    @staticmethod
    def tweet_json(tweet: Tweet, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
        if "created_at" in fields:
            data["created_at"] = timestamp(tweet.created_at)
        if "author_id" in fields:
            data["author_id"] = tweet.author_id
        if "conversation_id" in fields:
            data["conversation_id"] = tweet.conversation_id
        if "in_reply_to_user_id" in fields and tweet.in_reply_to_user_id:
            data["in_reply_to_user_id"] = tweet.in_reply_to_user_id
        if "referenced_tweets" in fields and tweet.replied_to:
            data["referenced_tweets"] = [{"type": "replied_to", "id": tweet.replied_to}]
        return data

    @staticmethod
    def dm_json(event: DMEvent, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": event.id, "event_type": "MessageCreate", "text": event.text}
        if "created_at" in fields:
            data["created_at"] = timestamp(event.created_at)
        if "dm_conversation_id" in fields:
            data["dm_conversation_id"] = event.dm_conversation_id
        if "sender_id" in fields:
            data["sender_id"] = event.sender_id
        return data

    @staticmethod
    def user_json(user: XUser, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "created_at" in fields:
            data["created_at"] = timestamp(user.created_at)
        return data


class _Forbidden(Reject):
    def __init__(self) -> None:
        super().__init__(403)


def _fields(request: Request, name: str) -> set[str]:
    return {f for f in request.query_params.get(name, "").split(",") if f}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Reject(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Reject(400, "The request body must be a JSON object.")
    return body


def _token_for(direction: str, boundary: str) -> str:
    return base64.b32encode(f"{direction}{boundary}".encode()).decode().rstrip("=").lower()


def _boundary(token: str) -> tuple[str, int]:
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
        return raw[0], int(raw[1:])
    except (binascii.Error, ValueError, IndexError, UnicodeDecodeError):
        raise Reject(400, f"The `pagination_token` query parameter value [{token}] is not valid") from None


def _id_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise Reject(400, f"The `{name}` query parameter value [{value}] is not valid")
    return int(value)


def _paginate(request: Request, items: list[T], *, default: int, low: int) -> tuple[list[T], dict[str, Any]]:
    """Newest first, within since_id/until_id, one page after pagination_token, with X's meta."""
    raw = request.query_params.get("max_results")
    limit = default
    if raw is not None:
        if not raw.isdigit() or not low <= int(raw) <= 100:
            raise Reject(400, f"The `max_results` query parameter value [{raw}] is not between {low} and 100")
        limit = int(raw)
    since, until = _id_param(request, "since_id"), _id_param(request, "until_id")
    key: Callable[[T], int] = lambda item: int(item.id)  # noqa: E731
    candidates = sorted((i for i in items if (since is None or key(i) > since) and (until is None or key(i) < until)),
                        key=key, reverse=True)
    token = request.query_params.get("pagination_token")
    if token:
        direction, boundary = _boundary(token)
        if direction == "p":
            page = [i for i in candidates if key(i) > boundary][-limit:]
        else:
            page = [i for i in candidates if key(i) < boundary][:limit]
    else:
        page = candidates[:limit]
    meta: dict[str, Any] = {"result_count": len(page)}
    if page:
        meta["newest_id"], meta["oldest_id"] = page[0].id, page[-1].id
        if any(key(i) < key(page[-1]) for i in candidates):
            meta["next_token"] = _token_for("n", page[-1].id)
        if any(key(i) > key(page[0]) for i in candidates):
            meta["previous_token"] = _token_for("p", page[0].id)
    return page, meta


def create_x_app(fake: FakePlatform) -> Starlette:
    style = XStyle(fake)

    async def rejected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, _Forbidden):
            return JSONResponse(_CLIENT_FORBIDDEN, 403)
        assert isinstance(exc, Reject)
        return style.error(exc.status, exc.message)

    return Starlette(routes=XApi(fake).routes(), exception_handlers={Reject: rejected},
                     middleware=[Middleware(PlatformMiddleware, fake=fake, style=style)])
