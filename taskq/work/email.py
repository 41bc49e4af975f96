"""email_sending: builds a message and delivers it over SMTP, or drops it in the outbox."""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from taskq.errors import PermanentError, TransientError
from taskq.work import WorkContext
from taskq.work.atomic import atomic_write

if TYPE_CHECKING:
    from taskq.config import SmtpSettings

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to deliver, parsed from smtp.url."""

    host: str
    port: int
    implicit_tls: bool
    require_starttls: bool
    username: str | None
    password: str | None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def send(ctx: WorkContext, *, to: list[str], subject: str = "taskq message", body: str = "",
         cc: list[str] | None = None, sender: str | None = None) -> dict[str, Any]:
    """Deliver one message; TransientError when a later attempt may work, else PermanentError."""
    message = build_message(sender or ctx.smtp.sender, to, cc or [], subject, body)
    if ctx.smtp.url is None:
        path = write_outbox(ctx.outbox, message)
        return {"delivered": "outbox", "path": str(path), "message_id": message["Message-ID"]}
    return deliver(ctx.smtp, message)


def build_message(sender: str, to: list[str], cc: list[str], subject: str,
                  body: str) -> EmailMessage:
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Subject"] = subject
    except ValueError as exc:  # e.g. a line break in a header: never send a forged header
        raise PermanentError(f"cannot build the message: {exc}") from exc
    message["Date"] = formatdate(localtime=True)
    # An explicit domain: make_msgid's default looks up the FQDN, which can hang on DNS.
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    message.set_content(body)
    return message


def _domain(address: str) -> str:
    found = getaddresses([address])
    domain = found[0][1].rpartition("@")[2] if found else ""
    return domain or "localhost"


def write_outbox(outbox: Path, message: EmailMessage) -> Path:
    """Write `message` as an .eml file in `outbox`, atomically; return its path."""
    path = outbox / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as stream:
            stream.write(bytes(message))
    except PermissionError as exc:
        raise PermanentError(f"cannot write to the outbox {outbox}: {exc.strerror}") from exc
    except OSError as exc:
        raise TransientError(f"cannot write to the outbox {outbox}: {exc.strerror}") from exc
    return path


def parse_url(url: str) -> SmtpTarget:
    """smtp://[user:pass@]host[:port][?starttls=require] or smtps://...; PermanentError if not."""
    shown = _shown(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PermanentError(f"invalid SMTP URL {shown}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise PermanentError(f"invalid SMTP URL {shown}: expected smtp://host:port "
                             "or smtps://host:port")
    query = parse_qs(parts.query)
    if set(query) - {"starttls"} or query.get("starttls", ["require"]) != ["require"]:
        raise PermanentError(f"invalid SMTP URL {shown}: the only option is ?starttls=require")
    return SmtpTarget(
        host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme],
        implicit_tls=parts.scheme == "smtps", require_starttls="starttls" in query,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _shown(url: str) -> str:
    """The URL without its user and password, even when they are not URL-encoded."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + ("***@" + rest.rpartition("@")[2] if "@" in rest else rest)


def deliver(settings: SmtpSettings, message: EmailMessage) -> dict[str, Any]:
    """Send `message` to the server of settings.url, classifying every failure."""
    target = parse_url(settings.url or "")
    recipients = [a for _, a in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))]
    sender = getaddresses([message["From"]])[0][1]
    try:
        with _connect(target, settings.timeout) as conn:
            _secure(conn, target)
            if target.username:
                conn.login(target.username, target.password or "")
            refused = conn.send_message(message, from_addr=sender, to_addrs=recipients)
    except OSError as exc:  # smtplib.SMTPException is an OSError too
        raise classify(exc, target.where, settings.timeout) from exc
    return {
        "delivered": "smtp",
        "accepted": [r for r in recipients if r not in refused],
        "refused": {r: _reply(code, text) for r, (code, text) in refused.items()},
        "message_id": message["Message-ID"],
    }


def _connect(target: SmtpTarget, timeout: float) -> smtplib.SMTP:
    if target.implicit_tls:
        return smtplib.SMTP_SSL(target.host, target.port, timeout=timeout,
                                context=ssl.create_default_context())
    return smtplib.SMTP(target.host, target.port, timeout=timeout)


def _secure(conn: smtplib.SMTP, target: SmtpTarget) -> None:
    """STARTTLS when the server offers it; when it does not, fail only if the URL requires it."""
    if target.implicit_tls:
        return
    conn.ehlo_or_helo_if_needed()
    if conn.has_extn("starttls"):
        conn.starttls(context=ssl.create_default_context())
        conn.ehlo()
    elif target.require_starttls:
        raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS, "
                                            "which the URL requires")


def _decode(text: bytes | str) -> str:
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).strip()


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {_decode(text)}"


def classify(exc: OSError, where: str, timeout: float) -> Exception:
    """TransientError when the same delivery may work later, PermanentError when it cannot."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refused(exc.recipients, where)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentError(f"SMTP {exc.smtp_code} from {where}: {_decode(exc.smtp_error)} "
                              "(login refused; check the user and password in smtp.url)")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
        return kind(f"SMTP {exc.smtp_code} from {where}: {_decode(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # smtplib reports a timeout this way
            return TransientError(f"no reply from SMTP server {where} within {timeout:g} s")
        return TransientError(f"SMTP server {where} closed the connection: {exc}")
    if isinstance(exc, smtplib.SMTPException):  # SMTPNotSupportedError and the like
        return PermanentError(f"SMTP server {where}: {exc}")
    return _network(exc, where, timeout)


def _refused(recipients: dict[str, tuple[int, bytes]], where: str) -> Exception:
    replies = "; ".join(f"SMTP {code} from {where} for {rcpt}: {_decode(text)}"
                        for rcpt, (code, text) in recipients.items())
    permanent = any(not 400 <= code < 500 for code, _ in recipients.values())
    kind = PermanentError if permanent else TransientError
    return kind(f"every recipient refused: {replies}")


def _network(exc: OSError, where: str, timeout: float) -> Exception:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"SMTP server {where}: TLS certificate not trusted "
                              f"({exc.verify_message})")
    if isinstance(exc, TimeoutError):
        return TransientError(f"no reply from SMTP server {where} within {timeout:g} s")
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"cannot connect to SMTP server {where}: connection refused")
    return TransientError(f"cannot reach SMTP server {where}: {exc.strerror or exc}")
