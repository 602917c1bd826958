"""``--smtp URL``: what it accepts and refuses, and smtps:// (TLS from the first byte) for real."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given
from hypothesis import strategies as st

from callbridge.mail.core import Outcome
from callbridge.mail.smtp import SmtpConfig, SmtpSender, SmtpUrlError
from tests.support.ports import free_port
from tests.support.smtp import _Handler


def test_urls() -> None:
    plain = SmtpConfig.parse("smtp://relay.example")
    assert (plain.host, plain.port, plain.security, plain.username) == (
        "relay.example",
        587,
        "starttls",
        None,
    )
    auth = SmtpConfig.parse("smtps://ir%40x.example:p%3Ass@relay.example")
    assert (auth.port, auth.security, auth.username, auth.password) == (
        465,
        "tls",
        "ir@x.example",
        "p:ss",
    )
    assert str(auth) == "smtps://ir@x.example@relay.example:465"  # never the password
    assert SmtpConfig.parse("smtp+plain://127.0.0.1:2525").security == "plain"
    for bad in (
        "http://relay.example",
        "smtp://",
        "smtp://relay.example/path",
        "smtp://relay.example?x=1",
        "smtp://relay.example:99999",
        "smtp+plain://user:pw@127.0.0.1",  # a password only over TLS
        "relay.example:25",
    ):
        with pytest.raises(SmtpUrlError):
            SmtpConfig.parse(bad)


@given(st.text(max_size=80))
def test_a_url_parses_or_is_refused_with_its_own_error(text: str) -> None:
    try:
        config = SmtpConfig.parse(text)
    except SmtpUrlError:
        return
    assert config.host and 0 < config.port < 65536


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    handler = _Handler()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*(str(p) for p in certificate))
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=context)
    server.start()
    try:
        config = SmtpConfig.parse(f"smtps://127.0.0.1:{port}", certificate[0])
        sender = SmtpSender(config)

        async def send() -> Outcome:
            try:
                attempt = await sender.send(
                    "a@x.example", "b@y.example", b"Subject: t\r\n\r\nhi\r\n"
                )
            finally:
                await sender.close()
            return attempt.outcome

        assert asyncio.run(send()) is Outcome.ACCEPTED
        (got,) = handler.received
        assert got.recipients == ["b@y.example"]
        # TLS from the first byte: a client that does not trust the certificate sends nothing
        # (and the row is tried again later).
        untrusted = SmtpSender(SmtpConfig.parse(f"smtps://127.0.0.1:{port}"))

        async def refused() -> Outcome:
            try:
                return (await untrusted.send("a@x.example", "b@y.example", b"\r\n")).outcome
            finally:
                await untrusted.close()

        assert asyncio.run(refused()) is Outcome.UNREACHABLE
        assert len(handler.received) == 1
    finally:
        server.stop()
