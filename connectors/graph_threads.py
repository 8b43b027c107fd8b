"""How Facebook and Instagram comments and messages become threads, and when they may be answered.

A post's comment tree becomes one conversation per commenter and top-level comment: the thread id
``comment:<top-level comment id>:<commenter id>`` groups a person's comment with their later replies
under it, while someone else answering in the same tree starts a conversation of their own. A reply
goes under the top-level comment (Facebook and Instagram flatten deeper replies there anyway).
Messenger and Instagram direct messages are threads per person (``messenger:<PSID>``,
``igdm:<IGSID>``): the id is whom a reply goes to. Those may be answered only within 24 hours of the
person's last message (PLATFORMS.md §2, "Messenger"); ``reply_window`` says so for a thread.
Instagram mentions (``mention:<media id>:<comment id>``) are answered through the mentions edge.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

MESSAGING_WINDOW = dt.timedelta(hours=24)
#: Fetches look this far behind their watermark again, for items Graph shows late; ``seen`` absorbs the repeat.
OVERLAP = dt.timedelta(minutes=5)
CONTEXT_LENGTH = 200


def comment_thread(root_id: str, author_id: str) -> str:
    return f"comment:{root_id}:{author_id}"


def messaging_thread(kind: str, person_id: str) -> str:
    return f"{kind}:{person_id}"


def parse_thread(thread_id: str | None) -> tuple[str, list[str]]:
    """The kind of a thread id and its parts: ``("comment", [root, author])``, ``("messenger", [psid])``, …"""
    if not thread_id or ":" not in thread_id:
        return "", []
    kind, _, rest = thread_id.partition(":")
    return kind, rest.split(":")


def reply_window(thread_id: str | None) -> dt.timedelta | None:
    """How long after the person's last message a reply in this thread is allowed; None: no limit."""
    kind, _ = parse_thread(thread_id)
    return MESSAGING_WINDOW if kind in ("messenger", "igdm") else None


def with_context(text: str, context: str | None, label: str = "on the post") -> str:
    """The comment's text with what it comments on below it, so a person sees what it is about."""
    if not context:
        return text
    flat = " ".join(context.split())
    if len(flat) > CONTEXT_LENGTH:
        flat = flat[: CONTEXT_LENGTH - 1] + "…"
    return f"{text}\n\n— {label}: “{flat}”"


def prune_seen(seen: dict[str, Any], since: int) -> dict[str, int]:
    """The ids still inside the overlap window (their unix times) of a ``seen`` map."""
    floor = since - int(OVERLAP.total_seconds())
    return {k: int(v) for k, v in seen.items() if isinstance(v, int | float) and v >= floor}
