"""Small things every connector needs: rate-limit state, timestamps, and comparing reply texts."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

_MENTION = re.compile(r"(?<![\w@])@[\w.-]+(?:@[\w.-]+)?")
_URL = re.compile(r"https?://\S+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RateLimitStatus:
    """What the platform said about our quota in its last response's headers."""

    limit: int | None
    remaining: int | None
    reset_at: dt.datetime | None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_timestamp(value: str | None) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime (UTC when it carries no zone); now when missing."""
    if not value:
        return utcnow()
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def same_text(posted: str, sent: str) -> bool:
    """Whether a text the platform shows is the one we sent.

    Platforms rewrite what they store: X escapes ``&`` and wraps links in t.co, Mastodon renders
    HTML and shows a remote ``@user@host`` as ``@user``. Those parts are left out of the comparison.
    """
    return _comparable(posted) == _comparable(sent)


def _comparable(text: str) -> str:
    text = _URL.sub("<url>", html.unescape(text))
    text = _MENTION.sub("", text)
    return _SPACE.sub(" ", text).strip().casefold()
