"""Meta's webhooks (Facebook Pages and Instagram) at ``/webhooks/meta``.

``GET`` is the subscription handshake: the challenge goes back when the verify token is one of our
accounts'. ``POST`` is a delivery: ``X-Hub-Signature-256`` must be ``sha256=`` and the HMAC-SHA256 of
the raw body under the ``app_secret`` of an account, compared in constant time before the body is even
parsed; anything else is 401 and nothing is stored. Each entry goes to the account whose ``page_id``
(object ``page``) or ``ig_user_id`` (object ``instagram``) is its id and whose secret signed it.

Each account's entries are stored (``webcare.webhooks``) in one short transaction before the answer
(200) goes out; the work comes after it: the connector reads each announced comment or message back
from Graph (so a webhook stores exactly what polling would), ingest stores it (the unique external id
makes a repeated or reordered delivery store nothing new), the delivery is marked done and the
account's next poll is brought forward. A delivery whose processing failed or whose process died is
taken up again by the workers' sweep. The reconciling poll stays the source of truth for what Meta
never delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from webcare.api import services
from webcare.http import ok, read_body
from webcare.models import Account
from webcare.services import Services

log = logging.getLogger(__name__)

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
OBJECTS = {"page": ("facebook", "page_id"), "instagram": ("instagram", "ig_user_id")}


def _refused(status: int, code: str, message: str) -> Response:
    return ok({"error": {"code": code, "message": message}}, status)


async def _meta_accounts(svc: Services) -> list[tuple[Account, dict[str, Any]]]:
    async with svc.db.read() as s:
        accounts = list(await s.scalars(sa.select(Account).where(
            Account.platform.in_(("facebook", "instagram")), Account.active.is_(True))))
    found = []
    for account in accounts:
        try:
            found.append((account, svc.keys.decrypt_credentials(account.credentials_encrypted)))
        except ValueError:
            continue
    return found


async def verify_subscription(request: Request) -> Response:
    q = request.query_params
    token, challenge = q.get("hub.verify_token", ""), q.get("hub.challenge", "")
    if q.get("hub.mode") == "subscribe" and token and challenge:
        for account, _ in await _meta_accounts(services(request)):
            expected = str(account.settings.get("verify_token") or "")
            if expected and hmac.compare_digest(expected.encode(), token.encode()):
                return PlainTextResponse(challenge)
    return _refused(403, "verification_failed", "the verify token is not one of our Facebook or Instagram accounts'")


async def receive(request: Request) -> Response:
    svc = services(request)
    raw = await read_body(request, svc.settings.max_body_bytes)
    match = _SIGNATURE.fullmatch(request.headers.get("x-hub-signature-256", "").strip())
    if match is None:
        return _refused(401, "invalid_signature", "X-Hub-Signature-256 must be sha256=<hex HMAC-SHA256 of the body>")
    given = bytes.fromhex(match.group(1))
    accounts = await _meta_accounts(svc)
    signed_by = {secret for secret in {str(c.get("app_secret") or "") for _, c in accounts} if secret
                 and hmac.compare_digest(hmac.new(secret.encode(), raw, hashlib.sha256).digest(), given)}
    if not signed_by:
        return _refused(401, "invalid_signature", "the signature matches none of our accounts' app secrets")
    try:
        payload = json.loads(raw)
    except ValueError:
        return _refused(400, "malformed_json", "the delivery is not JSON")
    work: dict[int, list[dict[str, Any]]] = {}
    platform, key = OBJECTS.get(str(payload.get("object")) if isinstance(payload, dict) else "", ("", ""))
    for entry in payload.get("entry") or [] if isinstance(payload, dict) else []:
        if not isinstance(entry, dict):
            continue
        for account, credentials in accounts:
            if account.platform == platform and str(account.settings.get(key)) == str(entry.get("id")) \
                    and credentials.get("app_secret") in signed_by:
                work.setdefault(account.id, []).append(entry)
    if not work:
        return ok({"received": 0})
    # Stored before the answer, in one short transaction: a process that dies after the 200 leaves the
    # delivery to the workers' sweep instead of losing it (Instagram mentions come no other way).
    ids = await svc.deliveries.accept({account_id: {"object": payload.get("object"), "entry": entries}
                                       for account_id, entries in work.items()})
    response = ok({"received": sum(len(e) for e in work.values())})
    response.background = BackgroundTask(svc.deliveries.process_all, ids)
    return response


ROUTES = [Route("/webhooks/meta", verify_subscription, methods=["GET"]),
          Route("/webhooks/meta", receive, methods=["POST"])]

SPEC: dict[str, Any] = {"/webhooks/meta": {
    "get": {"summary": "Meta's verification handshake: 200 with hub.challenge when hub.verify_token is an "
                       "account's settings.verify_token, else 403", "tags": ["webhooks"],
            "responses": {"200": {"description": "the challenge"}, "403": {"description": "unknown token"}}},
    "post": {"summary": "A Meta delivery (object page or instagram), signed with X-Hub-Signature-256 under the "
                        "account's app_secret; 401 and nothing stored otherwise", "tags": ["webhooks"],
             "responses": {"200": {"description": "accepted"}, "401": {"description": "bad or missing signature"}}},
}}
