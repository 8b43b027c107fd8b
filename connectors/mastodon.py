"""Mastodon through an ``httpx.AsyncClient`` handed in from outside.

Inbound are ``mention`` notifications (direct messages are mentions with ``visibility=direct``),
paged with ``min_id``: Mastodon answers the items immediately newer than the cursor, newest first,
and the ``Link`` header's ``prev`` carries the next ``min_id``. The cursor is ``{"min_id": "…"}``;
None starts "from now on", ``{}`` from the oldest notification the instance still has. A page is
followed by another fetch until one comes back empty (``has_more``).

Replies go out with ``POST /api/v1/statuses``: ``in_reply_to_id``, the original's ``visibility``,
the author's ``@acct`` in front when the text does not mention them (without it they are not
notified, and a direct reply would reach no one), and ``Idempotency-Key`` set to the reply's key,
so a retry within Mastodon's hour returns the status already posted instead of a second one.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

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
from connectors.common import RateLimitStatus, parse_int, parse_timestamp, same_text, utcnow
from connectors.plaintext import html_to_text

RATE_WINDOW = dt.timedelta(minutes=5)  # Mastodon's window, for a 429 that says nothing about its reset
FIND_PAGES = 5
URL_WEIGHT = 23
_COUNTED = re.compile(r"(?P<url>https?://\S+)|(?<![\w@])@(?P<user>\w+)(?:@[\w.-]+\w)?")


class MastodonConnector:
    platform = "mastodon"

    def __init__(self, http: httpx.AsyncClient, access_token: str, *, base_url: str | None = None,
                 page_size: int = 80, reply_max_length: int = 500, owns_http: bool = False) -> None:
        """``base_url`` (the instance root) prefixes every path; without it ``http``'s own base_url applies."""
        if not 1 <= page_size <= 80:
            raise ValueError("Mastodon serves 1 to 80 notifications per page")
        self.http = http
        self.base_url = base_url.rstrip("/") if base_url else ""
        self.page_size = page_size
        self.capabilities = Capabilities(reply_max_length=reply_max_length)
        self._auth = {"Authorization": f"Bearer {access_token}"}
        self._owns_http = owns_http
        self._account_id: str | None = None
        #: The quota as the last response reported it (X-RateLimit-* headers).
        self.rate_limit: RateLimitStatus | None = None

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def account_id(self) -> str:
        """Our own account id, from ``GET /api/v1/accounts/verify_credentials`` once."""
        if self._account_id is None:
            me = (await self._request("GET", "/api/v1/accounts/verify_credentials")).json()
            self._account_id = str(me["id"])
        return self._account_id

    # -- inbound ---------------------------------------------------------------------------------

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        if cursor is None:
            newest = await self._notifications(limit=1)
            return Page([], {"min_id": str(newest[0][0]["id"]) if newest[0] else "0"})
        min_id = str(cursor.get("min_id") or "0")
        items, response = await self._notifications(limit=self.page_size, min_id=min_id)
        if not items:
            return Page([], {"min_id": min_id})
        messages: dict[str, InboundMessage] = {}
        for notification in items:
            if notification.get("status"):  # a deleted status leaves its notification without one
                message = _message(notification)
                messages.setdefault(message.external_id, message)
        newest = max(items, key=lambda n: int(n["id"]))["id"]
        prev = response.links.get("prev", {}).get("url")
        next_min = httpx.URL(prev).params.get("min_id") if prev else None
        ordered = sorted(messages.values(), key=lambda m: int(m.external_id))
        return Page(ordered, {"min_id": str(next_min or newest)}, has_more=True)

    async def _notifications(self, **params: Any) -> tuple[list[dict[str, Any]], httpx.Response]:
        response = await self._request("GET", "/api/v1/notifications", params=[("types[]", "mention"),
                                                                             *params.items()])
        body = _json(response)
        if not isinstance(body, list):
            raise Transient("notifications: expected a list")
        return body, response

    # -- outbound --------------------------------------------------------------------------------

    async def send_reply(self, reply: OutboundReply) -> str:
        if not reply.in_reply_to:
            raise Permanent("a Mastodon reply needs the status it answers")
        original = _json(await self._request("GET", f"/api/v1/statuses/{reply.in_reply_to}"))
        text = addressed(reply.text, original["account"]["acct"])
        if self.capabilities.reply_max_length and weighted_length(text) > self.capabilities.reply_max_length:
            raise Permanent(f"the reply with its @mention is longer than {self.capabilities.reply_max_length}")
        response = await self._request(
            "POST", "/api/v1/statuses",
            json={"status": text, "in_reply_to_id": reply.in_reply_to, "visibility": original["visibility"]},
            headers={"Idempotency-Key": reply.idempotency_key})
        return str(_json(response)["id"])

    async def find_sent(self, reply: OutboundReply) -> str | None:
        """Our status answering ``in_reply_to`` with this text, among those newer than the original."""
        if not reply.in_reply_to:
            return None
        me = await self.account_id()
        max_id: str | None = None
        for _ in range(FIND_PAGES):
            params = {"limit": "40", "exclude_reblogs": "true", "since_id": reply.in_reply_to}
            if max_id:
                params["max_id"] = max_id
            statuses = _json(await self._request("GET", f"/api/v1/accounts/{me}/statuses", params=params))
            for status in statuses:
                if status.get("in_reply_to_id") == reply.in_reply_to and \
                        same_text(html_to_text(status.get("content") or ""), reply.text):
                    return str(status["id"])
            if len(statuses) < 40:
                break
            max_id = str(statuses[-1]["id"])
        return None

    # -- the boundary ----------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            response = await self.http.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as e:
            raise translate_transport(e) from e
        self._observe(response)
        if response.is_success:
            return response
        raise translate_status(response)

    def _observe(self, response: httpx.Response) -> None:
        limit = parse_int(response.headers.get("x-ratelimit-limit"))
        remaining = parse_int(response.headers.get("x-ratelimit-remaining"))
        if limit is not None or remaining is not None:
            self.rate_limit = RateLimitStatus(limit, remaining, _reset(response))


def translate_transport(error: httpx.HTTPError) -> ConnectorError:
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.TooManyRedirects):
        return Permanent(f"{type(error).__name__}: {error}")  # the configured URL is wrong
    return Transient(f"{type(error).__name__}: {error}")  # timeouts, refused or dropped connections


def translate_status(response: httpx.Response) -> ConnectorError:
    try:
        detail = response.json().get("error")
    except (ValueError, AttributeError):
        detail = None
    message = f"{response.status_code} {response.reason_phrase}" + (f": {detail}" if detail else "")
    status = response.status_code
    if status == 429:
        return RateLimited(message, _reset(response) or utcnow() + RATE_WINDOW)
    if status == 401:
        return AuthExpired(message)
    if status == 408 or status >= 500:
        return Transient(message)
    return Permanent(message)


def _reset(response: httpx.Response) -> dt.datetime | None:
    """X-RateLimit-Reset is an ISO 8601 time (not epoch); Retry-After is seconds or an HTTP date."""
    value = response.headers.get("x-ratelimit-reset")
    if value:
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    retry = response.headers.get("retry-after")
    if retry:
        if retry.isdigit():
            return utcnow() + dt.timedelta(seconds=int(retry))
        try:
            return email.utils.parsedate_to_datetime(retry)
        except (TypeError, ValueError):
            pass
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except ValueError:  # orjson.JSONDecodeError is one
        raise Transient(f"{response.request.url.path}: the answer is not JSON") from None


def _message(notification: Mapping[str, Any]) -> InboundMessage:
    status = notification["status"]
    account = status["account"]
    text = html_to_text(status.get("content") or "")
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n\n{text}"  # the content warning is part of what they said
    return InboundMessage(
        external_id=str(status["id"]),
        author=Author(id=str(account["id"]), handle=account["acct"],
                      name=account.get("display_name") or account["username"]),
        text=text, created_at=parse_timestamp(status.get("created_at")), in_reply_to=status.get("in_reply_to_id"),
        kind="dm" if status.get("visibility") == "direct" else "mention", raw=dict(notification))


def addressed(text: str, acct: str) -> str:
    """The text with ``@acct`` in front, unless it already mentions them."""
    username = acct.split("@", 1)[0]
    if re.search(rf"(?<![\w@])@{re.escape(username)}(?:@[\w.-]+)?(?!\w)", text, re.IGNORECASE):
        return text
    return f"@{acct} {text}"


def weighted_length(text: str) -> int:
    """Mastodon's count: any URL weighs 23 characters, a mention only its ``@username``."""
    return len(_COUNTED.sub(lambda m: "x" * URL_WEIGHT if m.group("url") else "@" + m.group("user"), text))
