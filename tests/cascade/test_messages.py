"""The bus's messages: every kind round-trips; anything else is a BusError, never another error."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.cascade.messages import (
    EVERYONE,
    MAX_PAYLOAD,
    ORIGIN,
    VERSION,
    Active,
    BusError,
    CallState,
    Directive,
    Envelope,
    Feeding,
    Joined,
    Keyed,
    Left,
    Message,
    OriginUp,
    Replicated,
    Subscribe,
    Unsubscribe,
    decode,
    encode,
    valid_node_id,
)

EXAMPLES: list[Message] = [
    Subscribe(7, "10.0.0.3", 40000),
    Unsubscribe(7),
    Feeding(7, "10.0.0.2", 41000, "0123456789abcdef"),
    OriginUp("0123456789abcdef"),
    Feeding(7, "10.0.0.2", 41000, "0123456789abcdef", epoch=4, active=False),
    Active(4, "0123456789abcdef"),
    Replicated(7, "moderate", "dana", 1.8e9, '{"action":"name","name":"Mark Chen, CFO"}'),
    Replicated(7, "start", "", 1.8e9, event_state="scheduled"),
    Replicated(7, "key", "edge-a/p7-3@edge-a", 1.8e9, "*"),
    Joined(7, "p7-3@edge-a", "listener", "+15555550100", "+18665550199", False, 1.8e9, True),
    Left("p7-3@edge-a", "BYE", 1.8e9),
    Keyed("p7-3@edge-a", "*", 1.8e9),
    Directive("whisper", "p7-3@edge-a", "question_queued"),
    CallState(7, "ended"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_every_kind_round_trips(message: Message) -> None:
    envelope = Envelope("edge-a", ORIGIN, message)
    assert decode(encode(envelope)) == envelope
    assert decode(encode(envelope).encode()) == envelope


def test_who_reads_what() -> None:
    to_origin = Envelope("edge-a", ORIGIN, Unsubscribe(7))
    assert to_origin.for_node("origin-1", is_origin=True)
    assert not to_origin.for_node("edge-b", is_origin=False)
    to_all = Envelope("origin-1", EVERYONE, CallState(7, "live"))
    assert to_all.for_node("edge-a", False) and to_all.for_node("edge-b", False)
    assert not to_all.for_node("origin-1", True)  # nobody hears themself
    to_b = Envelope("origin-1", "edge-b", Directive("disconnect", "p1"))
    assert to_b.for_node("edge-b", False) and not to_b.for_node("edge-a", False)


def _body(**changes: object) -> str:
    body: dict[str, object] = {
        "v": VERSION, "from": "edge-a", "to": ORIGIN, "kind": "keyed",
        "participant_id": "p1", "key": "1", "at": 1.0,
    }  # fmt: skip
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def _subscribe(**changes: object) -> str:
    body = {"v": 1, "from": "e", "to": EVERYONE, "kind": "subscribe", "event_id": 1}
    return json.dumps({**body, "host": "h", "port": 1, **changes})


def _origin_up(**changes: object) -> str:
    body = {"v": VERSION, "from": "o", "to": EVERYONE, "kind": "origin_up"}
    return json.dumps({**body, "incarnation": "0123456789abcdef", **changes})


def _replicated(**changes: object) -> str:
    body = {"v": VERSION, "from": "o", "to": ORIGIN, "kind": "replicated", "event_id": 1}
    return json.dumps({**body, "what": "end", "actor": "", "at": 1.0, **changes})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("[1]", "not a JSON object"),
        (_body(v=VERSION + 1), f"version {VERSION + 1} is not spoken here"),
        (_body(v=None), "version None"),
        (_body(v=True), "version True"),
        (_body(v=0), "version 0"),
        (_origin_up(v=1), "not a message of version"),
        (_origin_up(incarnation="ABC"), "not an incarnation"),
        (_subscribe(kind="feeding", incarnation="x" * 16), "not an incarnation"),
        (_body(kind="reboot"), "unknown message kind"),
        (_body(key="x"), "not a key"),
        (_body(key=None), "key is missing"),
        (_body(at="soon"), "keyed.at is not a number"),
        (_body(at=float("inf")), "out of range"),
        (_body(extra=1), "unknown fields"),
        (_body(**{"from": "no spaces please"}), "not a node id"),
        (_body(to="x" * 300), "over 200 characters"),
        (_subscribe(port=70000), "out of range"),
        (_replicated(what="reboot"), "unknown 'reboot'"),
        (_replicated(what="key", action="x"), "not a key"),
        (_replicated(v=2), "not a message of version 2"),
        (_subscribe(event_id=True), "whole number"),
        ("x" * (MAX_PAYLOAD + 1), "over the limit"),
    ],
)
def test_junk_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(BusError, match=reason):
        decode(text)


def test_a_version_1_message_reads_as_before() -> None:
    """Version 2 added fields with defaults: a version-1 node's messages still read."""
    envelope = decode(_subscribe(v=1, kind="feeding"))
    assert envelope.message == Feeding(1, "h", 1, "")
    joined = {
        "v": 1, "from": "edge-a", "to": ORIGIN, "kind": "joined", "event_id": 7,
        "participant_id": "p1", "role": "listener", "caller_id": "", "dialled": "",
        "hold": False, "at": 1.0,
    }  # fmt: skip
    message = decode(json.dumps(joined)).message
    assert isinstance(message, Joined) and message.again is False


def test_a_message_over_the_limit_is_not_sent() -> None:
    with pytest.raises(BusError, match="over the limit"):
        encode(Envelope("edge-a", ORIGIN, Left("p1", "x" * MAX_PAYLOAD, 1.0)))


def test_node_ids() -> None:
    assert valid_node_id("edge-1.dc2_a") == "edge-1.dc2_a"
    for bad in ("", "-edge", "a" * 33, "edge 1", "@origin"):
        with pytest.raises(BusError):
            valid_node_id(bad)


@given(st.text(max_size=300))
def test_decoding_any_text_returns_or_raises_bus_error(text: str) -> None:
    with contextlib.suppress(BusError):
        decode(text)


@given(
    st.dictionaries(
        st.sampled_from(["v", "from", "to", "kind", "event_id", "participant_id", "key", "at",
                         "host", "port", "role", "state", "action", "hold", "prompt", "x",
                         "incarnation", "again"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                  st.sampled_from(["keyed", "subscribe", "joined", "directive", "call_state",
                                   "origin_up", "feeding", "0123456789abcdef",
                                   "edge-a", ORIGIN, "listener", "1", "live"])),
    )
)  # fmt: skip
def test_decoding_any_object_returns_or_raises_bus_error(body: dict[str, object]) -> None:
    try:
        envelope = decode(json.dumps(body))
    except BusError:
        return
    assert decode(encode(envelope)) == envelope


def test_a_version_2_feeding_is_the_active_origins() -> None:
    """Version 3 added the epoch: a version-2 origin's Feeding reads as epoch 0, active."""
    message = decode(_subscribe(v=2, kind="feeding", incarnation="0123456789abcdef")).message
    assert message == Feeding(1, "h", 1, "0123456789abcdef", epoch=0, active=True)
