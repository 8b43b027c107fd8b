"""Email as a channel: a mailbox read over IMAP, replies sent over SMTP (stdlib clients, in worker threads).

Inbound: the cursor is ``{"uidvalidity": V, "last_uid": N}``; each fetch takes the next ``page_size``
messages with ``UID SEARCH UID N+1:*`` and ``BODY.PEEK[]`` (which leaves ``\\Seen`` alone). When the
mailbox's UIDVALIDITY changes its UIDs mean nothing any more: the whole mailbox is read again and the
Message-ID, our external id, lets ingest drop what it already has. ``None`` starts from now on.

Outbound, SMTP has no idempotency, so the Sent folder is the record. Our Message-ID is derived from
the reply's idempotency key, which the outbox committed before any attempt. A copy is APPENDed to
Sent flagged ``$WebcareOutbox`` before sending, ``$WebcareTransmitting`` is set just before the body
goes to the server, ``$WebcareSent`` once the server accepted it. ``find_sent`` reads those flags: a
copy that was transmitting counts as sent (a reply is never sent twice; a receiver would also collapse
the same Message-ID), one that never got that far is sent again, reusing the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Mapping
from typing import Any

from connectors import email_smtp
from connectors.base import AuthExpired, Capabilities, ConnectorError, OutboundReply, Page, Permanent, Transient
from connectors.email_message import parse, recipients, reply_message

TLS_MODES = ("none", "starttls", "ssl")
OUTBOX, TRANSMITTING, SENT = "$WebcareOutbox", "$WebcareTransmitting", "$WebcareSent"
_UID = re.compile(rb"UID (\d+)")
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


def check_email_settings(settings: Mapping[str, Any]) -> None:
    for key in ("imap_host", "smtp_host", "address"):
        if not isinstance(settings.get(key), str) or not settings[key]:
            raise ValueError(f"an email account needs settings.{key}")
    for key in ("imap_port", "smtp_port"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536):
            raise ValueError(f"settings.{key} must be a port number")
    if settings.get("tls", "ssl") not in TLS_MODES:
        raise ValueError(f"settings.tls must be one of {', '.join(TLS_MODES)}")
    if "@" not in str(settings["address"]):
        raise ValueError("settings.address must be an email address")


class _Unmarked(Exception):
    """Recording ``$WebcareTransmitting`` failed: the body was not sent."""


class EmailConnector:
    platform = "email"
    capabilities = Capabilities(reply_max_length=None)

    def __init__(self, *, imap_host: str, imap_port: int, smtp: email_smtp.SmtpServer, username: str, password: str,
                 address: str, tls: str = "ssl", mailbox: str = "INBOX", sent_folder: str = "Sent",
                 from_name: str | None = None, page_size: int = 50, timeout: float = 30.0) -> None:
        self.imap_host, self.imap_port, self.tls = imap_host, imap_port, tls
        self.smtp = smtp
        self.username, self.password = username, password
        self.address = address
        self.mailbox, self.sent_folder = mailbox, sent_folder
        self.from_name = from_name
        self.page_size = page_size
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], credentials: Mapping[str, str], *,
                      timeout: float = 30.0) -> EmailConnector:
        check_email_settings(settings)
        if not credentials.get("username") or not credentials.get("password"):
            raise AuthExpired("the email credentials lack username or password")
        tls = str(settings.get("tls") or "ssl")
        smtp = email_smtp.SmtpServer(settings["smtp_host"], int(settings.get("smtp_port") or
                                                                 (465 if tls == "ssl" else 587)),
                                     tls, credentials["username"], credentials["password"], timeout)
        return cls(imap_host=settings["imap_host"], imap_port=int(settings.get("imap_port") or
                                                                  (993 if tls == "ssl" else 143)),
                   smtp=smtp, username=credentials["username"], password=credentials["password"],
                   address=settings["address"], tls=tls, mailbox=str(settings.get("mailbox") or "INBOX"),
                   sent_folder=str(settings.get("sent_folder") or "Sent"), from_name=settings.get("from_name"),
                   page_size=int(settings.get("page_size") or 50), timeout=timeout)

    async def aclose(self) -> None:
        return None

    # -- inbound ---------------------------------------------------------------------------------

    async def fetch(self, cursor: dict[str, Any] | None) -> Page:
        return await self._run(self._fetch, cursor)

    def _fetch(self, cursor: dict[str, Any] | None) -> Page:
        with self._session() as imap:
            uidvalidity, uidnext = self._select(imap, self.mailbox)
            if cursor is None:
                return Page([], {"uidvalidity": uidvalidity, "last_uid": uidnext - 1})
            last = int(cursor.get("last_uid") or 0)
            if cursor.get("uidvalidity") != uidvalidity:
                last = 0  # new UIDs: read everything again, Message-IDs drop what we have
            uids = sorted(u for u in _search(imap, f"UID {last + 1}:*") if u > last)
            batch = uids[: self.page_size]
            messages = []
            if batch:
                for raw in _bodies(_uid(imap, "FETCH", ",".join(map(str, batch)), "(UID BODY.PEEK[])")):
                    messages.append(parse(raw)[1])
            new_last = batch[-1] if batch else last
            return Page(messages, {"uidvalidity": uidvalidity, "last_uid": new_last}, has_more=len(uids) > len(batch))

    # -- outbound --------------------------------------------------------------------------------

    def message_id(self, reply: OutboundReply) -> str:
        return f"<{reply.idempotency_key}@{self.address.rsplit('@', 1)[1]}>"

    async def send_reply(self, reply: OutboundReply) -> str:
        return await self._run(self._send, reply)

    def _send(self, reply: OutboundReply) -> str:
        if not reply.in_reply_to or reply.in_reply_to.startswith("sha256:"):
            raise Permanent("the email being answered has no Message-ID we can find it by")
        message_id = self.message_id(reply)
        with self._session() as imap:
            self._select(imap, self.mailbox, readonly=True)
            found = _search(imap, f"HEADER Message-ID {_quoted(reply.in_reply_to)}")
            if not found:
                raise Permanent(f"the email being answered ({reply.in_reply_to}) is no longer in {self.mailbox}")
            parent = parse(_bodies(_uid(imap, "FETCH", str(found[-1]), "(UID BODY.PEEK[HEADER])"))[0])[0]
            out = reply_message(parent, reply.text, message_id=message_id, sender=self.address,
                                sender_name=self.from_name)
            data = out.as_bytes(policy=out.policy.clone(linesep="\r\n"))
            uid = self._sent_copy(imap, message_id, data)

            def transmitting() -> None:
                try:
                    _uid(imap, "STORE", str(uid), "+FLAGS", f"({TRANSMITTING})")
                except (imaplib.IMAP4.error, OSError, Transient) as e:
                    raise _Unmarked(str(e)) from e

            try:
                email_smtp.send(self.smtp, self.address, recipients(out), data, transmitting)
            except _Unmarked as e:
                # The body never left, but the flag may have been stored before the IMAP answer was lost.
                self._unmark(message_id)
                raise Transient(f"IMAP failed before sending: {e}") from e
            except email_smtp.NotSent as e:
                _uid(imap, "STORE", str(uid), "-FLAGS", f"({TRANSMITTING})")
                if e.auth:
                    raise AuthExpired(str(e)) from e
                raise (Permanent(str(e)) if e.permanent else Transient(str(e))) from e
            except email_smtp.Unknown as e:
                raise Transient(str(e)) from e
            try:
                imap.uid("STORE", str(uid), "+FLAGS", f"({SENT})")
            except (imaplib.IMAP4.error, OSError):
                pass  # $WebcareTransmitting already says it may have gone out: it will not go again
        return message_id

    def _sent_copy(self, imap: imaplib.IMAP4, message_id: str, data: bytes) -> int:
        """The UID of our copy in Sent: the one an earlier attempt appended, else a new one."""
        typ, _ = imap.create(self.sent_folder)  # NO when it exists already: fine
        self._select(imap, self.sent_folder)
        existing = _search(imap, f"HEADER Message-ID {_quoted(message_id)}")
        if existing:
            return existing[-1]
        typ, answer = imap.append(self.sent_folder, f"(\\Seen {OUTBOX})", None, data)
        _ok((typ, answer), "APPEND")
        match = _APPENDUID.search(b" ".join(a for a in answer if isinstance(a, bytes)))
        if match:
            return int(match.group(1))
        return _search(imap, f"HEADER Message-ID {_quoted(message_id)}")[-1]

    def _unmark(self, message_id: str) -> None:
        try:
            with self._session() as imap:
                self._select(imap, self.sent_folder)
                for uid in _search(imap, f"HEADER Message-ID {_quoted(message_id)}"):
                    _uid(imap, "STORE", str(uid), "-FLAGS", f"({TRANSMITTING})")
        except (imaplib.IMAP4.error, OSError, ConnectorError) as e:
            raise Permanent(f"could not record that {message_id} was not sent ({e}); its copy in "
                            f"{self.sent_folder} is flagged {TRANSMITTING}: check it before sending again") from e

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        imap = self._imap()
        try:
            yield imap
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                with contextlib.suppress(OSError):
                    imap.shutdown()

    async def find_sent(self, reply: OutboundReply) -> str | None:
        return await self._run(self._find_sent, reply)

    def _find_sent(self, reply: OutboundReply) -> str | None:
        message_id = self.message_id(reply)
        with self._session() as imap:
            if imap.select(_mailbox(self.sent_folder), readonly=True)[0] != "OK":
                return None
            for uid in _search(imap, f"HEADER Message-ID {_quoted(message_id)}"):
                flags = _flags(_uid(imap, "FETCH", str(uid), "(UID FLAGS)"), uid)
                if SENT.encode() in flags or TRANSMITTING.encode() in flags:
                    return message_id
        return None

    # -- the boundary ----------------------------------------------------------------------------

    async def _run(self, call: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(call, *args)
        except ConnectorError:
            raise
        except imaplib.IMAP4.abort as e:
            raise Transient(f"IMAP connection lost: {e}") from e
        except imaplib.IMAP4.error as e:
            raise Transient(f"IMAP: {e}") from e
        except (OSError, EOFError) as e:
            raise Transient(f"{type(e).__name__}: {e}") from e

    def _imap(self) -> imaplib.IMAP4:
        try:
            if self.tls == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.imap_host, self.imap_port, timeout=self.timeout,
                                                        ssl_context=ssl.create_default_context())
            else:
                imap = imaplib.IMAP4(self.imap_host, self.imap_port, timeout=self.timeout)
                if self.tls == "starttls":
                    imap.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.error) as e:
            raise Transient(f"IMAP connect: {type(e).__name__}: {e}") from e
        try:
            imap.login(self.username, self.password)
        except (imaplib.IMAP4.error, OSError) as e:
            with contextlib.suppress(OSError):
                imap.shutdown()
            if isinstance(e, imaplib.IMAP4.abort | OSError):
                raise Transient(f"IMAP connection lost at login: {e}") from e
            raise AuthExpired(f"IMAP login refused: {e}") from e
        return imap

    def _select(self, imap: imaplib.IMAP4, mailbox: str, readonly: bool = False) -> tuple[int, int]:
        _ok(imap.select(_mailbox(mailbox), readonly=readonly), f"SELECT {mailbox}")
        uidvalidity = int(imap.response("UIDVALIDITY")[1][0] or 0)
        uidnext_raw = imap.response("UIDNEXT")[1]
        if uidnext_raw and uidnext_raw[0]:
            return uidvalidity, int(uidnext_raw[0])
        uids = _search(imap, "UID 1:*")
        return uidvalidity, (max(uids) + 1 if uids else 1)


def _ok(result: tuple[str, Any], what: str) -> None:
    typ, data = result
    if typ != "OK":
        raise Transient(f"IMAP {what}: {typ} {data!r}")


def _uid(imap: imaplib.IMAP4, command: str, *args: str) -> list[Any]:
    typ, data = imap.uid(command, *args)
    if typ != "OK":
        raise Transient(f"IMAP UID {command}: {typ} {data!r}")
    return list(data)


def _search(imap: imaplib.IMAP4, criteria: str) -> list[int]:
    return [int(u) for part in _uid(imap, "SEARCH", criteria) if part for u in part.split()]


def _flags(data: list[Any], uid: int) -> bytes:
    """The FLAGS of ``uid`` alone: the server also reports other sessions' flag changes in the same answer."""
    for item in data:
        line = item if isinstance(item, bytes) else item[0] if isinstance(item, tuple) else b""
        match = _UID.search(line)
        if match and int(match.group(1)) == uid:
            return line
    return b""


def _bodies(data: list[Any]) -> list[bytes]:
    return [item[1] for item in data if isinstance(item, tuple) and _UID.search(item[0])]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox(name: str) -> str:
    return _quoted(name) if " " in name else name
