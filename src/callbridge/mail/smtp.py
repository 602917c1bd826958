"""The SMTP relay: ``--smtp URL`` parsed, and one connection that sends outbox rows (aiosmtplib).

``smtp://user:password@host:587`` speaks STARTTLS (required: a server that
does not offer it is not sent the password or the mail), ``smtps://…:465``
TLS from the first byte; ``smtp+plain://host:25`` (no TLS, no password) is
for a relay on the same host only. The adapter decides nothing: it reports
each try as a ``core.Attempt`` (the server's code and words, or what broke),
and ``core.settle`` decides what follows.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from callbridge.mail.core import Attempt, Outcome, classify

log = logging.getLogger(__name__)

# Seconds for each step of the exchange (connect, each command, the data).
TIMEOUT = 30.0
_SCHEMES = {"smtp": (587, "starttls"), "smtps": (465, "tls"), "smtp+plain": (25, "plain")}


class SmtpUrlError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail."""

    host: str
    port: int
    security: str  # "starttls", "tls" or "plain"
    username: str | None = None
    password: str | None = None
    # A CA file to trust besides the system's (a relay with a private CA; the tests' server).
    ca_file: Path | None = None
    timeout: float = TIMEOUT

    @classmethod
    def parse(cls, url: str, ca_file: Path | None = None) -> SmtpConfig:
        """``smtp://[user[:password]@]host[:port]``, ``smtps://…`` or ``smtp+plain://…``."""
        parts = urlsplit(url.strip())
        if parts.scheme not in _SCHEMES:
            raise SmtpUrlError(
                f"{url!r}: an SMTP relay is smtp://host (STARTTLS), smtps://host (TLS) "
                "or smtp+plain://host (no TLS)"
            )
        if not parts.hostname:
            raise SmtpUrlError(f"{url!r}: names no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise SmtpUrlError(f"{url!r}: a relay URL has no path or query")
        default_port, security = _SCHEMES[parts.scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise SmtpUrlError(f"{url!r}: the port is not a number from 1 to 65535") from None
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is not None and security == "plain":
            raise SmtpUrlError(f"{url!r}: a password is sent only over TLS (smtp:// or smtps://)")
        return cls(parts.hostname, port, security, username, password, ca_file)

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = {"starttls": "smtp", "tls": "smtps", "plain": "smtp+plain"}[self.security]
        return f"{scheme}://{user}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        if self.security == "plain":
            return None
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context


class SmtpSender:
    """One SMTP connection, opened when needed and again after any failure.

    Not for two tasks at once: each sender sends one message at a time.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=config.tls_context(),
            username=config.username,
            password=config.password,
            timeout=config.timeout,
        )
        await client.connect()
        self._client = client
        return client

    async def send(self, sender: str, recipient: str, message: bytes) -> Attempt:
        """Submit one message to one recipient; how it went (never raises for SMTP trouble)."""
        try:
            client = await self._connected()
            refused, answer = await client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return Attempt(classify(first.code), f"{first.code} {first.message}")
        except aiosmtplib.SMTPResponseException as exc:
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPHeloError):
                # The relay refused us, not this message: try again later.
                await self.close()
                return Attempt(Outcome.UNREACHABLE, f"{exc.code} {exc.message}")
            return Attempt(classify(exc.code), f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return Attempt(Outcome.UNREACHABLE, f"{type(exc).__name__}: {exc}".strip())
        if refused:
            code, words = next(iter(refused.values()))
            return Attempt(classify(code), f"{code} {words}")
        return Attempt(Outcome.ACCEPTED, f"250 {answer}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
