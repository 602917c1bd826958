"""How a bridge is put together: its settings, and what a cascade's node plugs into it.

``BridgeConfig`` is what ``callbridge serve`` sets; a ``Plug`` is what a
cascade's node (``cascade.node``) brings to the ``bridge.service.Bridge`` it
runs in, by composition: its controller, its conferences, its carriers of
the commands only it has (and wrappers of a few of the bridge's own), and
what it starts and stops with the bridge.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import callbridge.bridge.commands as cmd
from callbridge.bridge.callme import CallMeRules
from callbridge.bridge.controller import CallController
from callbridge.bridge.lobby import Command as LobbyCommand
from callbridge.bridge.lobby import Lobby
from callbridge.bridge.lookups import Lookups
from callbridge.bridge.media_plane import HoldMusic, MediaPlane
from callbridge.bridge.outputs import Outputs
from callbridge.bridge.trunks import TrunksFile
from callbridge.ivr.guard import GuardRules
from callbridge.ivr.machine import IvrRules
from callbridge.media.conference import Audience, Conference
from callbridge.sip.advertise import Advertised
from callbridge.sip.sdp import SrtpPolicy
from callbridge.store.events import EventStore

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
C = TypeVar("C")
Carriers = dict[type, Callable[[Any], object]]


@dataclass(frozen=True)
class SrtpRules:
    """SRTP policy per trunk: the most specific network holding the caller's address wins."""

    default: SrtpPolicy = SrtpPolicy.OFF
    trunks: tuple[tuple[Network, SrtpPolicy], ...] = ()

    def for_source(self, host: str) -> SrtpPolicy:
        try:
            address = ipaddress.ip_address(host.removeprefix("::ffff:"))
        except ValueError:
            return self.default
        holding = [
            (network.prefixlen, policy)
            for network, policy in self.trunks
            if address.version == network.version and address in network
        ]
        return max(holding, key=lambda pair: pair[0])[1] if holding else self.default


@dataclass
class BridgeConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    trunk_networks: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    # A leg that sends no RTP for this long is gone (no BYE reached us).
    media_timeout: float = 30.0
    ivr: IvrRules = field(default_factory=IvrRules)
    guard: GuardRules = field(default_factory=GuardRules)
    max_calls: int = 2000
    enable_tcp: bool = True
    # SIP over TLS on its own port (``serve --sip-tls-port``), with this context; None: no TLS.
    sip_tls_port: int | None = None
    sip_tls: ssl.SSLContext | None = None
    # What callers' media must be (``serve --srtp``): off, offered, required.
    srtp: SrtpRules = field(default_factory=SrtpRules)
    # Ring briefly before answering: carriers play ringback meanwhile, and a
    # caller who changes their mind can still CANCEL.
    answer_delay: float = 0.25
    # Where calls are recorded (one folder per call); None records nothing.
    recordings: Path | None = None
    # The journal of writes waiting for the database (``store.layout.journal``);
    # None keeps it in memory (a bridge built in a test, without a data folder).
    journal: Path | None = None
    # Where the live webcast of each call is packaged (LL-HLS); None: no webcast.
    webcasts: Path | None = None
    # The child process that transcribes an event's recording; None: no transcripts.
    transcribe_command: Callable[[int], list[str]] | None = None
    # The live caption worker's command for a glossary; None: no live captions.
    caption_command: Callable[[Sequence[str]], list[str]] | None = None
    # How a frame goes to many listeners: "auto" (io_uring where the kernel
    # allows it, else one sendto each), "io_uring" (or fail), "sendto".
    media_sender: str = "auto"
    # The key registrants' personal PINs are hashed under (``store.pins.pin_key``);
    # None: no PINs are looked up (a passcode-only bridge).
    pin_key: bytes | None = None
    # The carriers' trunks for calls we place and registrations (``serve --trunks``).
    trunks: TrunksFile | None = None
    # Call me's limits and countries (``bridge.callme``; ``serve --call-me-countries``).
    call_me: CallMeRules = field(default_factory=CallMeRules)
    # Behind a NAT: what peers outside ``local_networks`` are told our SIP
    # host/port and media address are (``sip.advertise``); None: the bound ones.
    sip_advertise: str | None = None
    sip_advertise_port: int | None = None
    media_advertise: str | None = None
    local_networks: tuple[Network, ...] = ()
    # In-band DTMF (tones in the audio, ``rtp.inband``): listened for on calls
    # from these networks only (carriers that send keys so); () listens on none.
    inband_dtmf_networks: tuple[Network, ...] = ()

    def advertised(self) -> Advertised:
        """The addresses each peer is told (the bind address where nothing is advertised)."""
        return Advertised(
            self.sip_host,
            self.sip_advertise,
            self.sip_advertise_port,
            self.media_advertise,
            self.local_networks,
        )


class Host(Protocol):
    """What a plug may use of the bridge it runs in (``bridge.service.Bridge`` is one)."""

    config: BridgeConfig
    events: EventStore
    lobby: Lobby
    lookups: Lookups
    media: MediaPlane
    outputs: Outputs
    sip_port: int
    tasks: list[asyncio.Task[None]]

    def carry_out(self, commands: Iterable[cmd.Command | LobbyCommand]) -> None: ...

    async def carry_out_awaiting(self, commands: Iterable[cmd.Command]) -> None: ...


class Plug(Protocol):
    """What a cascade's node (``cascade.node``) brings to the bridge it runs in."""

    controller: CallController

    def attach(self, bridge: Host, defaults: Carriers) -> Carriers:
        """Called once, as the bridge is built: the carriers it adds or replaces.

        ``defaults`` are the bridge's own, for a carrier that wraps one.
        """
        ...

    def conference(
        self, event_id: int, hold_music: HoldMusic, audience: Callable[[], Audience]
    ) -> Conference:
        """The event's new conference (``media_plane.ConferenceFactory``)."""
        ...

    async def start(self) -> None:
        """After the bridge has started."""
        ...

    async def stop(self) -> None:
        """Before the bridge stops its calls."""
        ...

    def counters(self) -> dict[str, int]:
        """The node's own counters for the bridge's stats (``BridgeStats.bus``)."""
        ...

    def media_counters(self) -> dict[str, int]:
        """The node's media port counters (``media_received``, ``media_late``, ...): metrics."""
        ...

    def close(self) -> None:
        """After the bridge has stopped."""
        ...


def carrier(
    kind: type[C], carry_out: Callable[[C], object]
) -> tuple[type, Callable[[Any], object]]:
    """One row of a carriers table, checked: ``carry_out`` takes a ``kind``."""
    return kind, carry_out
