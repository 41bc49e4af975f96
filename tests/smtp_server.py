"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) whose replies can be scripted.

    server = SmtpServer()                      # or SmtpServer(credentials=("user", "pw"))
    server.start()
    server.script("451 4.3.0 try again later", "451 4.3.0 try again later")  # then 250
    server.refuse("550 5.1.1 no such user")    # every attempt, until reset()
    ... deliver to server.url (smtp://127.0.0.1:<port>) ...
    server.messages[0].message["Subject"]
    server.stop()

Scripted replies are given at one stage of the dialogue: "rcpt" (RCPT TO, per recipient) or
"data" (DATA, per message; the default). A reply that does not start with 2 makes that
command fail; a 2xx reply, or the end of the script, lets it through, and an accepted message
is appended to `messages`. `attempts` counts the commands seen at each stage.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

STAGES = ("rcpt", "data")
ACCEPT = "250 OK"


@dataclass(frozen=True)
class Received:
    """One message the server accepted: the envelope, the bytes as received and the message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


@dataclass
class _Script:
    replies: deque[str] = field(default_factory=deque)
    forever: str | None = None  # answered after the script runs out (None: accept)
    only: frozenset[str] | None = None  # RCPT: answer only these addresses from the script

    def next_reply(self, address: str | None = None) -> str | None:
        if self.only is not None and address not in self.only:
            return None
        if self.replies:
            return self.replies.popleft()
        return self.forever


class ScriptedHandler:
    """aiosmtpd handler: answers RCPT and DATA from scripts and records accepted messages."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.attempts = dict.fromkeys(STAGES, 0)
        self.scripts = {stage: _Script() for stage in STAGES}

    async def handle_RCPT(self, server: SMTPProtocol, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        with self.lock:
            self.attempts["rcpt"] += 1
            reply = self.scripts["rcpt"].next_reply(address)
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return reply or ACCEPT

    async def handle_DATA(self, server: SMTPProtocol, session: Session,
                          envelope: Envelope) -> str:
        with self.lock:
            self.attempts["data"] += 1
            reply = self.scripts["data"].next_reply()
        if reply is not None and not reply.startswith("2"):
            return reply
        raw = envelope.original_content or b""
        # Parsed with \n line ends, so get_content() gives back what the sender passed.
        parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                          raw, parsed))
        return reply or ACCEPT


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """A real SMTP server on 127.0.0.1 and a free port; use start()/stop() or `with`."""

    def __init__(self, credentials: tuple[str, str] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.credentials = credentials
        self.handler = ScriptedHandler()
        auth: dict[str, Any] = {}
        if credentials:  # AUTH over plain text is fine on loopback in tests
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self.handler, hostname=host, port=self.port, **auth)

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:<port>, with the credentials when the server requires them."""
        login = ""
        if self.credentials:
            login = f"{quote(self.credentials[0], safe='')}:{quote(self.credentials[1], safe='')}@"
        return f"smtp://{login}{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def attempts(self) -> dict[str, int]:
        with self.handler.lock:
            return dict(self.handler.attempts)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: str, stage: str = "data",
               addresses: Iterable[str] | None = None) -> None:
        """Answer the next commands at `stage` with `replies` in order, then accept."""
        self._set(stage, _Script(deque(replies), None, _only(addresses)))

    def refuse(self, reply: str = "550 5.1.1 no such user", stage: str = "rcpt",
               addresses: Iterable[str] | None = None) -> None:
        """Answer every command at `stage` (for `addresses` only, if given) with `reply`."""
        self._set(stage, _Script(deque(), reply, _only(addresses)))

    def reset(self) -> None:
        """Accept everything again and forget received messages and attempts."""
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.attempts = dict.fromkeys(STAGES, 0)
            self.handler.scripts = {stage: _Script() for stage in STAGES}

    def _set(self, stage: str, script: _Script) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        with self.handler.lock:
            self.handler.scripts[stage] = script

    def _authenticate(self, server: SMTPProtocol, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.credentials is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials)
        return AuthResult(success=ok, handled=False)


def _only(addresses: Iterable[str] | None) -> frozenset[str] | None:
    return None if addresses is None else frozenset(addresses)
