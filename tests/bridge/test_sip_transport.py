"""SIP over TCP on real sockets: idle connections are closed, keep-alives keep them."""

from __future__ import annotations

import asyncio
import contextlib

from callbridge.bridge.sip_transport import EndpointDriver, SipTcpServer
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
