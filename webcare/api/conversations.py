"""The queue and the life-cycle verbs, the generic API channel's inbound door, and the event log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from connectors.base import Author, InboundMessage
from webcare.api import current_actor, services
from webcare.conversations import QueueFilter, get_conversation, list_queue
from webcare.errors import BadRequest
from webcare.eventlog import DEFAULT_LIMIT, read_events
from webcare.http import Endpoint, ok, parse, query_int
from webcare.ingest import ingest
from webcare.models import utcnow
from webcare.schemas import MAX_ID, CloseIn, EscalateIn, InboundIn, NoteIn, ReplyIn


async def queue(request: Request) -> Response:
    actor = await current_actor(request)
    q = request.query_params
    account_id = query_int(request, "account_id", 0, maximum=MAX_ID) or None
    department_id = query_int(request, "department_id", 0, maximum=MAX_ID) or None
    f = QueueFilter(
        statuses=tuple(s.strip() for s in q.get("status", "").split(",") if s.strip()),
        account_id=account_id, department_id=department_id, assignee=q.get("assignee") or None,
        claimed_by=q.get("claimed_by") or None,
        q=(q.get("q") or "").strip() or None, limit=query_int(request, "limit", 50), cursor=q.get("cursor") or None,
    )
    return ok(await list_queue(services(request).db, actor, f))


async def detail(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await get_conversation(services(request).db, actor, request.path_params["id"]))


async def claim(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"conversation": await services(request).inbox.claim(actor, request.path_params["id"])})


async def release(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"conversation": await services(request).inbox.release(actor, request.path_params["id"])})


async def escalate(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, EscalateIn)
    conversation = await services(request).inbox.escalate(actor, request.path_params["id"], user_id=body.user_id,
                                                          department_id=body.department_id, note=body.note)
    return ok({"conversation": conversation})


async def add_note(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, NoteIn)
    return ok({"note": await services(request).inbox.add_note(actor, request.path_params["id"], body.text)}, 201)


async def reply(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, ReplyIn)
    return ok({"reply": await services(request).inbox.reply(actor, request.path_params["id"], body.text)}, 201)


async def retry_reply(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"reply": await services(request).inbox.retry_reply(actor, request.path_params["id"])})


async def close(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, CloseIn)
    return ok({"conversation": await services(request).inbox.close(actor, request.path_params["id"], body.reason)})


async def reopen(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"conversation": await services(request).inbox.reopen(actor, request.path_params["id"])})


async def inbound(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("admin", "coordinator")
    svc = services(request)
    account = await svc.accounts.get(actor, request.path_params["id"])
    if account.platform != "api":
        raise BadRequest(f"account {account.id} is a {account.platform} account; only api accounts take messages "
                         "through this door", code="not_an_api_account")
    body = await parse(request, InboundIn)
    message = InboundMessage(
        external_id=body.external_id, author=Author(body.author.id, body.author.handle, body.author.name),
        text=body.text, created_at=body.created_at or utcnow(), in_reply_to=body.in_reply_to,
    )
    done = await ingest(svc.db, account.id, message)
    return ok({"conversation_id": done.conversation_id, "message_id": done.message_id},
              201 if done.created else 200)


async def events(request: Request) -> Response:
    actor = await current_actor(request)
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", DEFAULT_LIMIT)
    return ok(await read_events(services(request).db, actor, after, limit))


C = "/api/conversations/{id:int}"
ENDPOINTS = [
    Endpoint("GET", "/api/conversations", queue,
             "The queue: filters status (comma list), account_id, department_id, assignee, claimed_by, q, limit, "
             "cursor"),
    Endpoint("GET", C, detail, "One conversation with its messages and links"),
    Endpoint("POST", f"{C}/claim", claim, "Claim: 409 already_claimed when someone else has it"),
    Endpoint("POST", f"{C}/release", release, "Release a claim, or hand an escalation back to the queue"),
    Endpoint("POST", f"{C}/escalate", escalate, "Escalate to a person or a department's experts", EscalateIn),
    Endpoint("POST", f"{C}/notes", add_note, "Add an internal note", NoteIn),
    Endpoint("POST", f"{C}/replies", reply, "Reply through the platform, via the outbox", ReplyIn),
    Endpoint("POST", "/api/replies/{id:int}/retry", retry_reply,
             "Queue a failed reply again (the platform is asked first whether an earlier attempt got through)"),
    Endpoint("POST", f"{C}/close", close, "Close with a reason", CloseIn),
    Endpoint("POST", f"{C}/reopen", reopen, "Reopen a closed or answered conversation"),
    Endpoint("POST", "/api/accounts/{id:int}/inbound", inbound,
             "The generic API channel: push one message (idempotent on external_id)", InboundIn, tag="channels"),
    Endpoint("GET", "/api/events", events, "The event log after a sequence number, oldest first", tag="events"),
]
