"""SIP over TCP and TLS on real sockets: idle connections are closed, keep-alives keep them;
the TLS port drops and counts failed handshakes and goes on."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from pathlib import Path

from callbridge.bridge.sip_transport import EndpointDriver, SipTcpServer, server_context
from callbridge.sip.endpoint import EndpointConfig, SipEndpoint
from tests.sip.uac import Uac


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(65536), seconds) == b""
    except TimeoutError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True  # it was closed while we wrote


async def idle_connections() -> None:
    loop = asyncio.get_running_loop()
    driver = EndpointDriver(SipEndpoint(EndpointConfig(transport="TCP")), lambda e, v: None, loop)
    tcp = SipTcpServer(driver, idle_timeout=0.6)
    server = await tcp.listen("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        silent = await asyncio.open_connection("127.0.0.1", port)
        alive = await asyncio.open_connection("127.0.0.1", port)
        dribbling = await asyncio.open_connection("127.0.0.1", port)
        options = Uac().options().replace(b"UDP", b"TCP")
        for _ in range(8):  # 1.6 s: keep-alives and a message keep one open
            alive[1].write(b"\r\n\r\n")
            # A message that never completes is not activity (closed already: as it should be).
            with contextlib.suppress(OSError):
                dribbling[1].write(options[:1])
            options = options[1:]
            await asyncio.sleep(0.2)
        assert await closed_within(silent[0], 0.1)
        assert await closed_within(dribbling[0], 0.1)
        alive[1].write(Uac().options().replace(b"UDP", b"TCP"))
        answer = await asyncio.wait_for(alive[0].read(65536), 2)
        assert answer.startswith(b"SIP/2.0 200")
        assert await closed_within(alive[0], 2.0)  # and then it too goes quiet
        assert tcp.closed_idle == 3
        assert tcp.connections == {} and tcp.per_source == {}
        for _, writer in (silent, alive, dribbling):
            writer.close()
    finally:
        server.close()


def test_idle_and_dribbling_tcp_connections_are_closed() -> None:
    asyncio.run(idle_connections())


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA too) and its key."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def tls_port(cert: Path, key: Path, ca: Path | None) -> None:
    loop = asyncio.get_running_loop()
    driver = EndpointDriver(SipEndpoint(EndpointConfig(transport="TLS")), lambda e, v: None, loop)
    context = server_context(str(cert), str(key), str(ca) if ca else None)
    tls = SipTcpServer(driver, tls=context, handshake_timeout=0.5)
    server = await tls.listen("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options = Uac().options().replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS")
    client = ssl.create_default_context(cafile=str(cert))
    try:
        # A plaintext client on the TLS port: dropped, counted.
        plain = await asyncio.open_connection("127.0.0.1", port)
        plain[1].write(options)
        assert await closed_within(plain[0], 2.0)
        # One that says nothing: dropped when the handshake times out.
        silent = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_within(silent[0], 3.0)
        assert tls.handshake_failed == 2 and tls.handshakes == 0
        if ca is not None:
            # Mutual TLS: no client certificate, no way in.
            anonymous = await asyncio.open_connection("127.0.0.1", port, ssl=client)
            anonymous[1].write(options)
            assert await closed_within(anonymous[0], 2.0)
            assert tls.handshake_failed == 3
            client.load_cert_chain(str(cert), str(key))
        # A TLS client: SIP as over TCP, and the server went on through it all.
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.write(options)
        answer = await asyncio.wait_for(reader.read(65536), 2)
        assert answer.startswith(b"SIP/2.0 200"), answer[:200]
        assert tls.handshakes == 1
        writer.close()
    finally:
        server.close()


def test_the_tls_port_drops_plaintext_and_stalled_clients_and_serves_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    asyncio.run(tls_port(cert, key, None))


def test_mutual_tls_turns_away_a_client_without_a_certificate(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    asyncio.run(tls_port(cert, key, cert))
