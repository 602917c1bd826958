"""A real SMTP server for the tests: aiosmtpd with STARTTLS and AUTH, and ways to make it misbehave.

``SmtpServer`` records what it accepted as a mail store would; ``refuse``
answers the next N messages' data with a 4xx; ``reject`` refuses
recipients with a 5xx; ``hold`` keeps a message's data waiting (``held`` is
set meanwhile) so a test can kill the client mid-send. The certificate is a
throwaway one made by openssl for 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import email
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "relay-user", "relay pass:@/"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files in ``folder``)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    authenticated: bool
    tls: bool

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def message_id(self) -> str:
        return str(self.parsed()["Message-ID"])


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse: int = 0
    reject: set[str] = field(default_factory=set)
    # Keep the ``hold_nth`` message (counted from 1) waiting ``hold`` seconds at ``hold_at``:
    # "rcpt" before anything is taken, "data" after it is stored and before the 250.
    hold: float = 0.0
    hold_nth: int = 1
    hold_at: str = "data"
    held: threading.Event = field(default_factory=threading.Event)
    held_data: bytes = b""  # the message held at "data"
    rcpts: int = 0
    datas: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        with self.lock:
            self.rcpts += 1
            hold = self.hold if self.hold_at == "rcpt" and self.rcpts == self.hold_nth else 0
        if hold:
            self.held.set()
            await asyncio.sleep(hold)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return "451 4.3.0 try again later"
        data = envelope.original_content or envelope.content or b""
        assert isinstance(data, bytes)
        with self.lock:
            self.datas += 1
            hold = self.hold if self.hold_at == "data" and self.datas == self.hold_nth else 0
            self.received.append(
                Received(
                    sender=str(envelope.mail_from),
                    recipients=list(envelope.rcpt_tos),
                    data=data,
                    authenticated=bool(session.authenticated),
                    tls=session.ssl is not None,
                )
            )
        if hold:
            self.held_data = data
            # Stored, as an MTA stores a message before it answers: a client gone now never
            # hears the 250.
            self.held.set()
            await asyncio.sleep(hold)
        return "250 2.0.0 Ok: queued"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd then answers the refusal (535) itself.
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port``: STARTTLS required, then AUTH (``USER``/``PASSWORD``)."""

    def __init__(self, port: int, cert: Path, key: Path) -> None:
        self.port = port
        self.cert = cert
        self.handler = _Handler()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_authenticate,
        )

    @property
    def url(self) -> str:
        from urllib.parse import quote

        return f"smtp://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def ca_file(self) -> Path:
        """The file a client trusts to verify this server (its own self-signed certificate)."""
        return self.cert
