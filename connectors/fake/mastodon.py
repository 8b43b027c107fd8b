"""The Mastodon API, as far as the Mastodon connector uses it, field for field (see PLATFORMS.md §4).

``GET /api/v1/accounts/verify_credentials``, ``GET /api/v1/accounts/:id/statuses``,
``GET /api/v1/notifications``, ``GET /api/v1/statuses/:id`` and ``POST /api/v1/statuses`` (which
honours ``Idempotency-Key`` for an hour). Every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import html
import re
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fake.middleware import PlatformMiddleware, Reject
from connectors.fake.state import FakePlatform, MastodonAccount, Notification, Posted, RateWindow, Status

VISIBILITIES = ("public", "unlisted", "private", "direct")
_REASONS = {401: "The access token is invalid", 404: "Record not found", 429: "Too many requests",
            500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout"}
_TOKENS = re.compile(r"(?P<url>https?://[^\s<>\"]+)|(?<![\w@])@(?P<user>\w+)(?:@(?P<host>[\w.-]+\w))?")


H = TypeVar("H", Status, Notification)


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def reset_timestamp(epoch: float) -> str:
    """Rack::Attack's ``iso8601(6)``: e.g. ``2026-11-27T04:38:26.245126Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MastodonStyle:
    name = "mastodon"

    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    def error(self, status: int, message: str | None = None, reset: float | None = None) -> Response:
        response = JSONResponse({"error": message or _REASONS.get(status, "Error")}, status)
        if status == 429:
            limit = self.fake.limits["mastodon"][0]
            reset = reset if reset is not None else self.fake.now() + 60
            response.headers.update(self.rate_headers(RateWindow(limit, 0, reset)))
        return response

    def rate_headers(self, window: RateWindow) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(window.limit), "X-RateLimit-Remaining": str(max(window.remaining, 0)),
                "X-RateLimit-Reset": reset_timestamp(window.reset)}

    def account(self, headers: Headers) -> str | None:
        token = _bearer(headers)
        found = self.fake.mastodon_token(token) if token else None
        return found.username if found else None

    def bucket(self, method: str, path: str) -> str:
        return "api"  # Mastodon counts all of an account's API calls together


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.startswith("Bearer ") else None


class MastodonApi:
    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/accounts/verify_credentials", self.verify_credentials),
            Route("/api/v1/accounts/{id}/statuses", self.account_statuses),
            Route("/api/v1/notifications", self.notifications),
            Route("/api/v1/statuses/{id}", self.status),
            Route("/api/v1/statuses", self.create_status, methods=["POST"]),
        ]

    def auth(self, request: Request) -> MastodonAccount:
        token = _bearer(request.headers)
        account = self.fake.mastodon_token(token) if token else None
        if account is None:
            raise Reject(401)
        return account

    async def verify_credentials(self, request: Request) -> Response:
        account = self.auth(request)
        body = self.account_json(account)
        body["source"] = {"privacy": "public", "sensitive": False, "language": "", "note": "", "fields": []}
        return JSONResponse(body)

    async def account_statuses(self, request: Request) -> Response:
        self.auth(request)
        account_id = request.path_params["id"]
        if account_id not in self.fake.m_accounts:
            raise Reject(404)
        with self.fake.lock:
            found = [s for s in self.fake.statuses.values() if s.account_id == account_id]
        if request.query_params.get("exclude_replies") in ("true", "1"):
            found = [s for s in found if s.in_reply_to_id is None]
        page, link = _paginate(request, found, default=20, maximum=40)
        return JSONResponse([self.status_json(s) for s in page], headers=link)

    async def notifications(self, request: Request) -> Response:
        account = self.auth(request)
        types = set(request.query_params.getlist("types[]"))
        excluded = set(request.query_params.getlist("exclude_types[]"))
        with self.fake.lock:
            mine = list(self.fake.notifications_of.get(account.id, ()))
        found = [n for n in mine if (not types or n.type in types) and n.type not in excluded]
        page, link = _paginate(request, found, default=40, maximum=80)
        return JSONResponse([self.notification_json(n) for n in page], headers=link)

    async def status(self, request: Request) -> Response:
        self.auth(request)
        status = self.fake.statuses.get(request.path_params["id"])
        if status is None:
            raise Reject(404)
        return JSONResponse(self.status_json(status))

    async def create_status(self, request: Request) -> Response:
        account = self.auth(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                params = await request.json()
            except ValueError:
                raise Reject(422, "Validation failed: request body is not valid JSON") from None
            if not isinstance(params, dict):
                raise Reject(422, "Validation failed: request body must be an object")
        else:
            # Form-encoded, as most Mastodon clients send it (parsed here: no python-multipart needed).
            params = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        text = str(params.get("status") or "")
        visibility = str(params.get("visibility") or "public")
        key = request.headers.get("idempotency-key")
        with self.fake.lock:
            if key and (earlier := self.fake.idempotent_status(account.id, key)) is not None:
                return JSONResponse(self.status_json(earlier))
            if not text.strip():
                raise Reject(422, "Validation failed: Text can't be blank")
            if visibility not in VISIBILITIES:
                raise Reject(422, "Validation failed: Visibility is not included in the list")
            if _length(text) > self.fake.mastodon_max_characters:
                raise Reject(422, f"Validation failed: Text character limit of "
                                  f"{self.fake.mastodon_max_characters} exceeded")
            parent = None
            if params.get("in_reply_to_id"):
                parent = self.fake.statuses.get(str(params["in_reply_to_id"]))
                if parent is None:
                    raise Reject(404)
            status = self.fake.add_status(account, text, visibility=visibility, in_reply_to=parent,
                                          spoiler_text=str(params.get("spoiler_text") or ""),
                                          language=str(params["language"]) if params.get("language") else None)
            if key:
                self.fake.remember_idempotency(account.id, key, status.id)
            self.fake.record_post(Posted("mastodon", account.username, "status", status.id, text,
                                         in_reply_to=parent.id if parent else None, visibility=visibility,
                                         idempotency_key=key))
        return JSONResponse(self.status_json(status))

    def host(self, account: MastodonAccount) -> str:
        return account.domain or self.fake.mastodon_domain

    def account_url(self, account: MastodonAccount) -> str:
        return f"https://{self.host(account)}/@{account.username}"

    def account_json(self, account: MastodonAccount) -> dict[str, Any]:
        host = self.host(account)
        count = self.fake.statuses_count[account.id]
        return {
            "id": account.id, "username": account.username, "acct": account.acct,
            "display_name": account.display_name, "locked": False, "bot": False, "discoverable": True,
            "group": False, "created_at": timestamp(account.created_at.replace(hour=0, minute=0, second=0,
                                                                                 microsecond=0)),
            "note": "", "url": self.account_url(account),
            "avatar": f"https://{host}/avatars/original/missing.png",
            "avatar_static": f"https://{host}/avatars/original/missing.png",
            "header": f"https://{host}/headers/original/missing.png",
            "header_static": f"https://{host}/headers/original/missing.png",
            "followers_count": 0, "following_count": 0, "statuses_count": count, "last_status_at": None,
            "emojis": [], "fields": []}

    def status_json(self, status: Status) -> dict[str, Any]:
        author = self.fake.m_accounts[status.account_id]
        mentioned = [self.fake.m_accounts[i] for i in status.mention_ids]
        replies = self.fake.replies_count[status.id]
        return {
            "id": status.id, "created_at": timestamp(status.created_at),
            "in_reply_to_id": status.in_reply_to_id, "in_reply_to_account_id": status.in_reply_to_account_id,
            "sensitive": bool(status.spoiler_text), "spoiler_text": status.spoiler_text,
            "visibility": status.visibility, "language": status.language,
            "uri": f"https://{self.host(author)}/users/{author.username}/statuses/{status.id}",
            "url": f"{self.account_url(author)}/{status.id}",
            "replies_count": replies, "reblogs_count": 0, "favourites_count": 0, "edited_at": None,
            "content": self.render(status.text, mentioned), "reblog": None, "application": None,
            "account": self.account_json(author), "media_attachments": [],
            "mentions": [{"id": m.id, "username": m.username, "url": self.account_url(m), "acct": m.acct}
                         for m in mentioned],
            "tags": [], "emojis": [], "card": None, "poll": None}

    def notification_json(self, notification: Notification) -> dict[str, Any]:
        status = self.fake.statuses.get(notification.status_id or "")
        return {"id": notification.id, "type": notification.type,
                "created_at": timestamp(notification.created_at),
                "account": self.account_json(self.fake.m_accounts[notification.from_account_id]),
                "status": self.status_json(status) if status else None}

    def render(self, text: str, mentioned: list[MastodonAccount]) -> str:
        """Mastodon's HTML for plain text: paragraphs, <br />, linked URLs and h-card mentions."""
        return "".join(f"<p>{self._inline(p)}</p>" for p in re.split(r"\n{2,}", text.strip()) if p)

    def _inline(self, text: str) -> str:
        out: list[str] = []
        position = 0
        for match in _TOKENS.finditer(text):
            out.append(html.escape(text[position:match.start()]))
            position = match.end()
            if match.group("url"):
                scheme, _, rest = match.group("url").partition("://")
                shown, hidden = rest[:30], rest[30:]
                out.append(f'<a href="{html.escape(match.group("url"))}" target="_blank" rel="nofollow noopener" '
                           f'translate="no"><span class="invisible">{scheme}://</span>'
                           f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
                           f'<span class="invisible">{html.escape(hidden)}</span></a>')
                continue
            account = self.fake.m_account_at(match.group("user"), match.group("host"))
            if account is None:
                out.append(html.escape(match.group(0)))
            else:
                out.append(f'<span class="h-card" translate="no"><a href="{self.account_url(account)}" '
                           f'class="u-url mention">@<span>{html.escape(account.username)}</span></a></span>')
        out.append(html.escape(text[position:]))
        return "".join(out).replace("\n", "<br />")


def _length(text: str) -> int:
    """Mastodon's count: a URL weighs 23 characters, a remote mention only its @username."""
    return len(_TOKENS.sub(lambda m: "x" * 23 if m.group("url") else "@" + m.group("user"), text))


def _id(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return int(value) if value and value.isdigit() else None


def _paginate(request: Request, items: list[H], *, default: int, maximum: int) -> tuple[list[H], dict[str, str]]:
    """One page newest first, by max_id/since_id/min_id, and the Link header Mastodon sends with it."""
    raw = request.query_params.get("limit", "")
    limit = min(int(raw), maximum) if raw.isdigit() and int(raw) > 0 else default
    max_id, since_id, min_id = _id(request, "max_id"), _id(request, "since_id"), _id(request, "min_id")
    # Oldest first by id, then the bounds by bisection: a page costs what it holds, not what the account has.
    ordered = sorted(items, key=lambda i: int(i.id))  # linear when they come in order already
    end = len(ordered) if max_id is None else bisect.bisect_left(ordered, max_id, key=lambda i: int(i.id))
    if min_id is not None:
        # The items immediately newer than min_id, then reversed to newest first (Paginable#paginate_by_id).
        start = bisect.bisect_right(ordered, min_id, hi=end, key=lambda i: int(i.id))
        page = ordered[start:min(end, start + limit)][::-1]
    else:
        start = 0 if since_id is None else bisect.bisect_right(ordered, since_id, hi=end, key=lambda i: int(i.id))
        page = ordered[max(start, end - limit):end][::-1]
    if not page:
        return page, {}
    base = str(request.url).split("?", 1)[0]
    kept: list[tuple[str, str]] = [(k, v) for k, v in request.query_params.multi_items()
                                   if k not in ("max_id", "since_id", "min_id")]
    links = []
    if len(page) == limit:
        links.append(f'<{base}?{urlencode([*kept, ("max_id", page[-1].id)])}>; rel="next"')
    links.append(f'<{base}?{urlencode([*kept, ("min_id", page[0].id)])}>; rel="prev"')
    return page, {"Link": ", ".join(links)}


def create_mastodon_app(fake: FakePlatform) -> Starlette:
    style = MastodonStyle(fake)

    async def rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Reject)
        return style.error(exc.status, exc.message)

    return Starlette(routes=MastodonApi(fake).routes(), exception_handlers={Reject: rejected},
                     middleware=[Middleware(PlatformMiddleware, fake=fake, style=style)])
