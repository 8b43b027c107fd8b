"""Logging in and out, and finding out who is behind a request."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import sqlalchemy as sa

from webcare.access import Actor
from webcare.db import Database
from webcare.errors import NotAuthenticated, TooManyAttempts
from webcare.models import ApiToken, LoginFailure, User, UserSession, utcnow
from webcare.security import Keys, new_token, token_digest, verify_password
from webcare.settings import Settings

SESSION_COOKIE = "webcare_session"
_ACTOR = sa.select(User.id, User.email, User.name, User.role, User.department_id).where(User.active.is_(True))
_BY_TOKEN = _ACTOR.join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.token_hash == sa.bindparam("digest"))
_BY_SESSION = _ACTOR.join(UserSession, UserSession.user_id == User.id).where(
    UserSession.token_hash == sa.bindparam("digest"), UserSession.expires_at > sa.bindparam("now"))


@dataclass(frozen=True)
class Login:
    actor: Actor
    cookie: str
    csrf_token: str


@dataclass(frozen=True)
class Principal:
    actor: Actor
    #: The session token when the request came with the session cookie; None for a bearer token.
    session_token: str | None


#: At most this many tokens and sessions are remembered; past it the memory starts afresh.
CACHE_ENTRIES = 10_000


class Auth:
    def __init__(self, db: Database, settings: Settings, keys: Keys) -> None:
        self.db = db
        self.settings = settings
        self.keys = keys
        #: token digest -> (until when, on the monotonic clock; who). Only found ones: a token made a moment
        #: ago works at once, and a wrong one is asked about every time.
        self._known: dict[str, tuple[float, Actor]] = {}

    def forget(self, digest: str | None = None) -> None:
        """Ask the database again next time: for one token or session, or (a user changed) for all."""
        if digest is None:
            self._known.clear()
        else:
            self._known.pop(digest, None)

    async def login(self, email: str, password: str) -> Login:
        email = email.strip().lower()
        since = utcnow() - dt.timedelta(seconds=self.settings.login_window_seconds)
        # Each attempt takes its place among the failures before the password is checked, one attempt per
        # email at a time: guesses sent in parallel cannot all see the same count and get past the limit.
        # A correct password removes the failures again, its own place included.
        async with self.db.write() as tx:
            if tx.session.get_bind().dialect.name == "postgresql":  # SQLite has one writer already
                await tx.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(
                    "webcare.login:" + email))))
            failures = await tx.session.scalar(
                sa.select(sa.func.count()).select_from(LoginFailure)
                .where(LoginFailure.email == email, LoginFailure.at > since))
            if failures is not None and failures >= self.settings.login_max_failures:
                refused = True
            else:
                refused = False
                tx.session.add(LoginFailure(email=email))
                await tx.session.execute(sa.delete(LoginFailure).where(LoginFailure.at < since))
        if refused:
            raise TooManyAttempts("too many failed logins for this email; try again in a few minutes")
        async with self.db.read() as s:
            user = await s.scalar(sa.select(User).where(User.email == email))
        ok = await verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.active:
            raise NotAuthenticated("that email and password do not match", code="bad_credentials")
        token = new_token()
        async with self.db.write() as tx:
            now = tx.now
            tx.session.add(UserSession(user_id=user.id, token_hash=token_digest(token), created_at=now,
                                       expires_at=now + dt.timedelta(seconds=self.settings.session_max_age_seconds)))
            await tx.session.execute(sa.delete(LoginFailure).where(LoginFailure.email == email))
        return Login(Actor.of(user), self.keys.sign_session(token), self.keys.csrf_token(token))

    async def logout(self, session_token: str) -> None:
        async with self.db.write() as tx:
            digest = token_digest(session_token)
            await tx.session.execute(sa.delete(UserSession).where(UserSession.token_hash == digest))
        self.forget(digest)

    async def from_bearer(self, token: str) -> Actor | None:
        return await self._actor(_BY_TOKEN, {"digest": token_digest(token)})

    async def from_cookie(self, cookie: str) -> Principal | None:
        token = self.keys.unsign_session(cookie, max_age=self.settings.session_max_age_seconds)
        if token is None:
            return None
        actor = await self._actor(_BY_SESSION, {"digest": token_digest(token), "now": utcnow()})
        return Principal(actor, token) if actor else None

    async def _actor(self, stmt: sa.Select[int, str, str, str, int | None], params: dict[str, object]
                     ) -> Actor | None:
        # Every request asks this. Remembered for a moment (auth_cache_seconds): under load the statement was
        # the largest part of a request after the change itself. Else one prebuilt statement on a bare
        # connection, no ORM, no transaction.
        digest = str(params["digest"])
        ttl = self.settings.auth_cache_seconds
        if ttl > 0 and (known := self._known.get(digest)) is not None:
            if known[0] > time.monotonic():
                return known[1]
            del self._known[digest]
        async with self.db.connect() as conn:
            row = (await conn.execute(stmt, params)).first()
        if row is None:
            return None
        actor = Actor(row.id, row.email, row.name, row.role, row.department_id)
        if ttl > 0:
            if len(self._known) >= CACHE_ENTRIES:
                self._known.clear()
            self._known[digest] = (time.monotonic() + ttl, actor)
        return actor

    async def authenticate(self, authorization: str | None, cookie: str | None) -> Principal:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
            actor = await self.from_bearer(token.strip())
            if actor is None:
                raise NotAuthenticated("that API token is not valid", code="bad_token")
            return Principal(actor, None)
        if cookie:
            principal = await self.from_cookie(cookie)
            if principal is not None:
                return principal
        raise NotAuthenticated("log in first")
