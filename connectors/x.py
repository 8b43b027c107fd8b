"""X (Twitter API v2) through tweepy's synchronous ``Client``, one per account, run in worker threads.

Inbound are mentions (``GET /2/users/:id/mentions``) and, where the app's access level allows it,
direct messages (``GET /2/dm_events``). The cursor keeps one entry per stream:

    {"mentions": {"since_id": "…"}, "dms": {"last_id": "…"}}

X pages newest first, so while a stream is paging its lower bound stays fixed and the newest id of
the first page waits in the cursor (``newest_id``, ``pagination_token``) until the last page is in;
only then does the bound move up. A cursor of None starts "from now on" (the newest ids become the
bounds, nothing is returned); ``{}`` starts from everything X still serves (its last 800 mentions).
A 403 on direct messages means the app may not read them: the stream rests for a day, then is tried
again, while mentions go on.

Replies go out with ``POST /2/tweets`` (``reply.in_reply_to_tweet_id``) or, for a direct-message
conversation (``reply.thread_id``), ``POST /2/dm_conversations/:id/messages``. X has no idempotency
key: after an ambiguous failure ``find_sent`` looks through our own recent tweets (or the DM
conversation) for the reply before anyone posts it again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
import tweepy
from requests.adapters import HTTPAdapter

from connectors.base import (
    AuthExpired,
    Author,
    Capabilities,
    ConnectorError,
    InboundMessage,
    OutboundReply,
    Page,
    Permanent,
    RateLimited,
    Transient,
)
from connectors.common import RateLimitStatus, parse_int, same_text, utcnow

X_API = "https://api.twitter.com"
TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets"]
DM_FIELDS = ["created_at", "dm_conversation_id", "sender_id"]
USER_FIELDS = ["username", "name"]
RATE_WINDOW = dt.timedelta(minutes=15)  # X's window, for a 429 that says nothing about its reset
DM_RETRY = dt.timedelta(days=1)
FIND_PAGES = 5
T = TypeVar("T")


class ApiRoot(HTTPAdapter):
    """Sends tweepy's requests (built for ``https://api.twitter.com``) to ``root``, with a timeout.

    tweepy hard-codes its host and sets no timeout; a requests adapter mounted on that host is the
    one supported place to change both. OAuth 1.0a signs the original URL before ``send``, which
    the real X would check and a fake ignores.
    """

    def __init__(self, root: str = X_API, timeout: float = 30.0) -> None:
        super().__init__()
        self.root = root.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: dict[str, str] | None = None) -> requests.Response:
        if self.root != X_API and request.url and request.url.startswith(X_API):
            request.url = self.root + request.url[len(X_API):]
            # The session chose proxies for api.twitter.com; choose again for where it really goes.
            proxies = requests.utils.get_environ_proxies(request.url)
        return super().send(request, stream=stream, timeout=timeout or self.timeout, verify=verify, cert=cert,
                            proxies=proxies)


def make_client(credentials: Mapping[str, str], *, base_url: str = X_API, timeout: float = 30.0) -> tweepy.Client:
    """A tweepy ``Client`` for OAuth 1.0a user context that talks to ``base_url``."""
    try:
        client = tweepy.Client(consumer_key=credentials["consumer_key"],
                               consumer_secret=credentials["consumer_secret"],
                               access_token=credentials["access_token"],
                               access_token_secret=credentials["access_token_secret"],
                               wait_on_rate_limit=False)  # a 429 goes to the scheduler, not to sleep()
    except KeyError as e:
        raise AuthExpired(f"X credentials lack {e.args[0]}") from None
    client.session.mount(X_API, ApiRoot(base_url, timeout))
    return client


class XConnector:
    platform = "x"
    capabilities = Capabilities(reply_max_length=280)

    def __init__(self, client: tweepy.Client, *, user_id: str | None = None, page_size: int = 100,
                 direct_messages: bool = True) -> None:
        if not 5 <= page_size <= 100:
            raise ValueError("X serves 5 to 100 mentions per page")
        self.client = client
        self.page_size = page_size
        self.direct_messages = direct_messages
        self._user_id = user_id
        #: The quota as the last response reported it (x-rate-limit-* headers).
        self.rate_limit: RateLimitStatus | None = None
        client.session.hooks["response"].append(self._observe)

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str], *, base_url: str = X_API, timeout: float = 30.0,
                         **options: Any) -> XConnector:
        return cls(make_client(credentials, base_url=base_url, timeout=timeout), **options)

    async def aclose(self) -> None:
        self.client.session.close()

    async def user_id(self) -> str:
        """The account's own user id, from ``GET /2/users/me`` once."""
        if self._user_id is None:
            response = await self._run(self.client.get_me, user_auth=True)
            self._user_id = str(response.data.id)
        return self._user_id

    # -- inbound ---------------------------------------------------------------------------------

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        me = await self.user_id()
        if cursor is None:
            return await self._start(me)
        mentions: dict[str, Any] = dict(cursor.get("mentions") or {})
        dms: dict[str, Any] = dict(cursor.get("dms") or {})
        # While a stream is paging, only the paging streams move, so the others cost no quota.
        paging = bool(mentions.get("pagination_token") or dms.get("pagination_token"))
        messages: list[InboundMessage] = []
        more = False
        if not paging or mentions.get("pagination_token"):
            found, mentions, more_mentions = await self._mentions(me, mentions)
            messages += found
            more |= more_mentions
        if self.direct_messages and (not paging or dms.get("pagination_token")):
            found, dms, more_dms = await self._dms(me, dms)
            messages += found
            more |= more_dms
        messages.sort(key=lambda m: int(m.external_id))
        return Page(messages, {"mentions": mentions, "dms": dms}, has_more=more)

    async def _start(self, me: str) -> Page:
        response = await self._run(self.client.get_users_mentions, me, max_results=5, user_auth=True)
        cursor: dict[str, Any] = {"mentions": {"since_id": response.meta.get("newest_id")}, "dms": {}}
        if self.direct_messages:
            events = await self._run(self._dm_events, max_results=1)
            if events is None:
                cursor["dms"] = {"last_id": None, "unavailable_until": (utcnow() + DM_RETRY).isoformat()}
            else:
                cursor["dms"] = {"last_id": str(events.data[0].id) if events.data else None}
        return Page([], cursor)

    async def _mentions(self, me: str, state: dict[str, Any]) -> tuple[list[InboundMessage], dict[str, Any], bool]:
        since, token = state.get("since_id"), state.get("pagination_token")
        response = await self._run(
            self.client.get_users_mentions, me, since_id=since, pagination_token=token, max_results=self.page_size,
            expansions=["author_id"], tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS, user_auth=True)
        users = {str(u.id): u for u in response.includes.get("users", [])}
        found = [_mention(t, users) for t in response.data or [] if str(t.author_id) != me]
        # The first page's newest id becomes the bound once every page is in.
        newest = state.get("newest_id") if token else response.meta.get("newest_id")
        if response.meta.get("next_token"):
            return found, {"since_id": since, "newest_id": newest,
                           "pagination_token": response.meta["next_token"]}, True
        return found, {"since_id": newest or since}, False

    async def _dms(self, me: str, state: dict[str, Any]) -> tuple[list[InboundMessage], dict[str, Any], bool]:
        resting = state.get("unavailable_until")
        if resting and dt.datetime.fromisoformat(resting) > utcnow():
            return [], state, False
        last, token = state.get("last_id"), state.get("pagination_token")
        response = await self._run(self._dm_events, max_results=100, pagination_token=token)
        if response is None:
            return [], {"last_id": last, "unavailable_until": (utcnow() + DM_RETRY).isoformat()}, False
        events = response.data or []
        # No since_id for DMs: everything newer than the last one we took is new, and meeting it ends the walk.
        new = [e for e in events if last is None or int(e.id) > int(last)]
        users = {str(u.id): u for u in response.includes.get("users", [])}
        found = [_direct_message(e, users) for e in new if str(e.sender_id) != me]
        newest = state.get("newest_id") if token else (str(max(int(e.id) for e in events)) if events else None)
        if response.meta.get("next_token") and len(new) == len(events):
            return found, {"last_id": last, "newest_id": newest,
                           "pagination_token": response.meta["next_token"]}, True
        return found, {"last_id": newest or last}, False

    def _dm_events(self, **params: Any) -> Any:
        """One page of DM events, or None when this app's access does not include direct messages."""
        try:
            return self.client.get_direct_message_events(
                event_types=["MessageCreate"], expansions=["sender_id"], dm_event_fields=DM_FIELDS,
                user_fields=USER_FIELDS, user_auth=True, **params)
        except tweepy.Forbidden:
            return None

    # -- outbound --------------------------------------------------------------------------------

    async def send_reply(self, reply: OutboundReply) -> str:
        if reply.thread_id:
            response = await self._run(self.client.create_direct_message, dm_conversation_id=reply.thread_id,
                                       text=reply.text, user_auth=True)
            return str(response.data["dm_event_id"])
        if not reply.in_reply_to:
            raise Permanent("an X reply needs the tweet it answers")
        response = await self._run(self.client.create_tweet, text=reply.text,
                                   in_reply_to_tweet_id=reply.in_reply_to, user_auth=True)
        return str(response.data["id"])

    async def find_sent(self, reply: OutboundReply) -> str | None:
        me = await self.user_id()
        if reply.thread_id:
            return await self._find_dm(me, reply)
        if not reply.in_reply_to:
            return None
        token = None
        for _ in range(FIND_PAGES):
            # Ids grow with time, so our reply is newer than the tweet it answers: since_id bounds the search.
            response = await self._run(self.client.get_users_tweets, me, since_id=reply.in_reply_to,
                                       pagination_token=token, max_results=100,
                                       tweet_fields=["referenced_tweets", "created_at"], user_auth=True)
            for tweet in response.data or []:
                answers = any(r.type == "replied_to" and str(r.id) == reply.in_reply_to
                              for r in tweet.referenced_tweets or [])
                if answers and same_text(tweet.text, reply.text):
                    return str(tweet.id)
            token = response.meta.get("next_token")
            if not token:
                break
        return None

    async def _find_dm(self, me: str, reply: OutboundReply) -> str | None:
        token = None
        for _ in range(FIND_PAGES):
            response = await self._run(
                self.client.get_direct_message_events, dm_conversation_id=reply.thread_id, pagination_token=token,
                event_types=["MessageCreate"], dm_event_fields=DM_FIELDS, max_results=100, user_auth=True)
            for event in response.data or []:
                if reply.in_reply_to and int(event.id) <= int(reply.in_reply_to):
                    return None  # older than what we answered: our reply is not there
                if str(event.sender_id) == me and same_text(event.text or "", reply.text):
                    return str(event.id)
            token = response.meta.get("next_token")
            if not token:
                break
        return None

    # -- the boundary ----------------------------------------------------------------------------

    async def _run(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking tweepy call in a worker thread; translate what it raises into our errors."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except (tweepy.TweepyException, requests.RequestException) as e:
            raise translate(e) from e

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        limit = parse_int(response.headers.get("x-rate-limit-limit"))
        remaining = parse_int(response.headers.get("x-rate-limit-remaining"))
        reset = parse_int(response.headers.get("x-rate-limit-reset"))
        if limit is not None or remaining is not None:
            self.rate_limit = RateLimitStatus(limit, remaining, _epoch(reset) if reset is not None else None)


def translate(error: Exception) -> ConnectorError:
    """tweepy's and requests' exceptions as ours."""
    if isinstance(error, tweepy.TooManyRequests):
        # reset_time exists from tweepy 4.17 on; the header itself works with every 4.x.
        reset = getattr(error, "reset_time", None)
        if reset is None:
            reset = parse_int(error.response.headers.get("x-rate-limit-reset"))
        return RateLimited(str(error), _epoch(reset) if reset is not None else utcnow() + RATE_WINDOW)
    if isinstance(error, tweepy.Unauthorized):
        return AuthExpired(str(error))
    if isinstance(error, tweepy.TwitterServerError):
        return Transient(str(error))
    if isinstance(error, tweepy.HTTPException):
        status = getattr(error.response, "status_code", None)
        return Transient(str(error)) if status == 408 else Permanent(str(error))
    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout |
                  requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError |
                  requests.exceptions.JSONDecodeError):
        # JSONDecodeError: a 2xx whose body is not X's (a proxy's error page, a cut-off body).
        return Transient(f"{type(error).__name__}: {error}")
    return Permanent(f"{type(error).__name__}: {error}")


def _epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _author(user_id: Any, users: Mapping[str, Any]) -> Author:
    user = users.get(str(user_id))
    if user is None:
        return Author(id=str(user_id), handle=str(user_id), name=str(user_id))
    return Author(id=str(user.id), handle=user.username, name=user.name)


def _mention(tweet: Any, users: Mapping[str, Any]) -> InboundMessage:
    replied_to = next((str(r.id) for r in tweet.referenced_tweets or [] if r.type == "replied_to"), None)
    return InboundMessage(
        external_id=str(tweet.id), author=_author(tweet.author_id, users),
        text=html.unescape(tweet.text),  # v2 text escapes &, < and >
        created_at=tweet.created_at or utcnow(), in_reply_to=replied_to, kind="mention", raw=dict(tweet.data))


def _direct_message(event: Any, users: Mapping[str, Any]) -> InboundMessage:
    return InboundMessage(
        external_id=str(event.id), author=_author(event.sender_id, users), text=html.unescape(event.text or ""),
        created_at=event.created_at or utcnow(), thread_id=event.dm_conversation_id, kind="dm",
        raw=dict(event.data))
