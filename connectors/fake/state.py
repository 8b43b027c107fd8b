"""The fake platforms' world: people, posts, notifications, faults and quotas, all in one object.

A ``FakePlatform`` is plain memory guarded by a lock, so tests may read it from another thread
while uvicorn serves it; several can run side by side.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from connectors.fake.graph_state import GraphWorld

IDEMPOTENCY_SECONDS = 3600  # Mastodon keeps Idempotency-Key for an hour.
FAULT_KINDS = ("status", "delay", "drop", "error_after", "hang_after")


@dataclass
class XUser:
    id: str
    username: str
    name: str
    created_at: dt.datetime


@dataclass
class XAccount:
    """An X user we hold OAuth 1.0a credentials for."""

    user: XUser
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    dm_access: bool = True
    revoked: bool = False

    def credentials(self) -> dict[str, str]:
        return {"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret,
                "access_token": self.access_token, "access_token_secret": self.access_token_secret}


@dataclass
class Tweet:
    id: str
    text: str
    author_id: str
    created_at: dt.datetime
    conversation_id: str
    in_reply_to_user_id: str | None = None
    replied_to: str | None = None
    mentioned_ids: list[str] = field(default_factory=list)


@dataclass
class DMEvent:
    id: str
    text: str
    sender_id: str
    dm_conversation_id: str
    created_at: dt.datetime
    participant_ids: tuple[str, str]


@dataclass
class MastodonAccount:
    id: str
    username: str
    domain: str | None
    display_name: str
    created_at: dt.datetime
    access_token: str | None = None
    revoked: bool = False

    @property
    def acct(self) -> str:
        return f"{self.username}@{self.domain}" if self.domain else self.username


@dataclass
class Status:
    id: str
    account_id: str
    text: str
    created_at: dt.datetime
    visibility: str = "public"
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    spoiler_text: str = ""
    mention_ids: list[str] = field(default_factory=list)
    language: str | None = None


@dataclass
class Notification:
    id: str
    type: str
    account_id: str  # who receives it
    from_account_id: str
    status_id: str | None
    created_at: dt.datetime


@dataclass
class Posted:
    """Something one of our accounts published, as the platform stored it."""

    platform: str
    account: str
    kind: str  # tweet | dm | status
    id: str
    text: str
    in_reply_to: str | None
    thread_id: str | None = None
    visibility: str | None = None
    idempotency_key: str | None = None

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Fault:
    """One rule for misbehaving: which requests it hits, what happens, how many times.

    kinds: ``status`` answers ``status`` at once (429 carries ``reset``); ``delay`` waits ``delay``
    seconds before handling; ``drop`` handles the request, then drops the connection mid-response;
    ``error_after`` handles it, then answers ``status`` (default 503); ``hang_after`` handles it, then
    waits ``delay`` seconds before answering. Waiting ends early on release or reset.
    """

    id: int
    kind: str
    platform: str | None = None
    method: str | None = None
    path: str | None = None  # a regular expression searched in the platform path, e.g. "^/2/tweets$"
    account: str | None = None  # the account's username
    status: int | None = None
    times: int | None = 1  # None: until removed
    reset: float | None = None  # epoch seconds for a 429's reset; default now + 60
    delay: float = 30.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, platform: str, method: str, path: str, account: str | None) -> bool:
        return ((self.platform is None or self.platform == platform)
                and (self.method is None or self.method.upper() == method)
                and (self.path is None or re.search(self.path, path) is not None)
                and (self.account is None or self.account == account))

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RateWindow:
    limit: int
    remaining: int
    reset: float  # epoch seconds

    @property
    def exhausted(self) -> bool:
        return self.remaining < 0


class FakePlatform:
    """The fake X and Mastodon. Every public method is safe to call from any thread."""

    def __init__(self, *, mastodon_domain: str = "social.example", x_rate_limit: int = 900,
                 x_rate_window: float = 900, mastodon_rate_limit: int = 300, mastodon_rate_window: float = 300,
                 mastodon_max_characters: int = 500, graph_rate_limit: int = 4800,
                 graph_rate_window: float = 3600) -> None:
        self.mastodon_domain = mastodon_domain
        self.mastodon_max_characters = mastodon_max_characters
        self.limits: dict[str, tuple[int, float]] = {"x": (x_rate_limit, x_rate_window),
                                                     "mastodon": (mastodon_rate_limit, mastodon_rate_window),
                                                     "graph": (graph_rate_limit, graph_rate_window)}
        #: Where new Graph comments and messages are delivered as signed webhooks (None: nowhere).
        self.graph_webhook_url: str | None = None
        self.chaos = 0.0
        self.lock = threading.RLock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.clock_offset = 0.0
        self.reset()

    # -- life cycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (accounts too) and let every delayed response go."""
        with self.lock:
            self.x_users: dict[str, XUser] = {}
            self.x_accounts: dict[str, XAccount] = {}  # by access token
            self.tweets: dict[str, Tweet] = {}
            self.dm_events: dict[str, DMEvent] = {}
            self.m_accounts: dict[str, MastodonAccount] = {}
            #: The same accounts by (username, host), casefolded: mentions are found by name on every render.
            self.m_by_name: dict[tuple[str, str], MastodonAccount] = {}
            self.statuses: dict[str, Status] = {}
            self.notifications: dict[str, Notification] = {}
            #: Counts a status or account shows, kept as statuses come (rendering a page must not scan them all).
            self.statuses_count: collections.Counter[str] = collections.Counter()
            self.replies_count: collections.Counter[str] = collections.Counter()
            #: Each account's notifications in id order (ids only grow), as a real server's index keeps them.
            self.notifications_of: dict[str, list[Notification]] = {}
            self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
            self.posted: list[Posted] = []
            self.requests: list[dict[str, Any]] = []
            self.faults: list[Fault] = []
            self.windows: dict[tuple[str, str, str], RateWindow] = {}
            self.clock_offset = 0.0
            # Increasing ids in each platform's style: snowflake-sized for X and statuses.
            self._x_ids = itertools.count(1_860_000_000_000_000_000, 4_194_304)
            self._m_ids = itertools.count(113_500_000_000_000_000, 65_536)
            self._n_ids = itertools.count(34_975_000)
            self._fault_ids = itertools.count(1)
            self.graph = GraphWorld(self.lock, self.now)
        self.release()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when ``release`` is called meanwhile."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self.lock:
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            with self.lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def release(self) -> None:
        """End every pending delay now."""
        with self.lock:
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    # -- faults and quotas -----------------------------------------------------------------------

    def add_fault(self, kind: str, **rule: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self.lock:
            fault = Fault(id=next(self._fault_ids), kind=kind, **rule)
            self.faults.append(fault)
            return fault

    def take_fault(self, platform: str, method: str, path: str, account: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(platform, method, path, account):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def hit(self, platform: str, account: str, endpoint: str) -> RateWindow:
        """Count one request against its window; ``exhausted`` when it went over."""
        limit, window = self.limits[platform]
        now = self.now()
        with self.lock:
            key = (platform, account, endpoint)
            current = self.windows.get(key)
            if current is None or current.reset <= now:
                current = self.windows[key] = RateWindow(limit, limit, now + window)
            current.remaining -= 1
            return RateWindow(current.limit, current.remaining, current.reset)

    def record_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    # -- X ---------------------------------------------------------------------------------------

    def next_x_id(self) -> str:
        with self.lock:
            return str(next(self._x_ids))

    def x_user(self, username: str, name: str | None = None) -> XUser:
        """The X user with this username, created on first mention."""
        with self.lock:
            for user in self.x_users.values():
                if user.username.lower() == username.lower():
                    return user
            user = XUser(self.next_x_id(), username, name or username, self.now_dt())
            self.x_users[user.id] = user
            return user

    def add_x_account(self, username: str, name: str | None = None, *, dm_access: bool = True,
                      **credentials: str) -> XAccount:
        """An account we hold credentials for; the access token starts with its user id, as X's do."""
        with self.lock:
            user = self.x_user(username, name)
            account = XAccount(
                user=user,
                consumer_key=credentials.get("consumer_key") or "ck-" + secrets.token_hex(8),
                consumer_secret=credentials.get("consumer_secret") or "cs-" + secrets.token_hex(16),
                access_token=credentials.get("access_token") or f"{user.id}-{secrets.token_hex(12)}",
                access_token_secret=credentials.get("access_token_secret") or "ats-" + secrets.token_hex(16),
                dm_access=dm_access)
            self.x_accounts[account.access_token] = account
            return account

    def x_account(self, username: str) -> XAccount:
        with self.lock:
            for account in self.x_accounts.values():
                if account.user.username.lower() == username.lower():
                    return account
        raise KeyError(f"no X account {username!r}")

    def add_tweet(self, author: XUser, text: str, *, in_reply_to: Tweet | None = None) -> Tweet:
        with self.lock:
            tweet_id = self.next_x_id()
            mentioned = [u.id for u in self.x_users.values()
                         if re.search(rf"(?<!\w)@{re.escape(u.username)}\b", text, re.IGNORECASE)]
            tweet = Tweet(id=tweet_id, text=text, author_id=author.id, created_at=self.now_dt(),
                          conversation_id=in_reply_to.conversation_id if in_reply_to else tweet_id,
                          in_reply_to_user_id=in_reply_to.author_id if in_reply_to else None,
                          replied_to=in_reply_to.id if in_reply_to else None,
                          mentioned_ids=[i for i in mentioned if i != author.id])
            self.tweets[tweet.id] = tweet
            return tweet

    def add_dm(self, sender: XUser, recipient: XUser, text: str) -> DMEvent:
        with self.lock:
            low, high = sorted((sender.id, recipient.id), key=int)
            event = DMEvent(id=self.next_x_id(), text=text, sender_id=sender.id,
                            dm_conversation_id=f"{low}-{high}", created_at=self.now_dt(),
                            participant_ids=(low, high))
            self.dm_events[event.id] = event
            return event

    def inject_x_mention(self, account: str, text: str, author: str = "burger", author_name: str | None = None,
                         in_reply_to: str | None = None) -> Tweet:
        """A tweet by ``author`` that mentions ``account`` (the mention is added to the text if missing)."""
        with self.lock:
            target = self.x_account(account).user
            if not re.search(rf"(?<!\w)@{re.escape(target.username)}\b", text, re.IGNORECASE):
                text = f"@{target.username} {text}"
            parent = self.tweets.get(in_reply_to) if in_reply_to else None
            if in_reply_to and parent is None:
                raise KeyError(f"no tweet {in_reply_to}")
            return self.add_tweet(self.x_user(author, author_name), text, in_reply_to=parent)

    def inject_x_dm(self, account: str, text: str, sender: str = "burger", sender_name: str | None = None) -> DMEvent:
        with self.lock:
            return self.add_dm(self.x_user(sender, sender_name), self.x_account(account).user, text)

    # -- Mastodon --------------------------------------------------------------------------------

    def next_status_id(self) -> str:
        with self.lock:
            return str(next(self._m_ids))

    def m_account(self, acct: str, display_name: str | None = None) -> MastodonAccount:
        """The account ``user`` (local) or ``user@host`` (remote), created on first mention."""
        username, _, domain = acct.lstrip("@").partition("@")
        local = not domain or domain == self.mastodon_domain
        with self.lock:
            found = self.m_account_at(username, domain)
            if found is not None:
                return found
            account = MastodonAccount(id=str(100_000 + len(self.m_accounts) + 1), username=username,
                                      domain=None if local else domain, display_name=display_name or username,
                                      created_at=self.now_dt())
            self.m_accounts[account.id] = account
            self.m_by_name[(username.lower(), (account.domain or self.mastodon_domain).lower())] = account
            return account

    def m_account_at(self, username: str, host: str | None) -> MastodonAccount | None:
        """The known account ``username`` on ``host`` (this server when None), or None."""
        return self.m_by_name.get((username.lower(), (host or self.mastodon_domain).lower()))

    def add_mastodon_account(self, username: str, display_name: str | None = None,
                             access_token: str | None = None) -> MastodonAccount:
        with self.lock:
            account = self.m_account(username, display_name)
            account.access_token = access_token or secrets.token_urlsafe(32)
            account.revoked = False
            return account

    def mastodon_account(self, username: str) -> MastodonAccount:
        with self.lock:
            for account in self.m_accounts.values():
                if account.access_token and account.username.lower() == username.lower():
                    return account
        raise KeyError(f"no Mastodon account {username!r}")

    def mastodon_token(self, token: str) -> MastodonAccount | None:
        with self.lock:
            for account in self.m_accounts.values():
                if account.access_token == token and not account.revoked:
                    return account
        return None

    def add_status(self, author: MastodonAccount, text: str, *, visibility: str = "public",
                   in_reply_to: Status | None = None, spoiler_text: str = "", language: str | None = None) -> Status:
        """Store a status and notify every account of ours it mentions."""
        with self.lock:
            mentioned: list[str] = []
            for match in re.finditer(r"(?<![\w@])@([\w.]+(?:@[\w.-]+\w)?)", text):
                username, _, domain = match.group(1).partition("@")
                account = self.m_account_at(username, domain)
                if account is not None and account.id not in mentioned:
                    mentioned.append(account.id)
            status = Status(id=self.next_status_id(), account_id=author.id, text=text, created_at=self.now_dt(),
                            visibility=visibility, in_reply_to_id=in_reply_to.id if in_reply_to else None,
                            in_reply_to_account_id=in_reply_to.account_id if in_reply_to else None,
                            spoiler_text=spoiler_text, mention_ids=mentioned, language=language)
            self.statuses[status.id] = status
            self.statuses_count[author.id] += 1
            if status.in_reply_to_id:
                self.replies_count[status.in_reply_to_id] += 1
            for account_id in mentioned:
                if account_id != author.id and self.m_accounts[account_id].access_token:
                    notification = Notification(id=str(next(self._n_ids)), type="mention", account_id=account_id,
                                                from_account_id=author.id, status_id=status.id,
                                                created_at=status.created_at)
                    self.notifications[notification.id] = notification
                    self.notifications_of.setdefault(account_id, []).append(notification)
            return status

    def inject_mastodon_mention(self, account: str, text: str, author: str = "burger@elders.example",
                                author_name: str | None = None, visibility: str = "public",
                                in_reply_to_id: str | None = None, spoiler_text: str = "") -> Status:
        """A status by ``author`` (``user`` or ``user@host``) that mentions our ``account``."""
        with self.lock:
            target = self.mastodon_account(account)
            if not re.search(rf"(?<![\w@])@{re.escape(target.username)}\b", text, re.IGNORECASE):
                text = f"@{target.username} {text}"
            parent = self.statuses.get(in_reply_to_id) if in_reply_to_id else None
            if in_reply_to_id and parent is None:
                raise KeyError(f"no status {in_reply_to_id}")
            return self.add_status(self.m_account(author, author_name), text, visibility=visibility,
                                   in_reply_to=parent, spoiler_text=spoiler_text)

    def remember_idempotency(self, account_id: str, key: str, status_id: str) -> None:
        with self.lock:
            self.idempotency[(account_id, key)] = (status_id, self.now())

    def idempotent_status(self, account_id: str, key: str) -> Status | None:
        with self.lock:
            found = self.idempotency.get((account_id, key))
            if found is None or self.now() - found[1] > IDEMPOTENCY_SECONDS:
                return None
            return self.statuses.get(found[0])

    # -- what was posted -------------------------------------------------------------------------

    def record_post(self, posted: Posted) -> None:
        with self.lock:
            self.posted.append(posted)

    def posts(self, platform: str | None = None, account: str | None = None) -> list[Posted]:
        with self.lock:
            return [p for p in self.posted
                    if (platform is None or p.platform == platform) and (account is None or p.account == account)]
