"""The fake Graph API's world: Facebook Pages with posts, comments and Messenger conversations, and the
Instagram business accounts linked to them with media, comments and direct messages."""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class GraphPage:
    id: str
    username: str
    name: str
    token: str
    app_secret: str
    revoked: bool = False
    #: Whether the token may read Instagram direct messages (instagram_manage_messages).
    instagram_messaging: bool = True
    ig_user_id: str | None = None


@dataclass
class Person:
    id: str
    name: str
    username: str


@dataclass
class Post:
    id: str
    page_id: str
    message: str
    created: float
    updated: float


@dataclass
class Comment:
    id: str
    platform: str  # facebook | instagram
    object_id: str  # the post or medium
    parent_id: str | None
    from_id: str
    message: str
    created: float
    hidden: bool = False


@dataclass
class Medium:
    id: str
    ig_user_id: str
    owner_id: str  # the IG user who posted it (someone else's for mentions)
    caption: str
    created: float


@dataclass
class Thread:
    id: str
    page_id: str
    platform: str  # messenger | instagram
    person_id: str
    updated: float


@dataclass
class DirectMessage:
    id: str
    thread_id: str
    from_id: str
    to_id: str
    text: str
    created: float


@dataclass
class GraphWorld:
    """Plain memory guarded by the platform's lock; ``now`` is the platform's clock."""

    lock: threading.RLock
    now: Callable[[], float]
    pages: dict[str, GraphPage] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    posts: dict[str, Post] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    media: dict[str, Medium] = field(default_factory=dict)
    threads: dict[str, Thread] = field(default_factory=dict)
    messages: dict[str, DirectMessage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1_000_001)

    def next_id(self) -> str:
        with self.lock:
            return str(next(self._ids))

    # -- accounts --------------------------------------------------------------------------------

    def add_page(self, username: str, name: str | None = None, *, token: str | None = None,
                 app_secret: str | None = None, instagram: str | None = None,
                 instagram_messaging: bool = True) -> GraphPage:
        with self.lock:
            page = self.page_named(username, missing_ok=True)
            if page is None:
                page = GraphPage(id=str(100_000_000 + len(self.pages) + 1), username=username, name=name or username,
                                 token="EAAG" + secrets.token_urlsafe(24), app_secret=secrets.token_hex(16))
                self.pages[page.id] = page
            page.token = token or page.token
            page.app_secret = app_secret or page.app_secret
            page.revoked = False
            page.instagram_messaging = instagram_messaging
            if instagram and page.ig_user_id is None:
                person = self.person(instagram)
                page.ig_user_id = person.id
            return page

    def page_named(self, username: str, missing_ok: bool = False) -> GraphPage | None:
        with self.lock:
            for page in self.pages.values():
                linked = self.people.get(page.ig_user_id or "")
                if username in (page.username, page.id) or (linked is not None and linked.username == username):
                    return page
        if missing_ok:
            return None
        raise KeyError(f"no Graph page {username!r}")

    def page(self, username: str) -> GraphPage:
        found = self.page_named(username)
        assert found is not None
        return found

    def by_token(self, token: str | None) -> GraphPage | None:
        with self.lock:
            return next((p for p in self.pages.values() if token and p.token == token), None)

    def person(self, username: str, name: str | None = None) -> Person:
        """Someone of the public (or an IG account), created when first named."""
        with self.lock:
            for person in self.people.values():
                if person.username == username:
                    return person
            person = Person(id=str(7_000_000_000 + len(self.people) + 1), name=name or username, username=username)
            self.people[person.id] = person
            return person

    # -- Facebook --------------------------------------------------------------------------------

    def add_post(self, page: GraphPage, message: str) -> Post:
        with self.lock:
            now = self.now()
            post = Post(id=f"{page.id}_{self.next_id()}", page_id=page.id, message=message, created=now, updated=now)
            self.posts[post.id] = post
            return post

    def add_comment(self, platform: str, object_id: str, from_id: str, message: str, *,
                    parent_id: str | None = None, ago: float = 0.0) -> Comment:
        with self.lock:
            now = self.now() - ago
            prefix = object_id.split("_")[-1] + "_" if platform == "facebook" else ""
            comment = Comment(id=prefix + self.next_id(), platform=platform, object_id=object_id,
                              parent_id=parent_id, from_id=from_id, message=message, created=now)
            self.comments[comment.id] = comment
            if object_id in self.posts:
                self.posts[object_id].updated = max(self.posts[object_id].updated, now)
            return comment

    def add_direct_message(self, page: GraphPage, platform: str, person_id: str, text: str, *,
                           inbound: bool = True, ago: float = 0.0) -> DirectMessage:
        with self.lock:
            now = self.now() - ago
            thread = next((t for t in self.threads.values() if t.page_id == page.id and t.platform == platform
                           and t.person_id == person_id), None)
            if thread is None:
                thread = Thread(id="t_" + self.next_id(), page_id=page.id, platform=platform, person_id=person_id,
                                updated=now)
                self.threads[thread.id] = thread
            ours = page.id if platform == "messenger" else (page.ig_user_id or page.id)
            message = DirectMessage(id="m_" + secrets.token_hex(12), thread_id=thread.id,
                                    from_id=person_id if inbound else ours, to_id=ours if inbound else person_id,
                                    text=text, created=now)
            self.messages[message.id] = message
            thread.updated = max(thread.updated, now)
            return message

    def thread_messages(self, thread_id: str) -> list[DirectMessage]:
        with self.lock:
            return sorted((m for m in self.messages.values() if m.thread_id == thread_id), key=lambda m: m.created,
                          reverse=True)

    # -- Instagram -------------------------------------------------------------------------------

    def add_medium(self, ig_user_id: str, caption: str, owner_id: str | None = None) -> Medium:
        with self.lock:
            medium = Medium(id="179" + self.next_id(), ig_user_id=ig_user_id, owner_id=owner_id or ig_user_id,
                            caption=caption, created=self.now())
            self.media[medium.id] = medium
            return medium

    def comments_of(self, object_id: str) -> list[Comment]:
        with self.lock:
            return sorted((c for c in self.comments.values() if c.object_id == object_id), key=lambda c: c.created)
