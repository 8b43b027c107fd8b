"""Meta's Graph API over an ``httpx.AsyncClient``: requests, paging, errors and usage, shared by the
Facebook Pages and Instagram connectors.

Graph answers errors mostly with HTTP 400 or 403, rarely 429, so errors are classified by ``error.code``
(PLATFORMS.md §2):

    1, 2                            Transient     wait and retry
    4, 17, 32, 613, 80001-80009     RateLimited   back off until estimated_time_to_regain_access
    190, 102                        AuthExpired   the token is invalid or expired
    10, 200-299, 368, 100, 551, …   Permanent     permissions, policy, bad parameters

Every response may carry usage headers (``X-App-Usage``, ``X-Page-Usage``, ``X-Business-Use-Case-Usage``,
percentages of the quota). Above ``SLOW_AT`` percent the client asks for a pause that grows with the
usage, before Meta starts refusing: ``check()`` raises ``RateLimited`` until it is over, so the poller
moves the account's next poll instead of spending the rest of the quota.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.base import AuthExpired, ConnectorError, Permanent, RateLimited, Transient
from connectors.common import utcnow

log = logging.getLogger(__name__)

GRAPH_API = "https://graph.facebook.com"
GRAPH_VERSION = "v21.0"
SLOW_AT = 80.0
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({190, 102})
DEFAULT_THROTTLE = dt.timedelta(minutes=10)  # a throttle error that says nothing of when it ends
MAX_PAGES = 20
_VERSIONED = re.compile(r"/v\d+(?:\.\d+)?(/.*)$")
_REASONS = {10: "the app lacks a permission for this", 100: "a parameter is invalid",
            368: "Meta blocked this as abusive", 551: "this person isn't available right now",
            10900: "this activity was already replied to", 10903: "this reply is not allowed",
            2018278: "the 24-hour window to answer this message has closed"}


class Refused(Permanent):
    """A Graph error that will not heal by retrying, with Meta's code for it."""

    def __init__(self, message: str, code: int | None, subcode: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode

    @property
    def permission(self) -> bool:
        """The token lacks a permission (codes 10 and 200-299), e.g. messaging access not granted."""
        return self.code == 10 or (self.code is not None and 200 <= self.code <= 299)


@dataclass(frozen=True)
class Usage:
    """The highest quota percentage the last response reported, and how long until access returns."""

    percent: float
    regain: dt.timedelta | None = None


def parse_time(value: Any) -> dt.datetime:
    """Graph's ``2026-11-27T06:00:00+0000`` (or a unix time, as webhooks send) as an aware datetime."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value  # Messenger webhooks count milliseconds
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if not value:
        return utcnow()
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def unix(value: dt.datetime) -> int:
    return int(value.timestamp())


def read_usage(headers: Mapping[str, str]) -> Usage | None:
    """The usage headers as one figure: the highest percentage of any counter, the longest wait."""
    percents: list[float] = []
    regain = 0.0
    for name in ("x-app-usage", "x-page-usage", "x-ad-account-usage"):
        value = _json_header(headers.get(name))
        if isinstance(value, dict):
            percents += [float(v) for k, v in value.items() if k in ("call_count", "total_cputime", "total_time")
                         and isinstance(v, int | float)]
    buc = _json_header(headers.get("x-business-use-case-usage"))
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                percents += [float(v) for k, v in entry.items() if k in ("call_count", "total_cputime", "total_time")
                             and isinstance(v, int | float)]
                minutes = entry.get("estimated_time_to_regain_access")
                if isinstance(minutes, int | float):
                    regain = max(regain, float(minutes))
    if not percents and not regain:
        return None
    return Usage(max(percents, default=0.0), dt.timedelta(minutes=regain) if regain else None)


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def slow_down(usage: Usage) -> dt.timedelta | None:
    """How long to pause at this usage: none below SLOW_AT, then 1 minute doubling every 5 points."""
    pause = None
    if usage.percent >= SLOW_AT:
        pause = dt.timedelta(seconds=60 * 2 ** ((min(usage.percent, 100.0) - SLOW_AT) / 5))
    if usage.regain:
        pause = max(pause or usage.regain, usage.regain)
    return pause


def translate(response: httpx.Response, usage: Usage | None = None) -> ConnectorError:
    """A Graph error response as ours, by ``error.code`` first and the HTTP status second."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    text = str(error.get("error_user_msg") or error.get("message") or response.reason_phrase)
    reason = _REASONS.get(subcode or -1) or _REASONS.get(code or -1)
    message = f"Graph {response.status_code} (code {code}{f'/{subcode}' if subcode else ''}): {text}"
    if reason:
        message += f" [{reason}]"
    if code in THROTTLE_CODES or response.status_code == 429:
        wait = (usage.regain if usage and usage.regain else None) or _retry_after(response) or DEFAULT_THROTTLE
        return RateLimited(message, utcnow() + wait)
    if code in AUTH_CODES or response.status_code == 401:
        return AuthExpired(message)
    if code in TRANSIENT_CODES or (code is None and (response.status_code >= 500 or response.status_code == 408)):
        return Transient(message)
    if error.get("is_transient") is True:
        return Transient(message)
    return Refused(message, code, subcode)


def _retry_after(response: httpx.Response) -> dt.timedelta | None:
    value = response.headers.get("retry-after", "")
    return dt.timedelta(seconds=int(value)) if value.isdigit() else None


def appsecret_proof(app_secret: str, token: str) -> str:
    """What Graph asks of server calls when the app requires it: HMAC-SHA256 of the token under the secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


class Graph:
    """One access token's view of the Graph API."""

    def __init__(self, http: httpx.AsyncClient, token: str, *, base_url: str = GRAPH_API,
                 version: str = GRAPH_VERSION, app_secret: str | None = None, owns_http: bool = False,
                 timeout: float | None = None) -> None:
        """``timeout`` (seconds) bounds each call; None leaves it to ``http``."""
        self.http = http
        self.timeout = timeout
        self.root = f"{base_url.rstrip('/')}/{version.strip('/')}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._proof = {"appsecret_proof": appsecret_proof(app_secret, token)} if app_secret else {}
        self._owns_http = owns_http
        #: The usage the last response reported.
        self.usage: Usage | None = None
        self.slow_until: dt.datetime | None = None

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    def check(self) -> None:
        """Raise RateLimited while the usage headers asked for a pause."""
        if self.slow_until is not None and self.slow_until > utcnow():
            percent = self.usage.percent if self.usage else 0
            raise RateLimited(f"Graph usage at {percent:.0f}%: slowing down before the limit", self.slow_until)

    @property
    def busy(self) -> bool:
        """The quota is nearly spent: finish what is in hand and stop asking."""
        return self.usage is not None and (self.usage.percent >= SLOW_AT or bool(self.usage.regain))

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, data: Mapping[str, Any] | None = None, *,
                   json_body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if json_body is not None:
            return await self.request("POST", path, json=dict(json_body))
        return await self.request("POST", path, data={k: str(v) for k, v in (data or {}).items()})

    async def pages(self, path: str, *, max_pages: int = MAX_PAGES,
                    **params: Any) -> AsyncIterator[list[dict[str, Any]]]:
        """The ``data`` of each page, following ``paging.next`` until it is absent (Graph's end of data)."""
        body = await self.get(path, **params)
        for _ in range(max_pages):
            yield [item for item in body.get("data") or [] if isinstance(item, dict)]
            following = (body.get("paging") or {}).get("next")
            if not following:
                return
            body = await self.follow(str(following))

    async def follow(self, url: str) -> dict[str, Any]:
        """A ``paging.next`` URL, sent to our own root whatever host it names (the token goes nowhere else)."""
        parsed = httpx.URL(url)
        match = _VERSIONED.search(parsed.path)
        params = dict(parsed.params)
        params.pop("access_token", None)
        return await self.request("GET", match.group(1) if match else parsed.path, params=params)

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if "params" in kwargs or method == "GET":
            kwargs["params"] = {**(kwargs.get("params") or {}), **self._proof}
        elif self._proof:
            kwargs["params"] = dict(self._proof)
        try:
            if self.timeout is not None:
                kwargs["timeout"] = self.timeout
            response = await self.http.request(method, self.root + path, headers=self._headers, **kwargs)
        except httpx.HTTPError as e:
            if isinstance(e, httpx.UnsupportedProtocol | httpx.InvalidURL):
                raise Permanent(f"{type(e).__name__}: {e}") from e
            raise Transient(f"{type(e).__name__}: {e}") from e
        self._observe(response)
        if not response.is_success:
            raise translate(response, self.usage)
        try:
            body = response.json()
        except ValueError:
            raise Transient(f"{path}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise Transient(f"{path}: expected a JSON object")
        return body

    def _observe(self, response: httpx.Response) -> None:
        usage = read_usage(response.headers)
        if usage is None:
            return
        self.usage = usage
        pause = slow_down(usage)
        if pause is not None:
            until = utcnow() + pause
            if self.slow_until is None or until > self.slow_until:
                self.slow_until = until
            log.info("Graph usage at %.0f%%: pausing polls until %s", usage.percent, self.slow_until.isoformat())
