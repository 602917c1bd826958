"""The node's SIP front on real sockets: UDP and TCP share one port number."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from callbridge.bridge.sip_front import SipFront


def front() -> SipFront:
    return SipFront("127.0.0.1", (), max_calls=10, on_event=lambda endpoint, event: None)


def hold_tcp(port: int) -> socket.socket:
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", port))
    held.listen()
    return held


def test_a_picked_port_whose_tcp_twin_is_taken_is_picked_again() -> None:
    """Another process holding the TCP number of the UDP port the system picked
    (seen in CI: a test's server failed to start) makes the front pick anew."""
    held: list[socket.socket] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        create = loop.create_datagram_endpoint

        async def create_and_clash(*args: Any, **kwargs: Any) -> Any:
            transport, protocol = await create(*args, **kwargs)
            if not held:  # the first pick only: its TCP twin is taken before the front binds it
                held.append(hold_tcp(transport.get_extra_info("sockname")[1]))
            return transport, protocol

        loop.create_datagram_endpoint = create_and_clash  # type: ignore[method-assign]
        sip = front()
        port = await sip.open(0, tcp=True)
        try:
            # The front's own TCP listener answers on the port it returned.
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return port
        finally:
            await sip.close()

    try:
        port = asyncio.run(main())
        assert held, "the clash was never made"
        assert port != held[0].getsockname()[1]
    finally:
        for sock in held:
            sock.close()


def test_a_named_port_whose_tcp_twin_is_taken_fails_to_start() -> None:
    """An operator's port is theirs to mend: the front does not move to another."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    held = hold_tcp(port)

    async def main() -> None:
        sip = front()
        try:
            await sip.open(port, tcp=True)
        finally:
            await sip.close()

    try:
        with pytest.raises(OSError, match="address already in use"):
            asyncio.run(main())
    finally:
        held.close()
