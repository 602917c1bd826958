"""Signing the bus: each payload sealed by its node with a key every node of the cascade holds.

Anyone who can log in to the shared PostgreSQL can ``LISTEN`` and ``NOTIFY``
on the bus's channel (PostgreSQL has no privilege for either), the web app
included. So the nodes believe only what is sealed: HMAC-SHA256, under a
key kept in a file of its own (``callbridge cascade keygen``) that the media
planes read and nothing else does, over the sender's incarnation, a counter,
the time and the envelope (which names the sender). The payload on the wire::

    <64 hex: the MAC>:<16 hex: the incarnation>:<counter>:<milliseconds>:<envelope JSON>

Sans-IO: ``seal`` and ``unseal`` are pure, and ``ReplayGuard.check`` takes
the time as a parameter. What is refused raises a ``Refused`` naming why
(``reason``: unsigned, forged, replayed or stale), a ``BusError`` as any
other unreadable payload is.

Replays: each ``Bus`` draws an incarnation when it is made and counts its
messages from 1; a receiver takes a message only if its counter is above
the last it took from that incarnation, and only if its time is within
``WINDOW`` seconds of the receiver's clock (so the nodes' clocks must agree
to within that: NTP). An incarnation silent for ``FORGET`` seconds is
forgotten: by then none of its messages is fresh any more (a message taken
at ``h`` was stamped after ``h - WINDOW``, and is stale from
``h + 2 × WINDOW``). What the window leaves open: a receiver that has just
started remembers nothing, so a message sealed in the ``WINDOW`` seconds
before it started can be played to it once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from callbridge.cascade.messages import BusError

KEY_BYTES = 32
# Seconds a message's time may be off the receiver's clock, either way.
WINDOW = 30.0
FORGET = 3 * WINDOW
# Senders a guard remembers; only a holder of the key makes a new one.
MAX_SENDERS = 1_000
# What the seal adds to an envelope at most: MAC, incarnation, counter, time, four colons.
OVERHEAD = 64 + 16 + 19 + 15 + 4
_SEALED = re.compile(r"\A([0-9a-f]{64}):([0-9a-f]{16}):([0-9]{1,19}):([0-9]{1,15}):", re.ASCII)
# Whatever else this key might one day sign, a bus message's MAC is not its MAC.
_DOMAIN = b"callbridge-bus-v1\n"


Reason = Literal["unsigned", "forged", "replayed", "stale"]


class Refused(BusError):
    """A payload the bus drops for who sent it or when, not for what it says."""

    reason: ClassVar[Reason]


class Unsigned(Refused):
    reason: ClassVar[Reason] = "unsigned"


class Forged(Refused):
    reason: ClassVar[Reason] = "forged"


class Replayed(Refused):
    reason: ClassVar[Reason] = "replayed"


class Stale(Refused):
    reason: ClassVar[Reason] = "stale"


class KeyFileError(ValueError):
    """The bus's key file is missing, open to others or not a key; says which, in one line."""


@dataclass(frozen=True)
class Stamp:
    """Who sealed a message (the sender's incarnation), its number there, and when."""

    incarnation: str  # 16 hex digits, drawn when the sender's Bus was made
    counter: int  # from 1, one more for each message the incarnation sends
    at: float  # POSIX seconds, to the millisecond


class Stamper:
    """A sender's stamps: one incarnation, the counter going up by one each time."""

    def __init__(self) -> None:
        self.incarnation = secrets.token_hex(8)
        self.counter = 0

    def next(self, now: float) -> Stamp:
        self.counter += 1
        return Stamp(self.incarnation, self.counter, round(now * 1000) / 1000)


def _mac(key: bytes, signed: str) -> str:
    return hmac.new(key, _DOMAIN + signed.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, stamp: Stamp, envelope: str) -> str:
    """The payload that carries ``envelope`` (``messages.encode``'s text) with its stamp."""
    signed = f"{stamp.incarnation}:{stamp.counter}:{round(stamp.at * 1000)}:{envelope}"
    return f"{_mac(key, signed)}:{signed}"


def unseal(key: bytes, payload: str) -> tuple[Stamp, str]:
    """The stamp and the envelope's text of a sealed payload; ``Unsigned`` or ``Forged`` if not.

    The envelope is still to be decoded (``messages.decode``), and the stamp
    checked (``ReplayGuard.check``).
    """
    found = _SEALED.match(payload)
    if found is None:
        raise Unsigned(f"not sealed: {payload[:40]!r}")
    mac = found[1]
    if not hmac.compare_digest(mac, _mac(key, payload[len(mac) + 1 :])):
        raise Forged("the seal does not match (signed with another key, or altered)")
    return Stamp(found[2], int(found[3]), int(found[4]) / 1000), payload[found.end() :]


class ReplayGuard:
    """One receiver's memory of the senders' counters: a message is taken once, and fresh."""

    def __init__(self, window: float = WINDOW, forget: float = FORGET) -> None:
        self.window = window
        self.forget = forget
        # sender → incarnation → (the newest counter taken, when it was taken)
        self._taken: dict[str, dict[str, tuple[int, float]]] = {}

    def check(self, sender: str, stamp: Stamp, now: float) -> None:
        """Take ``stamp`` from ``sender`` at ``now``; ``Stale`` or ``Replayed`` if it may not be."""
        if abs(now - stamp.at) > self.window:
            raise Stale(
                f"from {sender}, {now - stamp.at:+.1f} s off this node's clock "
                f"(more than {self.window:.0f} s: are the nodes' clocks in step?)"
            )
        incarnations = self._taken.get(sender)
        if incarnations is None:
            if len(self._taken) >= MAX_SENDERS:
                self._prune(now)
            incarnations = self._taken[sender] = {}
        taken = incarnations.get(stamp.incarnation)
        if taken is not None and stamp.counter <= taken[0]:
            raise Replayed(
                f"from {sender}: number {stamp.counter} of {stamp.incarnation} "
                f"was taken already (the newest is {taken[0]})"
            )
        for incarnation, (_, when) in list(incarnations.items()):
            if now - when > self.forget:
                del incarnations[incarnation]
        incarnations[stamp.incarnation] = (stamp.counter, now)

    def _prune(self, now: float) -> None:
        for sender, incarnations in list(self._taken.items()):
            if all(now - when > self.forget for _, when in incarnations.values()):
                del self._taken[sender]


# -- the key file ------------------------------------------------------------------------------

# The file holds the key as hex on one line.
_KEY_FILE_SIZES = (2 * KEY_BYTES, 2 * KEY_BYTES + 1)


def generate_key_file(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600); KeyFileError if it exists or cannot be made."""
    key = secrets.token_bytes(KEY_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} exists: a cascade's nodes share one key (remove it first)"
        ) from None
    except OSError as error:
        raise KeyFileError(f"{path}: cannot be made ({error.strerror or error})") from None
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(descriptor, 0o600)
        handle.write(key.hex() + "\n")


def check_key_file(path: Path) -> None:
    """KeyFileError unless ``path`` looks like a key file only its owner can read.

    Looks, never reads: ``serve``'s supervisor checks the file before it
    forks the web app, which is not to hold the key, not even in memory it
    was given. The media plane reads it (``read_key``).
    """
    try:
        found = path.stat()
    except OSError as error:
        raise KeyFileError(f"{path}: {error.strerror or error}") from None
    if not stat.S_ISREG(found.st_mode):
        raise KeyFileError(f"{path} is not a file")
    if found.st_mode & 0o077:
        raise KeyFileError(
            f"{path} is open to others (mode {stat.S_IMODE(found.st_mode):04o}): chmod 600 {path}"
        )
    if found.st_size not in _KEY_FILE_SIZES:
        raise KeyFileError(f"{path} is not a bus key (make one with `callbridge cascade keygen`)")


def read_key(path: Path) -> bytes:
    """The key in ``path``; KeyFileError if the file is not one, or is open to others."""
    check_key_file(path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} is not a bus key (make one with `callbridge cascade keygen`)")
    return key
