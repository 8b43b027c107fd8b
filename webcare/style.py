"""House style: the signature appended to every reply, the platform's length limit counted with it,
banned phrases and required elements, per account with its department's as the default.

A draft that breaks a rule is refused (422, naming the rule) before anything is stored, so nothing
that breaks the house style can reach the outbox; :func:`check` tells the composer the same while typing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.mastodon import addressed, weighted_length
from webcare.access import Actor
from webcare.assist_models import HouseStyle
from webcare.db import Database
from webcare.errors import BadRequest, Conflict, RuleViolation
from webcare.models import Account, Conversation
from webcare.normalize import fold
from webcare.people import require_department

#: What each platform accepts in one reply, unless the account's settings or house style say otherwise.
PLATFORM_LIMITS: dict[str, int | None] = {"x": 280, "mastodon": 500, "facebook": 8000, "instagram": 2200,
                                          "email": None, "api": None}
VARIABLES = ("author", "agent_initials", "account")
_VARIABLE = re.compile(r"\{([a-z_]+)\}")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
X_URL_WEIGHT = 23
#: Name particles written in lower case in initials: Anna de Vries signs ^AdV.
_PARTICLES = frozenset({"de", "der", "den", "van", "het", "ten", "ter", "te", "'t", "von", "la", "le", "du",
                        "da", "di", "op", "in"})


@dataclass(frozen=True)
class Style:
    """The rules that apply to one account: its own where set, else its department's."""

    signature: str | None = None
    max_length: int | None = None
    banned_phrases: tuple[str, ...] = ()
    required: tuple[dict[str, Any], ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"signature": self.signature, "max_length": self.max_length,
                "banned_phrases": list(self.banned_phrases), "required": list(self.required),
                "sources": self.sources}


@dataclass(frozen=True)
class Draft:
    """A reply as it would go out, and what the house style says about it."""

    text: str
    length: int
    limit: int | None
    problems: list[dict[str, Any]]
    #: The signature as rendered for this reply, and whether it was added (not when the text ends with it).
    signature: str | None = None
    signature_added: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, "text": self.text, "length": self.length, "limit": self.limit,
                "problems": self.problems, "signature": self.signature, "signature_added": self.signature_added}


def style_json(s: HouseStyle | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"signature": s.signature, "max_length": s.max_length, "banned_phrases": list(s.banned_phrases),
            "required": list(s.required), "updated_at": s.updated_at.isoformat().replace("+00:00", "Z")}


def check_template(template: str, what: str) -> None:
    """400 when a template names a variable we do not know."""
    unknown = sorted({v for v in _VARIABLE.findall(template) if v not in VARIABLES})
    if unknown:
        raise BadRequest(f"{what} uses unknown variable {{{unknown[0]}}}; known are "
                         + ", ".join(f"{{{v}}}" for v in VARIABLES), code="unknown_variable")


def render(template: str, variables: Mapping[str, str]) -> str:
    """The template with its known variables filled in; other braces stay as written."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def initials(name: str) -> str:
    parts = [p for p in re.split(r"[\s.]+", name.strip()) if p]
    return "".join(p[0].lower() if p.lower() in _PARTICLES and i else p[0].upper() for i, p in enumerate(parts))


def variables(agent_name: str, conversation: Conversation | None, account: Account | None) -> dict[str, str]:
    values = {"agent_initials": initials(agent_name)}
    if conversation is not None:
        values["author"] = conversation.author_name or conversation.author_handle
    if account is not None:
        values["account"] = account.name
    return values


async def effective(session: AsyncSession, account: Account) -> Style:
    rows = list(await session.scalars(sa.select(HouseStyle).where(sa.or_(
        HouseStyle.account_id == account.id, HouseStyle.department_id == account.department_id))))
    own = next((r for r in rows if r.account_id == account.id), None)
    default = next((r for r in rows if r.department_id == account.department_id), None)
    sources: dict[str, str] = {}

    def pick(name: str) -> Any:
        for scope, row in (("account", own), ("department", default)):
            value = getattr(row, name) if row is not None else None
            if value is not None:
                sources[name] = scope
                return value
        return None

    limit = pick("max_length")
    if limit is None:
        limit = platform_limit(account)
        if limit is not None:
            sources["max_length"] = "platform"
    banned = [p for row in (default, own) if row is not None for p in row.banned_phrases]
    required: dict[str, dict[str, Any]] = {}
    for row in (default, own):  # an account's element replaces its department's of the same name
        for element in row.required if row is not None else ():
            required[element["name"]] = element
    return Style(signature=pick("signature"), max_length=limit, banned_phrases=tuple(dict.fromkeys(banned)),
                 required=tuple(required.values()), sources=sources)


def platform_limit(account: Account) -> int | None:
    configured = (account.settings or {}).get("reply_max_length")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    return PLATFORM_LIMITS.get(account.platform)


def platform_length(platform: str, text: str, author_handle: str | None) -> int:
    """The length the platform counts: X weighs URLs as 23 and wide characters as 2; Mastodon counts URLs
    as 23 and the @mention of the person, which its connector puts in front."""
    if platform == "mastodon":
        return weighted_length(addressed(text, author_handle) if author_handle else text)
    if platform == "x":
        return sum(X_URL_WEIGHT if part.startswith("http") else sum(_x_weight(ch) for ch in part)
                   for part in _split_urls(text))
    return len(text)


def _split_urls(text: str) -> list[str]:
    parts: list[str] = []
    last = 0
    for m in _URL.finditer(text):
        parts += [text[last:m.start()], m.group()]
        last = m.end()
    parts.append(text[last:])
    return parts


def _x_weight(ch: str) -> int:
    # twitter-text: these ranges weigh 1, everything else (CJK, emoji) 2.
    code = ord(ch)
    light = code <= 0x10FF or 0x2000 <= code <= 0x200D or 0x2010 <= code <= 0x201F or 0x2032 <= code <= 0x2037
    return 1 if light else 2


def signed(text: str, signature: str | None, platform: str) -> str:
    """The text with the signature appended, unless the person already ended with it."""
    body = text.rstrip()
    if not signature or _fold_plain(body).endswith(_fold_plain(signature)):
        return body
    return body + ("\n\n" if platform == "email" else " ") + signature


def compose(text: str, style: Style, values: Mapping[str, str], account: Account,
            author_handle: str | None) -> Draft:
    signature = render(style.signature, values).strip() if style.signature else None
    final = signed(text, signature, account.platform)
    problems: list[dict[str, Any]] = []
    folded = _fold_plain(final)
    for phrase in style.banned_phrases:
        if _contains(folded, _fold_plain(render(phrase, values))):
            problems.append({"rule": "banned_phrase", "phrase": phrase,
                             "message": f"the house style bans the phrase {phrase!r}"})
    for element in style.required:
        options = [render(p, values) for p in element.get("any_of", [])]
        if options and not any(_contains(folded, _fold_plain(o)) for o in options):
            problems.append({"rule": "missing_element", "element": element["name"],
                             "message": f"the house style requires {element['name']}: one of "
                                        + ", ".join(repr(o) for o in options)})
    length = platform_length(account.platform, final, author_handle)
    if style.max_length is not None and length > style.max_length:
        problems.append({"rule": "too_long", "length": length, "limit": style.max_length,
                         "message": f"the reply is {length} characters with its signature; "
                                    f"{account.name} allows {style.max_length}"})
    return Draft(final, length, style.max_length, problems, signature, final != text.rstrip())


async def check(session: AsyncSession, agent_name: str, conversation: Conversation, account: Account,
                text: str) -> Draft:
    style = await effective(session, account)
    return compose(text, style, variables(agent_name, conversation, account), account, conversation.author_handle)


async def prepare(session: AsyncSession, agent_name: str, conversation: Conversation, account: Account,
                  text: str) -> str:
    """The text as it goes out (signed); 422 naming the first broken rule when the house style refuses it."""
    draft = await check(session, agent_name, conversation, account, text)
    if draft.problems:
        first = draft.problems[0]
        raise RuleViolation(first["message"], code=first["rule"],
                            details={"rule": first["rule"], "problems": draft.problems, "text": draft.text})
    return draft.text


def _fold_plain(text: str) -> str:
    return " ".join(fold(unicodedata.normalize("NFKC", text)).split())


def _contains(haystack: str, needle: str) -> bool:
    if not needle:
        return False
    # Word boundaries where the phrase starts or ends with a word character: "helaas" is not in "helaasje".
    left = r"(?<!\w)" if needle[0].isalnum() else ""
    right = r"(?!\w)" if needle[-1].isalnum() else ""
    return re.search(left + re.escape(needle) + right, haystack) is not None


# Reading and setting


async def read_style(db: Database, *, account: Account | None = None, department_id: int | None = None
                     ) -> dict[str, Any]:
    """The style set on one account (with what applies to it) or one department."""
    async with db.read() as s:
        if account is not None:
            own = await s.scalar(sa.select(HouseStyle).where(HouseStyle.account_id == account.id))
            return {"account_id": account.id, "style": style_json(own), "effective": (await effective(s, account))
                    .as_json()}
        await require_department(s, department_id or 0)
        own = await s.scalar(sa.select(HouseStyle).where(HouseStyle.department_id == department_id))
        return {"department_id": department_id, "style": style_json(own)}


async def write_style(db: Database, actor: Actor, fields: dict[str, Any], *, account_id: int | None = None,
                      department_id: int | None = None) -> dict[str, Any]:
    """Replace the style of one account or department (coordinators and admins)."""
    actor.require("coordinator", "admin")
    for template in [fields.get("signature") or "", *fields.get("banned_phrases", []),
                     *(p for e in fields.get("required", []) for p in e["any_of"])]:
        check_template(template, "the house style")
    names = [e["name"] for e in fields.get("required", [])]
    if len(set(names)) != len(names):
        raise BadRequest("each required element needs a name of its own", code="invalid_body")
    scope = HouseStyle.account_id == account_id if account_id is not None else HouseStyle.department_id == department_id
    try:
        async with db.write() as tx:
            if department_id is not None:
                await require_department(tx.session, department_id)
            row = await tx.session.scalar(sa.select(HouseStyle).where(scope).with_for_update())
            if row is None:
                row = HouseStyle(account_id=account_id, department_id=department_id)
                tx.session.add(row)
            row.signature = fields.get("signature") or None
            row.max_length = fields.get("max_length")
            row.banned_phrases = list(fields.get("banned_phrases", []))
            row.required = [dict(e) for e in fields.get("required", [])]
            row.updated_by_id = actor.id
            row.updated_at = tx.now
            await tx.session.flush()
            tx.emit("house_style.updated", None, actor.id, account_id=account_id, department_id=department_id,
                    style=style_json(row))
            return {"account_id": account_id, "department_id": department_id, "style": style_json(row)}
    except IntegrityError:
        raise Conflict("the house style was being set by someone else at the same moment; try again",
                       code="busy") from None
