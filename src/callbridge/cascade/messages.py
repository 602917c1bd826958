"""What bridge nodes tell each other over the bus: typed messages, JSON on the wire.

Sans-IO: ``encode(envelope)`` gives the text of one PostgreSQL ``NOTIFY``
payload, ``decode(text)`` gives the envelope back or raises ``BusError``
saying what is wrong with it, and nothing else (a fuzz invariant the tests
check). An envelope is at most ``MAX_PAYLOAD`` bytes (PostgreSQL refuses 8000
or more, and the seal comes on top: ``cascade.seal``) and carries the
protocol's ``VERSION``; a node that receives a version it does not speak
drops the message with that error.

Versions: each adds to the one before and takes nothing away, so a node
reads every version from 1 to its own. Version 2 added the origin's
incarnation (``OriginUp``, ``Feeding.incarnation``) and ``Joined.again``:
the fields it added have defaults (a version-1 message reads as before),
and a kind it added is refused in an envelope of version 1. Version 3 added
the hot standby origin (``cascade.lease``): the lease's epoch and whether
the origin is the active one (``Feeding.epoch``, ``Feeding.active``), an
origin's claim to be active (``Active``), and the moderator's actions told
by the active origin to the standby (``Replicated``). A version-2 origin's
``Feeding`` reads as epoch 0, active.

Every message travels in an ``Envelope`` naming its sender and its
addressee: a node id, ``ORIGIN`` (whichever node has the origin role) or
``EVERYONE``. Field values are checked as they are decoded (types, lengths,
ranges), so a handler never meets a malformed value.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from callbridge.bridge.commands import NodeCommand

VERSION = 3
# The version each kind first appeared in; the others are version 1's.
KIND_SINCE = {"origin_up": 2, "active": 3, "replicated": 3}
# PostgreSQL's limit on a NOTIFY payload is 8000 bytes: an envelope, sealed
# (``cascade.seal`` adds at most 118), keeps clear of it.
MAX_PAYLOAD = 7800
ORIGIN = "@origin"
EVERYONE = "@all"
MAX_TEXT = 200
# A replicated moderator's action is its JSON (``bridge.control.Action``): a name in it
# may be MAX_NAME characters, each up to six when escaped.
LONG_TEXT = {"replicated.action": 3000}
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
# An origin process's incarnation: 16 hex digits drawn when it starts.
INCARNATION = re.compile(r"^[0-9a-f]{16}$")


class BusError(ValueError):
    """A bus payload that cannot be read, or a message that cannot be sent; says why."""


def valid_node_id(text: str) -> str:
    """``text`` if it names a node (1-32 of letters, digits, ``._-``); BusError otherwise."""
    if not NODE_ID.match(text):
        raise BusError(f"not a node id: {text[:40]!r} (1-32 of A-Z a-z 0-9 . _ -)")
    return text


# -- the messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscribe:
    """Edge → origin, about once a second while the edge has callers on the event's call.

    Send the event's mix to ``media``; an edge silent for ``SUBSCRIPTION_TTL``
    seconds is sent nothing more.
    """

    kind: ClassVar[str] = "subscribe"
    event_id: int
    host: str
    port: int


@dataclass(frozen=True)
class Unsubscribe:
    """Edge → origin: the edge has nobody left on the event's call."""

    kind: ClassVar[str] = "unsubscribe"
    event_id: int


@dataclass(frozen=True)
class Feeding:
    """Origin → edge, answering ``Subscribe``: the origin's media address for callers' audio.

    ``incarnation`` names the origin process that answers (empty from a
    version-1 origin): an edge that sees it change tells the new one its
    callers again.
    """

    kind: ClassVar[str] = "feeding"
    event_id: int
    host: str
    port: int
    incarnation: str = ""
    # The lease's epoch this origin holds or knows of, and whether it is the
    # active origin (``cascade.lease``); a version-2 origin is the only one.
    epoch: int = 0
    active: bool = True


@dataclass(frozen=True)
class OriginUp:
    """Origin → everyone, once its bus is up: an origin process started (after a crash too).

    Every edge with callers tells it about them again (``Joined`` with
    ``again``) and asks for the mix (``Subscribe``), without waiting for its
    next ``Subscribe``'s answer to show the new ``incarnation``.
    """

    kind: ClassVar[str] = "origin_up"
    incarnation: str


@dataclass(frozen=True)
class Active:
    """Origin → everyone: this origin holds the lease at ``epoch`` (as it takes it, then each
    second).

    Edges play the mix of the origin with the highest epoch they have heard of
    and drop what a lower one sends; an origin that hears a higher epoch than
    its own stops being the active one.
    """

    kind: ClassVar[str] = "active"
    epoch: int
    incarnation: str


@dataclass(frozen=True)
class Replicated:
    """Active origin → the standby: what the moderator did, as it was done.

    ``what`` is ``moderate`` (``action`` is the ``bridge.control.Action`` as
    JSON), ``start`` or ``end``; ``event_state`` the event's state in the
    store as the active origin read it ("" when it did not). ``key`` is a key
    an edge's caller pressed (``actor`` the caller's call id on the origin,
    ``action`` the key): only in the log the active origin sends an origin
    that came up mid-call (``cascade.node``), which heard none of them.
    """

    kind: ClassVar[str] = "replicated"
    event_id: int
    what: str
    actor: str
    at: float
    action: str = ""
    event_state: str = ""


REPLICATED = frozenset({"moderate", "start", "end", "key"})


@dataclass(frozen=True)
class Joined:
    """Edge → origin: a caller of the edge joined the event's call."""

    kind: ClassVar[str] = "joined"
    event_id: int
    participant_id: str
    role: str  # "speaker" or "listener"
    caller_id: str
    dialled: str
    hold: bool  # the edge holds them: the call has not started by its window
    at: float  # POSIX seconds
    # Told again to an origin that restarted: it is not a new join (no second
    # row in the call log), and a caller the origin has already is no news.
    again: bool = False


@dataclass(frozen=True)
class Left:
    """Edge → origin: the caller's leg ended."""

    kind: ClassVar[str] = "left"
    participant_id: str
    reason: str
    at: float


@dataclass(frozen=True)
class Keyed:
    """Edge → origin: a key its caller pressed on the call (``*1``, ``*2``, ``*6``)."""

    kind: ClassVar[str] = "keyed"
    participant_id: str
    key: str
    at: float


@dataclass(frozen=True)
class Directive:
    """Origin → edge: carry this out for the edge's caller ``participant_id``.

    ``action`` is one of ``DIRECTIVES``; ``prompt`` names the prompt of a
    whisper or a farewell.
    """

    kind: ClassVar[str] = "directive"
    action: str
    participant_id: str
    prompt: str = ""
    reason: str = ""


DIRECTIVES = frozenset({"whisper", "open_line", "close_line", "farewell", "disconnect"})


@dataclass(frozen=True)
class CallState:
    """Origin → everyone: the event's call went live or ended."""

    kind: ClassVar[str] = "call_state"
    event_id: int
    state: str  # "live" or "ended"


Message = (
    Subscribe
    | Unsubscribe
    | Feeding
    | OriginUp
    | Active
    | Replicated
    | Joined
    | Left
    | Keyed
    | Directive
    | CallState
)
KINDS: dict[str, type[Message]] = {
    cls.kind: cls
    for cls in (
        Subscribe, Unsubscribe, Feeding, OriginUp, Active, Replicated, Joined, Left, Keyed,
        Directive, CallState,
    )
}  # fmt: skip
_CALL_STATES = frozenset({"live", "ended"})
_ROLES = frozenset({"speaker", "listener"})
_KEYS = frozenset("0123456789*#")


@dataclass(frozen=True)
class Envelope:
    """One message from ``sender`` to ``to`` (a node id, ``ORIGIN`` or ``EVERYONE``)."""

    sender: str
    to: str
    message: Message

    def for_node(self, node_id: str, is_origin: bool) -> bool:
        """Whether the node ``node_id`` (the origin, if ``is_origin``) is to read it."""
        if self.sender == node_id:
            return False
        return self.to in (node_id, EVERYONE) or (self.to == ORIGIN and is_origin)


# -- the wire ----------------------------------------------------------------------------------


def encode(envelope: Envelope) -> str:
    """The NOTIFY payload for ``envelope``; BusError if it is over ``MAX_PAYLOAD`` bytes."""
    body = {"v": VERSION, "from": envelope.sender, "to": envelope.to}
    body["kind"] = envelope.message.kind
    body.update(dataclasses.asdict(envelope.message))
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_PAYLOAD:
        raise BusError(f"a {envelope.message.kind} message of {len(text)} bytes is over the limit")
    return text


def decode(text: str | bytes) -> Envelope:
    """The envelope in one NOTIFY payload; BusError saying what is wrong, if anything is."""
    if len(text) > MAX_PAYLOAD:
        raise BusError(f"a payload of {len(text)} bytes is over the limit of {MAX_PAYLOAD}")
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BusError(f"not JSON: {error}") from None
    if not isinstance(body, dict):
        raise BusError("not a JSON object")
    version = body.pop("v", None)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise BusError(f"version {version!r} is not spoken here (this node speaks 1-{VERSION})")
    sender = valid_node_id(_text(body.pop("from", None), "from"))
    to = _text(body.pop("to", None), "to")
    if to not in (ORIGIN, EVERYONE):
        valid_node_id(to)
    kind = body.pop("kind", None)
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BusError(f"unknown message kind {kind!r}"[:100])
    if KIND_SINCE.get(cls.kind, 1) > version:
        raise BusError(f"{cls.kind} is not a message of version {version}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(body) - set(fields)
    if extra:
        raise BusError(f"{cls.kind}: unknown fields {sorted(extra)!r}"[:200])
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in body:
            if f.default is dataclasses.MISSING:
                raise BusError(f"{cls.kind}: {name} is missing")
            continue
        values[name] = _value(cls.kind, name, f.type, body[name])
    message = cls(**values)
    _check(message)
    return Envelope(sender, to, message)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BusError(f"{name} is not text")
    limit = LONG_TEXT.get(name, MAX_TEXT)
    if len(value) > limit:
        raise BusError(f"{name} is over {limit} characters")
    return value


def _value(kind: str, name: str, annotation: object, value: object) -> object:
    """``value`` if it has the field's type (int, float or str, as annotated)."""
    where = f"{kind}.{name}"
    if annotation in ("bool", bool):
        if not isinstance(value, bool):
            raise BusError(f"{where} is not true or false")
        return value
    if annotation in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise BusError(f"{where} is not a whole number in range")
        return value
    if annotation in ("float", float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BusError(f"{where} is not a number")
        number = float(value)
        if not 0.0 <= number < 1e11:
            raise BusError(f"{where} is out of range")
        return number
    return _text(value, where)


def _check(message: Message) -> None:
    """The checks beyond types: ranges and the values a field may take."""
    if isinstance(message, Subscribe | Feeding) and not 0 < message.port < 65536:
        raise BusError(f"{message.kind}: port {message.port} is out of range")
    if isinstance(message, Joined) and message.role not in _ROLES:
        raise BusError(f"joined: role {message.role!r} is not a caller's role")
    if isinstance(message, Keyed) and message.key not in _KEYS:
        raise BusError(f"keyed: {message.key!r} is not a key")
    if isinstance(message, Directive) and message.action not in DIRECTIVES:
        raise BusError(f"directive: unknown action {message.action!r}")
    if isinstance(message, CallState) and message.state not in _CALL_STATES:
        raise BusError(f"call_state: unknown state {message.state!r}")
    if isinstance(message, Replicated) and message.what not in REPLICATED:
        raise BusError(f"replicated: unknown {message.what!r}")
    if isinstance(message, Replicated) and message.what == "key" and message.action not in _KEYS:
        raise BusError(f"replicated: {message.action[:20]!r} is not a key")
    if isinstance(message, OriginUp | Feeding | Active):
        # A version-1 origin's Feeding names none.
        named = not isinstance(message, Feeding) or bool(message.incarnation)
        if named and not INCARNATION.match(message.incarnation):
            raise BusError(f"{message.kind}: not an incarnation: {message.incarnation[:40]!r}")


@dataclass(frozen=True)
class Tell(NodeCommand):
    """Send ``message`` over the bus to ``to`` (a node id, the origin, or every node).

    A command of the cascade's controllers (``cascade.controller``), carried
    out by the node (``cascade.node``).
    """

    to: str
    message: Message
