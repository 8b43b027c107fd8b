"""House style, approval, saved replies, routing rules, surges and similar questions over HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webcare import approval, clusters, routing, saved_replies, similar, style
from webcare.api import current_actor, services
from webcare.assist_schemas import (
    ApprovalRuleIn,
    ClusterReplyIn,
    CommentIn,
    DraftIn,
    RenderIn,
    RoutingRuleIn,
    RoutingRulePatch,
    RoutingTestIn,
    SavedReplyIn,
    SavedReplyPatch,
    StyleIn,
)
from webcare.http import Endpoint, ok, parse, query_int
from webcare.schemas import MAX_ID

# House style


async def account_style(request: Request) -> Response:
    actor = await current_actor(request)
    account = await services(request).accounts.get(actor, request.path_params["id"])
    return ok(await style.read_style(services(request).db, account=account))


async def set_account_style(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    account = await services(request).accounts.get(actor, request.path_params["id"])
    body = await parse(request, StyleIn)
    return ok(await style.write_style(services(request).db, actor, body.model_dump(), account_id=account.id))


async def department_style(request: Request) -> Response:
    await current_actor(request)
    return ok(await style.read_style(services(request).db, department_id=request.path_params["id"]))


async def set_department_style(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, StyleIn)
    return ok(await style.write_style(services(request).db, actor, body.model_dump(),
                                      department_id=request.path_params["id"]))


async def check_reply(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, DraftIn)
    return ok(await approval.check_draft(services(request).db, actor, request.path_params["id"], body.text))


# Approval


async def approvals(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await approval.approval_queue(services(request).db, actor, query_int(request, "limit", 100,
                                                                                   maximum=500)))


async def approve(request: Request) -> Response:
    actor = await current_actor(request)
    return ok({"reply": await approval.approve(services(request).db, actor, request.path_params["id"])})


async def send_back(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, CommentIn)
    return ok({"reply": await approval.send_back(services(request).db, actor, request.path_params["id"],
                                                 body.comment)})


async def resubmit(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, DraftIn)
    return ok({"reply": await approval.resubmit(services(request).db, actor, request.path_params["id"], body.text)})


async def approval_rules(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    return ok({"items": await approval.list_rules(services(request).db)})


async def create_approval_rule(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, ApprovalRuleIn)
    return ok(await approval.create_rule(services(request).db, actor, **body.model_dump()), 201)


async def delete_approval_rule(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await approval.delete_rule(services(request).db, actor, request.path_params["id"]))


# Saved replies


async def search_saved_replies(request: Request) -> Response:
    actor = await current_actor(request)
    q = request.query_params
    return ok(await saved_replies.search(
        services(request).db, actor, q=(q.get("q") or "").strip() or None,
        conversation_id=query_int(request, "conversation_id", 0, maximum=MAX_ID) or None,
        department_id=query_int(request, "department_id", 0, maximum=MAX_ID) or None,
        limit=max(1, min(query_int(request, "limit", 20, maximum=200), 200))))


async def create_saved_reply(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, SavedReplyIn)
    return ok(await saved_replies.create(services(request).db, actor, department_id=body.department_id,
                                         title=body.title, text=body.text), 201)


async def update_saved_reply(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, SavedReplyPatch)
    return ok(await saved_replies.update(services(request).db, actor, request.path_params["id"],
                                         body.model_dump(exclude_unset=True)))


async def delete_saved_reply(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await saved_replies.delete(services(request).db, actor, request.path_params["id"]))


async def render_saved_reply(request: Request) -> Response:
    actor = await current_actor(request)
    body = await parse(request, RenderIn)
    return ok(await saved_replies.render_for(services(request).db, actor, request.path_params["id"],
                                             body.conversation_id))


# Routing


async def routing_rules(request: Request) -> Response:
    await current_actor(request)
    return ok({"items": await routing.list_rules(services(request).db)})


async def create_routing_rule(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, RoutingRuleIn)
    return ok(await routing.create_rule(services(request).db, actor, body.model_dump()), 201)


async def update_routing_rule(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, RoutingRulePatch)
    return ok(await routing.update_rule(services(request).db, actor, request.path_params["id"],
                                        body.model_dump(exclude_unset=True)))


async def delete_routing_rule(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await routing.delete_rule(services(request).db, actor, request.path_params["id"]))


async def test_routing(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, RoutingTestIn)
    return ok(await routing.try_rules(services(request).db, body.text, body.account_id))


# Surges and similar questions


async def list_clusters(request: Request) -> Response:
    await current_actor(request)
    return ok(await clusters.list_clusters(services(request).db,
                                           waiting_only=request.query_params.get("waiting") in ("1", "true"),
                                           limit=max(1, min(query_int(request, "limit", 50, maximum=200), 200))))


async def cluster(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await clusters.cluster_detail(services(request).db, actor, request.path_params["id"]))


async def reply_to_cluster(request: Request) -> Response:
    actor = await current_actor(request)
    actor.require("coordinator", "admin")
    body = await parse(request, ClusterReplyIn)
    svc = services(request)
    return ok(await clusters.reply_to_cluster(svc.db, svc.inbox, actor, request.path_params["id"], text=body.text,
                                              saved_reply_id=body.saved_reply_id))


async def similar_answered(request: Request) -> Response:
    actor = await current_actor(request)
    return ok(await similar.similar_answered(services(request).db, actor, request.path_params["id"],
                                             limit=max(1, min(query_int(request, "limit", 5, maximum=50), 50))))


ENDPOINTS = [
    Endpoint("GET", "/api/accounts/{id:int}/style", account_style,
             "An account's house style, and what applies to it with its department's defaults", tag="style"),
    Endpoint("PUT", "/api/accounts/{id:int}/style", set_account_style,
             "Set an account's house style: signature, length limit, banned phrases, required elements", StyleIn,
             tag="style"),
    Endpoint("GET", "/api/departments/{id:int}/style", department_style, "A department's default house style",
             tag="style"),
    Endpoint("PUT", "/api/departments/{id:int}/style", set_department_style,
             "Set a department's default house style", StyleIn, tag="style"),
    Endpoint("POST", "/api/conversations/{id:int}/replies/check", check_reply,
             "Check a draft against the house style and approval rules without sending it", DraftIn, tag="style"),
    Endpoint("GET", "/api/approvals", approvals, "Replies awaiting approval, oldest first", tag="approval"),
    Endpoint("POST", "/api/replies/{id:int}/approve", approve, "Approve a reply: it is queued to go out",
             tag="approval"),
    Endpoint("POST", "/api/replies/{id:int}/send-back", send_back,
             "Send a reply back to its author as a draft, with a comment", CommentIn, tag="approval"),
    Endpoint("POST", "/api/replies/{id:int}/resubmit", resubmit, "Submit an edited draft again", DraftIn,
             tag="approval"),
    Endpoint("GET", "/api/approval-rules", approval_rules, "Approval rules", tag="approval"),
    Endpoint("POST", "/api/approval-rules", create_approval_rule,
             "Create an approval rule (account, department, author role and/or author)", ApprovalRuleIn,
             tag="approval"),
    Endpoint("DELETE", "/api/approval-rules/{id:int}", delete_approval_rule, "Delete an approval rule",
             tag="approval"),
    Endpoint("GET", "/api/saved-replies", search_saved_replies,
             "Saved replies: q (fuzzy), conversation_id (rank by fit, fill in variables), department_id, limit",
             tag="saved replies"),
    Endpoint("POST", "/api/saved-replies", create_saved_reply, "Create a saved reply", SavedReplyIn,
             tag="saved replies"),
    Endpoint("PATCH", "/api/saved-replies/{id:int}", update_saved_reply, "Change a saved reply", SavedReplyPatch,
             tag="saved replies"),
    Endpoint("DELETE", "/api/saved-replies/{id:int}", delete_saved_reply, "Delete a saved reply",
             tag="saved replies"),
    Endpoint("POST", "/api/saved-replies/{id:int}/render", render_saved_reply,
             "A saved reply with its variables filled in for a conversation", RenderIn, tag="saved replies"),
    Endpoint("GET", "/api/routing-rules", routing_rules, "Routing rules in the order they are tried", tag="routing"),
    Endpoint("POST", "/api/routing-rules", create_routing_rule, "Create a routing rule", RoutingRuleIn,
             tag="routing"),
    Endpoint("PATCH", "/api/routing-rules/{id:int}", update_routing_rule, "Change a routing rule", RoutingRulePatch,
             tag="routing"),
    Endpoint("DELETE", "/api/routing-rules/{id:int}", delete_routing_rule, "Delete a routing rule", tag="routing"),
    Endpoint("POST", "/api/routing-rules/test", test_routing, "Which rule would route this text, and why",
             RoutingTestIn, tag="routing"),
    Endpoint("GET", "/api/clusters", list_clusters, "Surges, newest first (waiting=true: those with open ones)",
             tag="surges"),
    Endpoint("GET", "/api/clusters/{id:int}", cluster, "One surge with its conversations", tag="surges"),
    Endpoint("POST", "/api/clusters/{id:int}/replies", reply_to_cluster,
             "Answer every waiting conversation of a surge, personalised per person", ClusterReplyIn, tag="surges"),
    Endpoint("GET", "/api/conversations/{id:int}/similar", similar_answered,
             "Similar earlier conversations that were answered, with their answers, from every department"),
]
