"""Sending one message over SMTP, telling a known failure from an unknown outcome.

Everything up to the server's ``354`` after DATA can fail only before the message exists on the other
side: such failures are *known* (``NotSent``). Once the body is on its way, a dropped connection or a
timeout leaves the outcome open: ``Unknown`` is raised, and ``before_body`` has by then run so the
caller could record that the message may have gone out.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass


class NotSent(Exception):
    def __init__(self, message: str, *, permanent: bool = False, auth: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.auth = auth


class Unknown(Exception):
    pass


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


def _stuffed(data: bytes) -> bytes:
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines) + b"\r\n.\r\n"


def _check(code: int, reply: bytes, stage: str) -> None:
    if code >= 400:
        text = reply.decode("utf-8", "replace")
        raise NotSent(f"SMTP {stage}: {code} {text}", permanent=code >= 500)


def send(server: SmtpServer, sender: str, recipients: list[str], data: bytes,
         before_body: Callable[[], None]) -> None:
    """Deliver ``data`` to ``recipients``; raises NotSent or Unknown."""
    try:
        if server.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
    except (OSError, smtplib.SMTPException) as e:
        raise NotSent(f"SMTP connect: {type(e).__name__}: {e}") from e
    try:
        try:
            client.ehlo_or_helo_if_needed()
            if server.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if server.username and client.has_extn("auth"):  # a relay that offers no AUTH trusts its network
                client.login(server.username, server.password or "")
            _check(*client.mail(sender), "MAIL FROM")
            for recipient in recipients:
                _check(*client.rcpt(recipient), f"RCPT TO {recipient}")
            _check(*client.docmd("DATA"), "DATA")
        except smtplib.SMTPAuthenticationError as e:
            raise NotSent(f"SMTP login refused: {e.smtp_code}", permanent=True, auth=True) from e
        except smtplib.SMTPResponseException as e:
            raise NotSent(f"SMTP: {e.smtp_code} {e.smtp_error!r}", permanent=e.smtp_code >= 500) from e
        except (OSError, smtplib.SMTPException) as e:
            raise NotSent(f"SMTP: {type(e).__name__}: {e}") from e
        try:
            before_body()
        except BaseException:
            client.close()  # mid-DATA: without the final dot the server keeps nothing
            raise
        try:
            client.send(_stuffed(data))
            code, reply = client.getreply()
        except (OSError, smtplib.SMTPException) as e:
            raise Unknown(f"SMTP connection lost after the message was sent: {type(e).__name__}") from e
        _check(code, reply, "end of DATA")
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
