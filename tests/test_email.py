"""Email against a real dovecot (IMAP) and a real aiosmtpd sink: threading by headers over 200 messages, a
reply that arrives once with its threading headers, a UIDVALIDITY change, and faults on both sides."""

from __future__ import annotations

import email.utils
import random
import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import pytest

from tests.mailservers import Dovecot, SmtpServer, TcpProxy
from tests.workrig import Rig, deliver_until, department, inbound, make_due, poll_until, reply_state, reply_to

pytestmark = pytest.mark.anyio


async def email_account(rig: Rig, dovecot: Dovecot, smtp: SmtpServer, user: str, password: str, *,
                        imap_port: int | None = None, **settings: Any) -> dict[str, Any]:
    r = await rig.admin.post("/api/accounts", json={
        "platform": "email", "handle": user, "name": "Klantenservice", "department_id": await department(rig.admin),
        "settings": {"imap_host": "127.0.0.1", "imap_port": imap_port or dovecot.port, "smtp_host": "127.0.0.1",
                     "smtp_port": smtp.port, "address": user, "tls": "none", "poll_interval": 1, "timeout": 3,
                     **settings},
        "credentials": {"username": user, "password": password}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def mail(n: int, sender: str, to: str, subject: str, parent: EmailMessage | None = None) -> EmailMessage:
    m = EmailMessage()
    m["From"] = email.utils.formataddr((f"Burger {sender}", f"{sender}@public.example"))
    m["To"] = to
    m["Subject"] = f"Re: {subject}" if parent is not None else subject
    m["Date"] = email.utils.formatdate(1_790_000_000 + n * 60, usegmt=True)
    m["Message-ID"] = f"<mail-{n}-{random.getrandbits(32)}@public.example>"
    if parent is not None:
        m["In-Reply-To"] = parent["Message-ID"]
        m["References"] = " ".join([*str(parent.get("References") or "").split(), parent["Message-ID"]])
    m.set_content(f"Bericht {n}: {subject}")
    return m


def append(dovecot: Dovecot, user: str, password: str, messages: list[EmailMessage], mailbox: str = "INBOX") -> None:
    imap = dovecot.imap(user, password)
    try:
        imap.create(mailbox)
        for m in messages:
            typ, _ = imap.append(mailbox, None, None, m.as_bytes())
            assert typ == "OK"
    finally:
        imap.logout()


async def test_two_hundred_emails_thread_by_their_headers(rig: Rig, dovecot: Dovecot, smtp_server: SmtpServer) -> None:
    user, password = dovecot.add_user()
    account = await email_account(rig, dovecot, smtp_server, user, password, page_size=50)
    await rig.poller.poll_due()  # from now on
    rng = random.Random(7)
    thread_of: dict[str, int] = {}
    messages: list[EmailMessage] = []
    for t in range(40):
        thread = [mail(len(messages), f"p{t}", user, f"Vraag {t} over de afvalpas")]
        for _ in range(4):
            thread.append(mail(len(messages) + len(thread), f"p{t}", user, f"Vraag {t}", rng.choice(thread)))
        for m in thread:
            thread_of[m["Message-ID"]] = t
        messages += thread
    rng.shuffle(messages)  # replies often arrive before what they answer
    append(dovecot, user, password, messages)
    await make_due(rig.harness.db, account["id"])
    stored = await poll_until(rig, account["id"], 200)
    assert sorted(m.external_id for m in stored) == sorted(thread_of)
    conversations: dict[int, set[int]] = {}
    for m in stored:
        conversations.setdefault(thread_of[m.external_id], set()).add(m.conversation_id)
    assert all(len(c) == 1 for c in conversations.values()), "each thread is one conversation"
    assert len({next(iter(c)) for c in conversations.values()}) == 40, "and each conversation one thread"


async def test_a_reply_arrives_once_with_threading_headers_and_the_answer_to_it_follows(
        rig: Rig, dovecot: Dovecot, smtp_server: SmtpServer) -> None:
    user, password = dovecot.add_user()
    account = await email_account(rig, dovecot, smtp_server, user, password, from_name="Gemeente")
    await rig.poller.poll_due()
    first = mail(1, "anna", user, "Afvalpas kwijt")
    second = mail(2, "anna", user, "Afvalpas kwijt", first)
    append(dovecot, user, password, [first, second])
    await make_due(rig.harness.db, account["id"])
    [_, latest] = sorted(await poll_until(rig, account["id"], 2), key=lambda m: m.created_at)
    reply_id = await reply_to(rig, latest.conversation_id, "U kunt een nieuwe pas aanvragen via de website.")
    await deliver_until(rig, [reply_id])
    [raw] = smtp_server.sink.messages
    sent = BytesParser(policy=default).parsebytes(raw)
    reply = await reply_state(rig.harness.db, reply_id)
    assert sent["Message-ID"] == reply.external_id
    assert sent["In-Reply-To"] == second["Message-ID"]
    assert sent["References"].split() == [first["Message-ID"], second["Message-ID"]]
    assert sent["Subject"] == "Re: Afvalpas kwijt" and "anna@public.example" in sent["To"]
    assert "nieuwe pas" in sent.get_content()
    imap = dovecot.imap(user, password)
    imap.select("Sent", readonly=True)
    _, found = imap.uid("SEARCH", "HEADER", "Message-ID", f'"{reply.external_id}"')
    assert found[0].split(), "a copy in Sent"
    _, flags = imap.uid("FETCH", found[0].split()[0].decode(), "(FLAGS)")
    assert b"$WebcareSent" in flags[0]
    imap.logout()

    # Anna answers our reply: it continues the same conversation.
    answer = mail(3, "anna", user, "Afvalpas kwijt", sent)  # type: ignore[arg-type]
    append(dovecot, user, password, [answer])
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 3)
    assert {m.conversation_id for m in messages} == {latest.conversation_id}
    detail = (await rig.agent.get(f"/api/conversations/{latest.conversation_id}")).json()
    assert detail["status"] == "open"


async def test_a_uidvalidity_change_loses_and_doubles_nothing(rig: Rig, dovecot: Dovecot,
                                                             smtp_server: SmtpServer) -> None:
    user, password = dovecot.add_user()
    account = await email_account(rig, dovecot, smtp_server, user, password, mailbox="Support", page_size=20)
    append(dovecot, user, password, [], mailbox="Support")
    await rig.poller.poll_due()
    old = [mail(i, f"p{i}", user, f"Melding {i}") for i in range(30)]
    append(dovecot, user, password, old, mailbox="Support")
    await make_due(rig.harness.db, account["id"])
    await poll_until(rig, account["id"], 30)
    async with rig.harness.db.read() as s:
        from webcare.models import Account
        before = (await s.get(Account, account["id"])).cursor  # type: ignore[union-attr]
    # The mailbox is rebuilt (as after a server migration): new UIDVALIDITY, the same mails, and new ones.
    imap = dovecot.imap(user, password)
    assert imap.delete("Support")[0] == "OK"
    imap.logout()
    new = [mail(100 + i, f"q{i}", user, f"Nieuw {i}") for i in range(10)]
    mixed = old + new
    random.Random(3).shuffle(mixed)
    append(dovecot, user, password, mixed, mailbox="Support")
    await make_due(rig.harness.db, account["id"])

    async def settled() -> list[Any]:
        return await poll_until(rig, account["id"], 40)

    stored = await settled()
    async with rig.harness.db.read() as s:
        after = (await s.get(Account, account["id"])).cursor  # type: ignore[union-attr]
    assert after["uidvalidity"] != before["uidvalidity"]
    assert sorted(m.external_id for m in stored) == sorted(m["Message-ID"] for m in old + new)


async def test_faults_lose_and_double_nothing(rig: Rig, dovecot: Dovecot, smtp_server: SmtpServer) -> None:
    """IMAP connections refused and cut mid-answer while reading, SMTP temporary failures and a connection
    lost after the server took the message while sending: every mail in once, every reply out once."""
    user, password = dovecot.add_user()
    proxy = TcpProxy(dovecot.port)
    await proxy.start()
    try:
        account = await email_account(rig, dovecot, smtp_server, user, password, imap_port=proxy.port, page_size=25)
        await rig.poller.poll_due()
        messages = [mail(i, f"p{i % 17}", user, f"Melding {i}") for i in range(200)]
        append(dovecot, user, password, messages)
        proxy.refuse = 2
        proxy.cuts = [400, 9000, 30000]
        await make_due(rig.harness.db, account["id"])
        stored = await poll_until(rig, account["id"], 200, within=120)
        assert sorted(m.external_id for m in stored) == sorted(m["Message-ID"] for m in messages)
        assert proxy.connections > 4

        conversations = sorted({m.conversation_id for m in stored})[:30]
        smtp_server.sink.faults[:] = ["tempfail", "drop", "tempfail", "drop", "drop", "tempfail"]
        proxy.refuse = 1
        replies = [await reply_to(rig, c, f"Dank voor uw melding {c}.") for c in conversations]
        await deliver_until(rig, replies, within=120)
        got = [BytesParser(policy=default).parsebytes(raw) for raw in smtp_server.sink.messages]
        ids = [str(m["Message-ID"]) for m in got]
        assert len(ids) == len(set(ids)) == len(replies), "every reply at the sink exactly once"
        assert {(await reply_state(rig.harness.db, r)).external_id for r in replies} == set(ids)
        assert all(re.fullmatch(r"<[0-9a-f]{32}@example\.test>", i) for i in ids)
    finally:
        await proxy.stop()


async def test_inbound_messages_are_not_read_twice_after_a_restart(rig: Rig, dovecot: Dovecot,
                                                                  smtp_server: SmtpServer) -> None:
    user, password = dovecot.add_user()
    account = await email_account(rig, dovecot, smtp_server, user, password)
    await rig.poller.poll_due()
    append(dovecot, user, password, [mail(i, "x", user, "Hallo") for i in range(3)])
    await make_due(rig.harness.db, account["id"])
    await poll_until(rig, account["id"], 3)
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    assert len(await inbound(rig.harness.db, account["id"])) == 3
