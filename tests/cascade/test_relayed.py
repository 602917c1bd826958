"""An edge's conference: the origin's mix goes to its listeners as it arrives, not on its tick."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from callbridge.bridge.commands import Command, EndConference, SetEventState
from callbridge.bridge.service import BridgeConfig
from callbridge.cascade.messages import Tell
from callbridge.cascade.node import NodeConfig, cascade_bridge
from callbridge.cascade.relayed import RelayedConference
from callbridge.media.conference import Participant
from callbridge.media.mixer import Pcm
from callbridge.rtp.codecs import encoder
from callbridge.rtp.g711 import ulaw_encode
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore

NOW = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


class Leg:
    """A leg that keeps what it is sent (the conference's side of a caller)."""

    def __init__(self, voice: Pcm | None = None, codec_name: str = "PCMU") -> None:
        self.codec_name = codec_name
        self.voice = voice
        self.sent: list[bytes] = []

    def pull_frame(self, now: float) -> Pcm | None:
        return self.voice

    def send_payload(self, payload: bytes, now: float) -> None:
        self.sent.append(payload)


def _edge() -> tuple[RelayedConference, list[tuple[str, Pcm]]]:
    uplinked: list[tuple[str, Pcm]] = []

    def uplink(participant: Participant, pcm: Pcm) -> None:
        uplinked.append((participant.id, pcm))

    return RelayedConference(7, encoder, uplink=uplink), uplinked


def test_the_mix_is_relayed_as_it_arrives_and_the_tick_sends_listeners_nothing() -> None:
    conference, _ = _edge()
    listeners = [Leg() for _ in range(3)] + [Leg(codec_name="PCMA")]
    for leg in listeners:
        conference.join(leg, False)
    conference.start()
    conference.tick(0.0, 0)
    assert all(leg.sent == [] for leg in listeners)
    payload = ulaw_encode(np.full(160, 1000, np.int16))
    assert conference.relay_mix(payload, 0.001) == 4
    # The PCMU listeners get the origin's bytes as they came; the PCMA one, one encode.
    assert [leg.sent for leg in listeners[:3]] == [[payload]] * 3
    assert len(listeners[3].sent) == 1 and listeners[3].sent[0] != payload
    assert conference.stats.encodes == 1


def test_a_caller_who_may_talk_is_sent_up_and_hears_their_own_stream() -> None:
    conference, uplinked = _edge()
    voice = np.full(160, 500, np.int16)
    speaker, listener = Leg(voice), Leg()
    talker = conference.join(speaker, True)
    conference.join(listener, False)
    conference.start()
    conference.tick(0.0, 0)
    assert [pid for pid, _ in uplinked] == [talker.id]
    mix_minus, mix = ulaw_encode(np.zeros(160, np.int16)), ulaw_encode(voice)
    conference.relay_line(talker.id, mix_minus, 0.0)
    conference.relay_mix(mix, 0.0)
    assert speaker.sent == [mix_minus] and listener.sent == [mix]


def _carried(database: Database, role: str) -> set[type]:
    node = NodeConfig("n1", role, "postgresql://nobody@127.0.0.1:1/none", bus_key=bytes(32))
    bridge = cascade_bridge(BridgeConfig(), EventStore(database), CallLog(database), node)
    return set(bridge._carriers)


def test_cascade_nodes_carry_out_tell(sqlite_database: Database) -> None:
    awaited: set[type[Command]] = {SetEventState, EndConference}
    for role in ("edge", "origin"):
        carried = _carried(sqlite_database, role)
        assert Tell in carried and not carried & awaited
