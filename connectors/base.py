"""The connector seam: plain value types and the small Protocol every platform module implements.

Errors from a platform's API are translated at this boundary into our own few:

    ConnectorError
    ├── RateLimited(reset_at)   wait until reset_at, then try again
    ├── Transient               try again with backoff
    ├── AuthExpired             stop polling the account; a person must renew its credentials
    └── Permanent               this request will never succeed as it is
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Author:
    id: str
    handle: str
    name: str


@dataclass(frozen=True)
class InboundMessage:
    """One message from the public, as a platform delivered it."""

    external_id: str
    author: Author
    text: str
    #: When the person posted it, by the platform's clock.
    created_at: dt.datetime
    #: The platform id of the message this one answers, if any.
    in_reply_to: str | None = None
    #: A platform thread (a DM conversation, a comment thread) that groups messages without a reply chain.
    thread_id: str | None = None
    kind: str = "mention"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Page:
    messages: list[InboundMessage]
    #: The cursor to store with this batch; fetching from it again yields only newer items.
    cursor: dict[str, Any]
    has_more: bool = False


@dataclass(frozen=True)
class OutboundReply:
    reply_id: int
    conversation_id: int
    text: str
    in_reply_to: str | None
    idempotency_key: str
    author_name: str
    #: The platform thread to answer in when there is no reply chain: the ``thread_id`` of the
    #: inbound message (an X direct-message conversation). None for public replies.
    thread_id: str | None = None


@dataclass(frozen=True)
class Capabilities:
    reply_max_length: int | None = None


class ConnectorError(Exception):
    """A platform said no; subclasses say what to do about it."""


class RateLimited(ConnectorError):
    def __init__(self, message: str, reset_at: dt.datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class Transient(ConnectorError):
    pass


class AuthExpired(ConnectorError):
    pass


class Permanent(ConnectorError):
    pass


class Connector(Protocol):
    capabilities: Capabilities

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        """The next page of inbound messages after ``cursor`` (None: from now on)."""
        ...

    async def send_reply(self, reply: OutboundReply) -> str:
        """Post the reply; return the platform's id for it."""
        ...

    async def find_sent(self, reply: OutboundReply) -> str | None:
        """The platform id of this reply if an earlier attempt did post it, else None."""
        ...
