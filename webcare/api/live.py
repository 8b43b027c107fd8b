"""The live stream: ``GET /api/live?after=SEQ``, a WebSocket with the same authentication as HTTP.

An upgrade without a valid session cookie or bearer token is refused with 401 (and a
cookie-authenticated upgrade from another origin with 403), before any WebSocket exists.

Server → client, one JSON object per text frame:

- an event ``{seq, type, conversation_id, actor_id, at, data}``: first every event after ``after``
  that the user may see, then each new one as it commits; in ``seq`` order, none twice, none left
  out. Without ``after`` the stream starts with what commits from now on.
- ``{"type": "presence.viewing", "conversation_id": N, "users": [{"id", "name"}]}``: the other
  people who have conversation N open; sent when the socket starts viewing N and whenever it changes.
- ``{"type": "presence.typing", "conversation_id": N, "users": [...]}``: the other people typing a
  reply in N. Presence carries no ``seq`` and is not stored.
- ``{"type": "error", "error": {"code", "message"}}``: a client message that was not taken.

Client → server, JSON text frames:

- ``{"type": "presence.viewing", "conversation_id": N}``: this tab shows conversation N (one per
  socket; ``null`` for none).
- ``{"type": "presence.typing", "conversation_id": N, "typing": true}``: typing a reply in N
  (implies viewing N); repeat it every few seconds while typing, since it stops by itself after
  8 s; ``"typing": false`` stops it at once.
- ``{"type": "presence.leave"}``: viewing nothing any more. Closing the socket does the same.
- ``{"type": "presence.watch", "conversation_ids": [N, ...]}``: follow the presence of these
  conversations (at most 100, say those of a queue on screen) without opening them; replaces the
  last list, ``[]`` for none. The server answers ``presence.viewing`` and ``presence.typing`` for
  each that has someone in it, and then each change, like for the conversation one views; ids the
  user may not see are left out silently.

Close codes: 4000 the client fell too far behind (reconnect with ``after=`` the last ``seq`` it
got); 4001 the session or token no longer holds, or the user's role or department changed (checked
every ``WEBCARE_LIVE_RECHECK_SECONDS``; reconnecting asks again, and is refused with 401 if it is gone);
1011 a failure on our side (reconnect likewise); 1012 the server is restarting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from webcare.access import Actor, conversation_visible
from webcare.auth import SESSION_COOKIE
from webcare.conversations import visible_conversation
from webcare.db import Database
from webcare.errors import AppError, BadRequest, Forbidden, NotAuthenticated
from webcare.http import ok
from webcare.hub import Hub, Subscription, dumps
from webcare.models import Conversation
from webcare.schemas import MAX_ID
from webcare.services import Services

log = logging.getLogger(__name__)

#: The largest client message we read.
MAX_MESSAGE = 4096
#: The most conversations one ``presence.watch`` may follow.
MAX_WATCH = 100
#: How long a close may wait for a client that is not reading before we give up on it.
CLOSE_TIMEOUT = 10.0
BEHIND = 4000
NO_LONGER_VALID = 4001


class LiveStream:
    """The endpoint as a plain ASGI app: the handshake and the client's messages go through Starlette's
    :class:`WebSocket`, while frames go straight to the server's ``send`` (the hot path: an event
    is one message shared by every socket, and a thousand sockets each send it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await live(WebSocket(scope, receive, send), send)


async def live(websocket: WebSocket, send: Send) -> None:
    svc: Services = websocket.app.state.services
    hub: Hub = websocket.app.state.hub
    try:
        after = _after(websocket)
        principal = await svc.auth.authenticate(websocket.headers.get("authorization"),
                                                websocket.cookies.get(SESSION_COOKIE))
        if principal.session_token is not None and not _same_origin(websocket):
            # Browsers send cookies with a cross-site upgrade too; a token has to be given on purpose.
            raise Forbidden("a live stream with the session cookie must come from this site's own pages",
                            code="cross_origin")
    except AppError as e:
        await _refuse(websocket, e)
        return
    # Subscribe before replaying: the hub wakes this socket for whatever commits meanwhile.
    sub = hub.subscribe(principal.actor)
    try:
        await websocket.accept()
        sender = asyncio.create_task(_send(websocket, send, hub, sub, after), name="live-sender")
        checker = asyncio.create_task(_recheck(websocket, svc, principal.actor), name="live-recheck")
        try:
            await _receive(websocket, svc.db, hub, sub)
        finally:
            for task in (sender, checker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        hub.unsubscribe(sub)


async def _recheck(websocket: WebSocket, svc: Services, actor: Actor) -> None:
    """Close the socket once the credentials it was opened with no longer hold, or no longer give the
    same view (the role or department decides what the stream shows)."""
    authorization, cookie = websocket.headers.get("authorization"), websocket.cookies.get(SESSION_COOKIE)
    while True:
        await asyncio.sleep(svc.settings.live_recheck_seconds)
        try:
            now = (await svc.auth.authenticate(authorization, cookie)).actor
        except NotAuthenticated:
            reason = "the session or token is no longer valid"
        except Exception:
            log.exception("checking the credentials of a live stream failed; trying again")
            continue
        else:
            if (now.id, now.role, now.department_id) == (actor.id, actor.role, actor.department_id):
                continue
            reason = "the user's role or department changed; reconnect"
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await websocket.close(code=NO_LONGER_VALID, reason=reason)
        return


def _after(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after")
    if raw is None or raw == "":
        return None
    try:
        after = int(raw)
    except ValueError:
        raise BadRequest("after must be a whole number: the last seq you have seen", code="invalid_query") from None
    if after < 0:
        raise BadRequest("after must not be negative", code="invalid_query")
    return after


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def _refuse(websocket: WebSocket, error: AppError) -> None:
    try:
        await websocket.send_denial_response(ok(error.body(), error.status))
    except RuntimeError:
        # A server without the denial-response extension can only say 403.
        await websocket.close(code=1008, reason=error.message[:120])


# Server → client


async def _send(websocket: WebSocket, send: Send, hub: Hub, sub: Subscription, after: int | None) -> None:
    """The socket's sender: replays, then follows the hub (which also sends to it itself while it is idle)."""
    try:
        await hub.pump(sub, after, send)
        if sub.dropped:
            # It fell too far behind: the client resumes from its last seq.
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await websocket.close(code=BEHIND, reason="too far behind; reconnect with after=<last seq>")
    except (WebSocketDisconnect, OSError, TimeoutError):
        pass
    except Exception:
        log.exception("the live stream of user %d failed", sub.actor.id)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await websocket.close(code=1011, reason="failed on our side; reconnect with after=<last seq>")


# Client → server


async def _receive(websocket: WebSocket, db: Database, hub: Hub, sub: Subscription) -> None:
    """Take presence messages until the socket closes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        try:
            if text is None:
                raise BadRequest("send JSON text frames", code="invalid_message")
            if len(text) > MAX_MESSAGE:
                raise BadRequest(f"a message may be {MAX_MESSAGE} characters at most", code="invalid_message")
            await _presence(db, hub, sub, _json(text))
        except AppError as e:
            sub.push(dumps({"type": "error", **e.body()}))


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise BadRequest("that message is not valid JSON", code="malformed_json") from None
    if not isinstance(value, dict):
        raise BadRequest("a message is a JSON object with a type", code="invalid_message")
    return value


async def _presence(db: Database, hub: Hub, sub: Subscription, message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "presence.leave":
        hub.set_presence(sub, None)
        return
    if kind == "presence.watch":
        ids = message.get("conversation_ids")
        if (not isinstance(ids, list) or len(ids) > MAX_WATCH
                or not all(type(i) is int and 0 < i <= MAX_ID for i in ids)):
            raise BadRequest(f"conversation_ids must be a list of at most {MAX_WATCH} conversation ids",
                             code="invalid_message")
        hub.watch(sub, await _visible_ids(db, sub.actor, set(ids)))
        return
    if kind not in ("presence.viewing", "presence.typing"):
        raise BadRequest("type must be presence.viewing, presence.typing, presence.leave or presence.watch",
                         code="invalid_message")
    conversation_id = message.get("conversation_id")
    typing = message.get("typing", True) if kind == "presence.typing" else False
    if conversation_id is None and kind == "presence.viewing":
        hub.set_presence(sub, None)
        return
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int) or not isinstance(typing, bool):
        raise BadRequest("conversation_id must be a conversation's id (and typing true or false)",
                         code="invalid_message")
    if conversation_id != sub.viewing:
        await _require_visible(db, sub.actor, conversation_id)
    hub.set_presence(sub, conversation_id, typing)


async def _visible_ids(db: Database, actor: Actor, conversation_ids: set[int]) -> set[int]:
    if not conversation_ids:
        return set()
    async with db.read() as session:
        return set(await session.scalars(
            sa.select(Conversation.id).where(Conversation.id.in_(conversation_ids), conversation_visible(actor))))


async def _require_visible(db: Database, actor: Actor, conversation_id: int) -> None:
    """Presence is shown only to those who may see the conversation: viewing it needs seeing it."""
    async with db.read() as session:
        await visible_conversation(session, actor, conversation_id)
