"""The generic API channel's outbound side: replies go to the account's ``callback_url``.

Each reply is a JSON POST ``{reply_id, conversation_id, in_reply_to, text, author}`` signed with
``X-Webcare-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under the account's secret. A 2xx
means delivered; its body's ``id``, when given, becomes the reply's external id. The receiver sees
the same ``reply_id`` again when a delivery's answer was lost, so it can treat it as an idempotency key
(there is nothing to ask the receiver afterwards: ``find_sent`` always says unknown). Messages come
in through ``POST /api/accounts/{id}/inbound`` instead of polling, so ``fetch`` has nothing to do.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
from typing import Any

import httpx

from connectors.base import Capabilities, OutboundReply, Page, Permanent, RateLimited, Transient

SIGNATURE_HEADER = "X-Webcare-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiChannelConnector:
    capabilities = Capabilities(reply_max_length=None)
    polls = False

    def __init__(self, http: httpx.AsyncClient, callback_url: str | None, secret: str | None) -> None:
        self.http = http
        self.callback_url = callback_url
        self.secret = secret

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        return Page(messages=[], cursor=cursor or {})

    async def send_reply(self, reply: OutboundReply) -> str:
        if not self.callback_url or not self.secret:
            raise Permanent("this API channel has no settings.callback_url and credentials.secret to deliver to")
        body = json.dumps({
            "reply_id": reply.reply_id, "conversation_id": reply.conversation_id, "in_reply_to": reply.in_reply_to,
            "text": reply.text, "author": {"name": reply.author_name},
        }, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = await self.http.post(self.callback_url, content=body, headers={
                "Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                "Idempotency-Key": reply.idempotency_key,
            })
        except httpx.TransportError as e:
            raise Transient(f"the callback did not answer: {type(e).__name__}") from None
        if response.status_code == 429:
            raise RateLimited("the callback asks us to slow down", _retry_after(response))
        if response.status_code >= 500:
            raise Transient(f"the callback answered {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise Permanent(f"the callback refused the reply with {response.status_code}: {response.text[:200]}")
        try:
            given = response.json().get("id")
        except (ValueError, AttributeError):
            given = None
        return str(given) if given not in (None, "") else f"webcare-reply-{reply.reply_id}"

    async def find_sent(self, reply: OutboundReply) -> str | None:
        return None


def _retry_after(response: httpx.Response) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    value = response.headers.get("retry-after", "")
    if value.isdigit():
        return now + dt.timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return now + dt.timedelta(seconds=60)
