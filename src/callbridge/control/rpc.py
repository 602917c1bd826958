"""JSON-RPC 2.0, one message a line: the control channel between the web app and the media plane.

Sans-IO like the SIP core: ``RpcConnection`` takes bytes and hands back
messages, and turns requests, answers and notifications into bytes. The
asyncio glue (``control.server``, ``control.client``) only moves them.

Framing is newline-delimited JSON (``json.dumps`` escapes every newline
inside a string, so a line is a message). A line longer than
``max_line`` is refused: the peer is local and trusted, but a buffer without
a limit is a bug waiting for a bad day.

The JSON-RPC 2.0 specification: https://www.jsonrpc.org/specification
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A console's view of a call with a thousand callers is some 300 kB of JSON.
DEFAULT_MAX_LINE = 16 * 1024 * 1024

# Error codes: the specification's, and ours above -32000 as it allows.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REFUSED = -32000  # the bridge refuses the action (BridgeError): the message says why


class RpcProtocolError(Exception):
    """The peer broke the framing or the message format; the connection should close."""


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Result:
    id: int
    value: Any


@dataclass(frozen=True)
class Error:
    id: int | None
    code: int
    message: str


Message = Request | Notification | Result | Error


def _line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class RpcConnection:
    """One end of a control connection: frames, numbers requests, reads messages.

    Call ``receive_data`` with whatever the socket read; it returns the whole
    messages that arrived. ``request``, ``notify``, ``result`` and ``error``
    return the bytes to write.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._next_id = 1

    def receive_data(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``; raises ``RpcProtocolError`` on a broken peer."""
        self._buffer += data
        messages: list[Message] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            if end - start > self.max_line:
                raise RpcProtocolError(f"a line of {end - start} bytes (limit {self.max_line})")
            line = bytes(self._buffer[start:end])
            start = end + 1
            if line.strip():
                messages.append(parse_message(line))
        del self._buffer[:start]
        if len(self._buffer) > self.max_line:
            raise RpcProtocolError(f"a line of over {self.max_line} bytes")
        return messages

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """A new request's id (to match its answer) and its bytes."""
        request_id = self._next_id
        self._next_id += 1
        payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        return request_id, _line(payload)

    @staticmethod
    def notify(method: str, params: dict[str, Any] | None = None) -> bytes:
        return _line({"jsonrpc": "2.0", "method": method, "params": params or {}})

    @staticmethod
    def result(request_id: int, value: Any) -> bytes:
        return _line({"jsonrpc": "2.0", "id": request_id, "result": value})

    @staticmethod
    def result_json(request_id: int, value: bytes) -> bytes:
        """A result whose value is already JSON (no raw newline: JSON escapes them)."""
        return b'{"jsonrpc":"2.0","id":%d,"result":%s}\n' % (request_id, value)

    @staticmethod
    def error(request_id: int | None, code: int, message: str) -> bytes:
        return _line(
            {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
        )


def parse_message(line: bytes) -> Message:
    """One JSON-RPC 2.0 message; raises ``RpcProtocolError`` for anything else."""
    try:
        payload = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as bad:
        raise RpcProtocolError(f"not JSON: {bad}") from None
    if not isinstance(payload, dict) or payload.get("jsonrpc") != "2.0":
        raise RpcProtocolError("not a JSON-RPC 2.0 message")
    request_id = payload.get("id")
    if request_id is not None and (type(request_id) is not int):
        raise RpcProtocolError("ids on this channel are integers")
    if "method" in payload:
        method, params = payload["method"], payload.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            raise RpcProtocolError("a method is a string and its params an object")
        if request_id is None:
            return Notification(method, params)
        return Request(request_id, method, params)
    if "result" in payload:
        if request_id is None:
            raise RpcProtocolError("a result without an id")
        return Result(request_id, payload["result"])
    error = payload.get("error")
    if (
        isinstance(error, dict)
        and type(error.get("code")) is int
        and isinstance(error.get("message"), str)
    ):
        return Error(request_id, error["code"], error["message"])
    raise RpcProtocolError("neither a request, a notification, a result nor an error")
