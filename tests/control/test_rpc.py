"""The control channel's framing and message format (sans-IO)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.control import rpc


def test_a_request_and_its_result_round_trip() -> None:
    client, server = rpc.RpcConnection(), rpc.RpcConnection()
    request_id, data = client.request("live", {"event_id": 7})
    [request] = server.receive_data(data)
    assert request == rpc.Request(request_id, "live", {"event_id": 7})
    [result] = client.receive_data(server.result(request_id, {"state": "live"}))
    assert result == rpc.Result(request_id, {"state": "live"})


def test_ids_rise_and_errors_and_notifications_parse() -> None:
    connection = rpc.RpcConnection()
    first, _ = connection.request("stats")
    second, _ = connection.request("stats")
    assert second == first + 1
    messages = connection.receive_data(
        rpc.RpcConnection.error(3, rpc.REFUSED, "the call has ended")
        + rpc.RpcConnection.notify("playlist", {"event_id": 1, "text": "#EXTM3U\n"})
    )
    assert messages == [
        rpc.Error(3, rpc.REFUSED, "the call has ended"),
        rpc.Notification("playlist", {"event_id": 1, "text": "#EXTM3U\n"}),
    ]


def test_a_message_cut_anywhere_arrives_whole() -> None:
    data = rpc.RpcConnection.notify("playlist", {"text": "line one\nline two"})
    for cut in range(len(data)):
        connection = rpc.RpcConnection()
        assert connection.receive_data(data[:cut]) == []
        assert connection.receive_data(data[cut:]) == [
            rpc.Notification("playlist", {"text": "line one\nline two"})
        ]


def test_an_overlong_line_is_refused_even_before_its_end() -> None:
    connection = rpc.RpcConnection(max_line=100)
    with pytest.raises(rpc.RpcProtocolError):
        connection.receive_data(b"x" * 101)
    with pytest.raises(rpc.RpcProtocolError):
        rpc.RpcConnection(max_line=100).receive_data(b'{"a":"' + b"x" * 200 + b'"}\n')


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"jsonrpc":"1.0","id":1,"method":"x"}',
        b'{"jsonrpc":"2.0","id":"1","method":"x"}',
        b'{"jsonrpc":"2.0","id":1.5,"result":1}',
        b'{"jsonrpc":"2.0","id":true,"result":1}',
        b'{"jsonrpc":"2.0","method":3}',
        b'{"jsonrpc":"2.0","method":"x","params":[1]}',
        b'{"jsonrpc":"2.0","result":1}',
        b'{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}',
        b'{"jsonrpc":"2.0","id":1}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_anything_else_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(rpc.RpcProtocolError):
        rpc.parse_message(line)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_the_reader_raises_only_its_own_error(data: bytes) -> None:
    connection = rpc.RpcConnection(max_line=200)
    try:
        for i in range(len(data)):
            connection.receive_data(data[i : i + 1])
    except rpc.RpcProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.text(min_size=1), st.dictionaries(st.text(), json_values, max_size=5))
def test_any_params_survive_the_wire(method: str, params: dict[str, object]) -> None:
    connection = rpc.RpcConnection()
    request_id, data = connection.request(method, params)
    assert data.count(b"\n") == 1
    assert json.loads(data)["params"] == params
    assert connection.receive_data(data) == [rpc.Request(request_id, method, params)]
