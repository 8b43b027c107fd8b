"""Email messages in and out: raw RFC 5322 bytes as an inbound message, and our reply with its threading
headers (PLATFORMS.md §5).

The external id is the Message-ID (``sha256:<hex>`` of Date, From, Subject and body when there is none,
or of the id itself when it is longer than a column holds). A message answers its In-Reply-To (else
the last of its References) and belongs to the thread of the first of its References, so a thread is
one conversation whatever order its messages arrive in.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from connectors.base import Author, InboundMessage
from connectors.common import utcnow
from connectors.plaintext import html_to_text

MAX_ID = 200
_IDS = re.compile(r"<[^<>\s]+>")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|antw|sv)(\[\d+\])?\s*:\s*", re.IGNORECASE)


def message_ids(header: Any) -> list[str]:
    return _IDS.findall(str(header or ""))


def external_id(message_id: str) -> str:
    """A Message-ID as stored: as it is, or hashed when longer than the column."""
    return message_id if len(message_id) <= MAX_ID else "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def parse(raw: bytes) -> tuple[EmailMessage, InboundMessage]:
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    body = _body(msg)
    subject = str(msg.get("Subject") or "").strip()
    own = message_ids(msg.get("Message-ID"))
    if own:
        mid = external_id(own[0])
    else:
        digest = hashlib.sha256("|".join([str(msg.get("Date") or ""), str(msg.get("From") or ""), subject,
                                          body]).encode()).hexdigest()
        mid = "sha256:" + digest
    parents = message_ids(msg.get("In-Reply-To"))
    references = message_ids(msg.get("References"))
    in_reply_to = external_id(parents[0]) if parents else (external_id(references[-1]) if references else None)
    thread = external_id(references[0]) if references else (in_reply_to or mid)
    name, address = email.utils.parseaddr(str(msg.get("From") or ""))
    author = Author(id=address.lower() or "unknown", handle=address or "unknown", name=name or address or "unknown")
    text = body if in_reply_to or not subject else f"{subject}\n\n{body}"
    return msg, InboundMessage(external_id=mid, author=author, text=text.strip() or subject or "(no text)",
                               created_at=_date(msg), in_reply_to=in_reply_to, thread_id=thread, kind="email",
                               raw={"subject": subject, "message_id": own[0] if own else None})


def _date(msg: EmailMessage) -> Any:
    try:
        when = email.utils.parsedate_to_datetime(str(msg.get("Date")))
    except (TypeError, ValueError):
        return utcnow()
    return when if when.tzinfo else when.replace(tzinfo=utcnow().tzinfo)


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    text = str(content)
    return html_to_text(text) if part.get_content_type() == "text/html" else text.replace("\r\n", "\n")


def reply_message(parent: EmailMessage, text: str, *, message_id: str, sender: str,
                  sender_name: str | None = None) -> EmailMessage:
    """Our answer to ``parent``: to its Reply-To (else From), ``Re:`` its subject, In-Reply-To its Message-ID
    and References its References plus its Message-ID."""
    out = EmailMessage()
    recipient = str(parent.get("Reply-To") or parent.get("From") or "")
    subject = str(parent.get("Subject") or "").strip()
    out["From"] = email.utils.formataddr((sender_name or "", sender))
    out["To"] = recipient
    out["Subject"] = subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".strip()
    out["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    out["Message-ID"] = message_id
    parent_ids = message_ids(parent.get("Message-ID"))
    if parent_ids:
        out["In-Reply-To"] = parent_ids[0]
        out["References"] = " ".join([*message_ids(parent.get("References")), parent_ids[0]])
    out.set_content(text)
    return out


def recipients(message: EmailMessage) -> list[str]:
    return [address for _, address in email.utils.getaddresses([str(message.get("To") or "")]) if address]
