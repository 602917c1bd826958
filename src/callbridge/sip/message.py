"""SIP messages (RFC 3261 section 7): parse from bytes, serialize to bytes.

The parser is strict where a wrong guess would misroute a call (start line,
Via, CSeq, Content-Length) and lenient where real phones differ (case,
whitespace, compact names, folded lines). Every buffer has a limit. A
malformed message raises ``SipError`` with the status to answer; nothing
else escapes ``parse_message`` (tests/fuzz and bench/fuzz.py check it).

Over 500 lines because ``StreamFramer`` lives here: it must read the
Content-Length with the very code ``parse_message`` uses (``_unfold``,
``_content_length``), or the two could disagree about where a message ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from callbridge.sip.errors import REASONS, SipError
from callbridge.sip.grammar import (
    CSEQ_RE,
    DIGITS_RE,
    HEADER_LINE_RE,
    METHOD_RE,
    PORT_RE,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    URI_RE,
    VIA_RE,
)

MAX_MESSAGE = 65535
MAX_HEADERS = 128
MAX_LINE = 8192
MAX_FRAMER_BUFFER = 2 * MAX_MESSAGE

COMPACT: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
}
# Canonical spelling for headers we print; others keep the sender's case.
CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Type",
        "Content-Length",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Accept",
        "User-Agent",
        "Server",
        "Require",
        "Unsupported",
        "Expires",
        "Session-Expires",
        "Retry-After",
        "Warning",
        "Subject",
        "Content-Encoding",
        "Event",
        "Reason",
    )
}
CANONICAL["cseq"] = "CSeq"
CANONICAL["call-id"] = "Call-ID"
# Headers whose value is a comma-separated list (section 7.3.1).
LIST_HEADERS = frozenset(
    {"via", "route", "record-route", "contact", "allow", "supported", "require", "accept"}
)
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


def canonical_name(name: str) -> str:
    lowered = name.lower()
    if lowered in COMPACT:
        return COMPACT[lowered]
    return CANONICAL.get(lowered, name)


def split_list(value: str) -> list[str]:
    """Split a header value on commas that are outside quotes and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    current: list[str] = []
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


class Headers:
    """An ordered, case-insensitive multi-map of header fields."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (for a list header, its first element)."""
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        values: list[str] = []
        for item_name, value in self._items:
            if item_name.lower() == key:
                values.extend(split_list(value) if key in LIST_HEADERS else [value])
        return values

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        return Headers(self._items)


# -- URIs and addresses ---------------------------------------------------------


def _params(text: str | None) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"') if sep else None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}={v}" if v is not None else f";{k}" for k, v in params.items())


@dataclass
class SipUri:
    scheme: str
    host: str
    user: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Read a sip:, sips: or tel: URI; any other scheme is a 416."""
        match = URI_RE.match(text.strip())
        if match is None:
            raise SipError(400, f"malformed URI {text[:60]!r}")
        scheme = match["scheme"].lower()
        if scheme == "tel":
            # tel:+19133120379;phone-context=... - the number is the user part.
            number = (match["host"] or "") if match["user"] is None else match["user"]
            return cls(scheme="tel", host="", user=number, params=_params(match["params"]))
        if scheme not in ("sip", "sips"):
            raise SipError(416, f"URI scheme {scheme!r}")
        host = match["host"]
        if not host:
            raise SipError(400, "URI without a host")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port < 65536:
            raise SipError(400, f"URI port {port}")
        return cls(
            scheme=scheme,
            host=host,
            user=match["user"],
            port=port,
            params=_params(match["params"]),
            headers=match["headers"],
        )

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{_format_params(self.params)}"
        user = f"{self.user}@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{self.host}{port}{_format_params(self.params)}{headers}"


@dataclass
class NameAddr:
    """``"Display" <sip:user@host>;tag=abc`` - From, To, Contact, Route."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            raw_display, _, rest = text.partition("<")
            uri_text, closed, params = rest.partition(">")
            if not closed:
                raise SipError(400, "unclosed '<' in an address")
            display = raw_display.strip().strip('"').strip() or None
            return cls(SipUri.parse(uri_text), display, _params(params))
        # addr-spec form: URI parameters belong to the header here (section 20.10).
        uri_text, _, params = text.partition(";")
        return cls(SipUri.parse(uri_text), None, _params(params))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @classmethod
    def parse(cls, text: str) -> Via:
        match = VIA_RE.match(text.strip())
        if match is None:
            raise SipError(400, f"malformed Via {text[:60]!r}")
        if match[1] != "2.0":
            raise SipError(505, f"Via SIP version {match[1]}")
        sent_by = match[3]
        host, port = sent_by, None
        if sent_by.startswith("["):
            host, _, rest = sent_by.partition("]")
            host += "]"
            if rest.startswith(":"):
                port = _port(rest[1:])
        elif sent_by.count(":") == 1:
            host, port_text = sent_by.split(":")
            port = _port(port_text)
        return cls(match[2].upper(), host, port, _params(match[4]))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port or 5060}"


def _port(text: str) -> int:
    # port = 1*DIGIT, ASCII digits only (RFC 5234 B.1), and a TCP/UDP port.
    if not PORT_RE.match(text) or not 0 < int(text) < 65536:
        raise SipError(400, f"bad port {text[:10]!r}")
    return int(text)


def parse_cseq(value: str | None) -> tuple[int, str]:
    match = CSEQ_RE.match((value or "").strip())
    if match is None:
        raise SipError(400, "malformed CSeq")
    number = int(match[1])
    if number >= 2**31:
        raise SipError(400, "CSeq number out of range")
    return number, match[2]


# -- messages -----------------------------------------------------------------


class _Dialogue:
    """What requests and responses share: the fields that tie them to a call."""

    headers: Headers

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq"))


@dataclass
class SipRequest(_Dialogue):
    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    @property
    def top_via(self) -> Via:
        return Via.parse(self.headers.get("Via") or "")

    def serialize(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)

    __bytes__ = serialize


@dataclass
class SipResponse(_Dialogue):
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        return _serialize(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)

    __bytes__ = serialize


SipMessage = SipRequest | SipResponse


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    for name, value in headers:
        if name.lower() != "content-length":
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# The empty line that ends the header section: CRLF CRLF, or bare LFs from
# lenient senders. The first one wins, in a datagram and on a stream alike.
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")
_LEADING_NEWLINES_RE = re.compile(rb"[\r\n]*")


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    blank = _BLANK_LINE_RE.search(data)
    if blank is not None:
        return data[: blank.start()], data[blank.end() :]
    # No blank line: a datagram may end after the last header.
    return data, b""


def _content_length(values: list[str]) -> int | None:
    """The one Content-Length a message declares, or None; SipError(400) otherwise.

    ``values`` are every Content-Length (or ``l``) field of the message. Two
    of them are refused even when they agree: a message framed one way by us
    and another way by a proxy is how requests are smuggled.
    """
    if not values:
        return None
    if len(values) > 1:
        raise SipError(400, f"{len(values)} Content-Length fields")
    # Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
    text = values[0].strip()
    if not DIGITS_RE.match(text):
        raise SipError(400, "Content-Length is not a number")
    length = int(text)
    if length > MAX_MESSAGE:
        raise SipError(513, f"Content-Length {length}")
    return length


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for raw in re.split(r"\r?\n", head):
        if len(raw) > MAX_LINE:
            raise SipError(513, "a header line is longer than 8 KiB")
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += " " + raw.strip()  # folded continuation (section 7.3.1)
        else:
            lines.append(raw)
    return lines


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one whole message; raises SipError with the status to answer.

    ``stream`` is True on TCP, where Content-Length is mandatory and exact.
    """
    if len(data) > MAX_MESSAGE:
        raise SipError(513, f"message of {len(data)} bytes")
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipError(400, "empty message")
    raw_head, body = _split_head(data)
    try:
        head = raw_head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError(400, "header bytes are not UTF-8") from None
    if "\x00" in head:
        raise SipError(400, "NUL in the header")
    lines = _unfold(head)
    start, header_lines = lines[0].strip(), [line for line in lines[1:] if line.strip()]
    if len(header_lines) > MAX_HEADERS:
        raise SipError(513, f"{len(header_lines)} header fields")
    headers = Headers()
    for line in header_lines:
        match = HEADER_LINE_RE.match(line)
        if match is None:
            raise SipError(400, f"malformed header line {line[:40]!r}")
        headers.add(match[1], match[2].strip())

    length = _content_length(headers.get_all("Content-Length"))
    if length is not None:
        if length > len(body):
            raise SipError(400, f"Content-Length {length} but {len(body)} bytes of body")
        # A datagram may carry trailing bytes past the body; they are ignored (18.3).
        body = body[:length]
    elif stream:
        raise SipError(400, "no Content-Length on a stream transport")

    status_match = STATUS_LINE_RE.match(start)
    if status_match is not None:
        if status_match[1] != "2.0":
            raise SipError(505, f"SIP/{status_match[1]}")
        response = SipResponse(int(status_match[2]), status_match[3], headers, body)
        for name in MANDATORY:
            if name not in headers:
                raise SipError(400, f"missing {name}")
        response.cseq  # noqa: B018 - validates
        return response

    request_match = REQUEST_LINE_RE.match(start)
    if request_match is None:
        raise SipError(400, "malformed start line")
    method, uri, version = request_match[1], request_match[2], request_match[3]
    if not METHOD_RE.match(method):
        raise SipError(400, "malformed method")
    if version != "2.0":
        raise SipError(505, f"SIP/{version}")
    request = SipRequest(method, uri, headers, body)
    for name in MANDATORY:
        if name not in headers:
            raise SipError(400, f"missing {name}")
    _, cseq_method = request.cseq
    if cseq_method != method:
        raise SipError(400, f"CSeq method {cseq_method} does not match {method}")
    request.top_via  # noqa: B018 - validates
    for name in ("From", "To"):
        NameAddr.parse(headers.get(name) or "")
    max_forwards = headers.get("Max-Forwards")
    # Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT (and 0..255, section 20.22)
    if max_forwards is not None and (not DIGITS_RE.match(max_forwards) or int(max_forwards) > 255):
        raise SipError(400, "malformed Max-Forwards")
    SipUri.parse(uri)
    return request


class StreamFramer:
    """Cuts a TCP byte stream into messages by Content-Length (section 18.3).

    Call ``feed`` with each chunk read from the connection; it returns the
    messages now complete, each for ``parse_message(..., stream=True)``.
    The Content-Length is read from the whole header section, wherever it
    stands, in either spelling and any case, folded or not: the same reading
    as ``parse_message``'s, so the two cannot disagree about where a message
    ends. A missing, repeated, non-decimal or oversized Content-Length, a
    header section over ``MAX_MESSAGE`` bytes or a chunk that would take the
    buffer past ``MAX_FRAMER_BUFFER`` raises ``SipError``; the connection
    is then beyond resynchronising, and the caller closes it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        # How far the buffer is known to hold no blank line: a peer that
        # trickles a header byte by byte costs one scan, not one per byte.
        self._scanned = 0
        # The size of the message whose header section is whole but whose
        # body is still arriving: the head is read once, not once per chunk.
        self._expected: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; returns the whole messages now complete. Raises SipError only."""
        if len(self._buffer) + len(data) > MAX_FRAMER_BUFFER:
            self._fail()
            raise SipError(513, "stream buffer overflow")
        self._buffer += data
        messages: list[bytes] = []
        while True:
            if self._expected is not None:
                if len(self._buffer) < self._expected:
                    return messages
                messages.append(bytes(self._buffer[: self._expected]))
                del self._buffer[: self._expected]
                self._expected = None
                self._scanned = 0
            # CRLF keep-alives (RFC 5626 section 3.5.1) between messages are skipped.
            newlines = _LEADING_NEWLINES_RE.match(self._buffer)
            skip = newlines.end() if newlines is not None else 0
            if skip:
                del self._buffer[:skip]
                self._scanned = 0
            # A blank line is at most 4 bytes: look again from 3 before the end.
            blank = _BLANK_LINE_RE.search(self._buffer, max(0, self._scanned - 3), MAX_MESSAGE + 4)
            if blank is None:
                if len(self._buffer) > MAX_MESSAGE:
                    self._fail()
                    raise SipError(513, "header section too long")
                self._scanned = len(self._buffer)
                return messages
            try:
                length = _framing_length(bytes(self._buffer[: blank.start()]))
            except SipError:
                self._fail()
                raise
            total = blank.end() + length
            if total > MAX_MESSAGE:
                self._fail()
                raise SipError(513, "message too large")
            self._expected = total

    def _fail(self) -> None:
        self._buffer.clear()
        self._scanned = 0
        self._expected = None


def _framing_length(head: bytes) -> int:
    """The Content-Length of a header section (start line first); SipError if none or bad."""
    # Latin-1 maps every byte to one character: the framer never fails on
    # encoding; parse_message refuses what is not UTF-8 afterwards.
    values = []
    for line in _unfold(head.decode("latin-1"))[1:]:
        match = HEADER_LINE_RE.match(line)
        if match is not None and canonical_name(match[1]) == "Content-Length":
            values.append(match[2])
    length = _content_length(values)
    if length is None:
        raise SipError(400, "no Content-Length on a stream transport")
    return length


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A response copying Via, From, To, Call-ID and CSeq from the request (section 8.2.6).

    A provisional or 2xx answer to an INVITE also copies its Record-Route
    headers, in order (section 12.1.1): a proxy in front records its route
    so that the caller's ACK and BYE come back through it.
    """
    out = Headers()
    copied = ["Via", "From", "To", "Call-ID", "CSeq"]
    if request.method == "INVITE" and 100 < status < 300:
        copied.append("Record-Route")
    for name in copied:
        for name_seen, value in request.headers:
            if name_seen.lower() == name.lower():
                if name == "To" and to_tag and ";tag=" not in value.replace(" ", "").lower():
                    value = f"{value};tag={to_tag}"
                out.add(name, value)
    for name, value in headers:
        out.add(name, value)
    if body:
        out.set("Content-Type", content_type or "application/sdp")
    return SipResponse(status, reason or REASONS.get(status, "Unknown"), out, body)
