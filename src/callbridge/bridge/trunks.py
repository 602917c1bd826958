"""Trunks as configuration, and the choice of trunk for a call we place (pure).

A TOML file (``callbridge serve --trunks FILE``) lists the carriers'
trunks: where each is (a host name or addresses, a port, a transport),
its account (username and password), whether we REGISTER to it, whether
calls we place may use it, and its priority. A call goes to the outbound
trunks in priority order (each of a trunk's addresses in turn); one that
never answers (``timeout``) or answers 408 or 5xx gives the call to the
next; any other refusal (a wrong password, 404, 486) ends the dial there.

A password may be written sealed (``callbridge trunk-password``: AES-GCM
under the key in ``key_file``, another file kept apart; ``bridge.trunk_secrets``),
so the trunks file at rest and its copies hold no password in the clear.

Why a file and not the database: the credentials are the operator's, like
the bus key (``cascade keygen``): kept in a file only the server's user may
read (``load`` refuses one that others can read), read by the media plane
alone, and never in a table that the web app, its API or a backup of the
database would show. Nothing here logs a password, and ``repr`` hides it.

A ``tls`` trunk is reached over SIP over TLS (RFC 3261 section 26; port
5061 unless the file says): the carrier's certificate is checked against
``tls_ca`` (its CA's certificates, or the carrier's own self-signed
certificate, pinned), else the system's CAs, and must name
``tls_server_name`` (default: ``host``, else the address dialled). With
``tls_cert`` and ``tls_key`` we show a certificate of our own (mutual TLS).
``srtp`` says what media calls placed through the trunk offer: ``off``
(plain RTP), ``offered`` (RTP/AVP with an ``a=crypto`` key: SRTP when the
callee takes it), ``required`` (RTP/SAVP: an answer in plain RTP ends the
call). What callers' offers must bring is ``serve --srtp-trunk``.

    key_file = "/run/credentials/callbridge/trunks.key"  # opens sealed passwords
    [dial]
    countries = [1, 44]        # country codes calls may be placed to
    ring_timeout = 45          # seconds a callee may ring

    [[trunk]]
    name = "carrier-a"
    host = "sip.carrier.example"   # or addresses = ["192.0.2.10", "192.0.2.11"]
    port = 5060                    # leave out: SRV records say (RFC 3263)
    transport = "udp"              # or "tcp", "tls"; leave out: NAPTR/SRV records say
    # tls_ca = "/etc/callbridge/carrier-ca.pem"   # tls: the CA (or the carrier's pinned cert)
    # tls_server_name = "sip.carrier.example"     # tls: the name its certificate must carry
    # tls_cert = "..." and tls_key = "..."        # tls: our client certificate (mutual TLS)
    srtp = "off"                   # or "offered", "required": the media of calls placed
    codecs = ["PCMU", "PCMA"]      # what calls placed offer; add "G722" or "opus" (wideband,
                                   # offered first) where the trunk carries them
    username = "bridge"
    password = "..."               # or "sealed:v1:..." (callbridge trunk-password)
    register = true
    outbound = true
    priority = 1                   # lower first
    timeout = 4.0                  # no answer at all this long: the next trunk
"""

from __future__ import annotations

import itertools
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from callbridge.bridge.trunk_secrets import SecretError, is_sealed, read_key_file, unseal
from callbridge.sip.locate import Target
from callbridge.sip.sdp import FORMATS, NARROWBAND, SUPPORTED, SrtpPolicy
from callbridge.sip.uac import Credentials, Failed, Route


class TrunkConfigError(ValueError):
    """A trunks file that cannot be used; the message says where and why (never a password)."""


class TrunkSpec(BaseModel):
    """One trunk as the file says it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str | None = Field(default=None, max_length=253)
    addresses: tuple[str, ...] = ()
    # No port and a host name: SRV says (RFC 3263); else 5060, or 5061 over TLS.
    port: int | None = Field(default=None, ge=1, le=65535)
    # None: a host name's NAPTR and SRV records say (RFC 3263); UDP for addresses.
    transport: Literal["udp", "tcp", "tls"] | None = None
    tls_ca: Path | None = None
    tls_server_name: str | None = Field(default=None, max_length=253)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    srtp: SrtpPolicy = SrtpPolicy.OFF
    # What calls placed through the trunk offer (SDP's names; ``sip.sdp.FORMATS``).
    codecs: tuple[str, ...] = NARROWBAND
    username: str | None = Field(default=None, max_length=128)
    password: SecretStr | None = None
    # "register" in the file (BaseModel's ABC has a ``register`` of its own).
    registers: bool = Field(default=False, alias="register")
    register_expires: int = Field(default=600, ge=60, le=86400)
    outbound: bool = True
    priority: int = Field(default=10, ge=0, le=1000)
    timeout: float = Field(default=32.0, gt=0.2, le=64.0)

    @model_validator(mode="after")
    def _check(self) -> TrunkSpec:
        tls_fields = (self.tls_ca, self.tls_server_name, self.tls_cert, self.tls_key)
        if self.transport in ("udp", "tcp") and any(f is not None for f in tls_fields):
            raise ValueError("tls_ca, tls_server_name, tls_cert and tls_key need transport = 'tls'")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        for path in (self.tls_ca, self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file")
        if not self.host and not self.addresses:
            raise ValueError("a trunk needs a host or addresses")
        unknown = [c for c in self.codecs if c.upper() not in FORMATS]
        if unknown or not self.codecs:
            raise ValueError(
                f"codecs: {', '.join(unknown) or 'none given'}; we speak {', '.join(SUPPORTED)}"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.registers and self.username is None:
            raise ValueError("a trunk that registers needs a username and password")
        return self

    @property
    def sip_port(self) -> int:
        return self.port or (5061 if self.transport == "tls" else 5060)

    @property
    def credentials(self) -> Credentials | None:
        if self.username is None or self.password is None:
            return None
        return Credentials(self.username, self.password.get_secret_value())


class DialSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    countries: tuple[int, ...] = (1,)
    ring_timeout: float = Field(default=45.0, gt=1, le=300)


class TrunksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The key that opens sealed passwords (``bridge.trunk_secrets``); kept elsewhere.
    key_file: Path | None = None
    dial: DialSpec = DialSpec()
    trunk: tuple[TrunkSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> TrunksFile:
        names = [t.name for t in self.trunk]
        if len(names) != len(set(names)):
            raise ValueError("trunk names must be unique")
        return self


def parse(text: str) -> TrunksFile:
    """A trunks file's text, checked; ``TrunkConfigError`` names the field at fault."""
    try:
        return TrunksFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise TrunkConfigError(f"not TOML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()
        )
        raise TrunkConfigError(problems) from None


def load(path: Path) -> TrunksFile:
    """Read ``path``; refuses a file that anyone but its owner may read (it holds passwords)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TrunkConfigError(
            f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    if path.stat().st_uid != os.getuid():
        raise TrunkConfigError(f"{path}: not owned by the server's user")
    return unseal_passwords(parse(path.read_text()))


def unseal_passwords(config: TrunksFile) -> TrunksFile:
    """``config`` with its sealed passwords opened by its ``key_file`` (in memory only)."""
    sealed = [
        t
        for t in config.trunk
        if t.password is not None and is_sealed(t.password.get_secret_value())
    ]
    if not sealed:
        return config
    if config.key_file is None:
        raise TrunkConfigError(
            f"trunk {sealed[0].name}: its password is sealed; the file needs key_file"
        )
    try:
        key = read_key_file(config.key_file)
        opened = {
            t.name: unseal(key, t.name, t.password.get_secret_value())  # type: ignore[union-attr]
            for t in sealed
        }
    except SecretError as error:
        raise TrunkConfigError(str(error)) from None
    trunks = tuple(
        t.model_copy(update={"password": SecretStr(opened[t.name])}) if t.name in opened else t
        for t in config.trunk
    )
    return config.model_copy(update={"trunk": trunks})


# -- the choice of trunk (pure) -------------------------------------------------------


@dataclass(frozen=True)
class Trunk:
    """A trunk ready to call through: its spec and where it is.

    ``targets`` (transport, address, port), in the order RFC 3263 gave them
    for a host name; else each of ``addresses`` on the spec's port and transport.
    """

    spec: TrunkSpec
    given: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        if self.targets:
            return tuple(dict.fromkeys(t.address for t in self.targets))
        return self.given

    def routes(self) -> list[Route]:
        spec = self.spec
        targets = self.targets or tuple(
            Target((spec.transport or "udp").upper(), a, spec.sip_port) for a in self.given
        )
        domain = spec.host or self.addresses[0]
        return [
            Route((t.address, t.port), domain, t.transport, spec.credentials, spec.timeout)
            for t in targets
        ]


@dataclass(frozen=True)
class Attempt:
    """Place the dial's INVITE (a fresh Call-ID) through ``trunk`` at ``route``."""

    dial_id: str
    call_id: str
    trunk: str
    route: Route


@dataclass(frozen=True)
class DialOver:
    """Every trunk tried, or one refused the call: the dial failed with ``status``."""

    dial_id: str
    status: int
    reason: str
    auth_failed: bool = False


def fails_over(failure: Failed) -> bool:
    """A trunk that timed out or answered 408 or 5xx passes the call on (the brief's rule)."""
    return failure.timed_out or failure.status == 408 or 500 <= failure.status < 600


@dataclass
class _Dial:
    dial_id: str
    left: list[tuple[str, Route]]
    tried: list[str] = field(default_factory=list)


class TrunkChooser:
    """The outbound trunks in order, and each dial's next one (failover)."""

    def __init__(self, trunks: list[Trunk]) -> None:
        ordered = sorted(
            (t for t in trunks if t.spec.outbound), key=lambda t: (t.spec.priority, t.spec.name)
        )
        self.candidates = [(t.spec.name, r) for t in ordered for r in t.routes()]
        self._dials: dict[str, _Dial] = {}
        self._of_call: dict[str, str] = {}
        self._counter = itertools.count(1)
        self.failovers = 0

    def start(self, dial_id: str) -> Attempt | DialOver:
        """The first attempt of a new dial."""
        dial = self._dials[dial_id] = _Dial(dial_id, list(self.candidates))
        return self._next(dial)

    def dial_of(self, call_id: str) -> str | None:
        return self._of_call.get(call_id)

    def failed(self, failure: Failed) -> Attempt | DialOver | None:
        """An attempt failed: the next trunk, or the end (None: not an attempt of ours)."""
        dial_id = self._of_call.pop(failure.call_id, None)
        dial = self._dials.get(dial_id) if dial_id is not None else None
        if dial is None:
            return None
        if fails_over(failure) and dial.left:
            self.failovers += 1
            return self._next(dial)
        del self._dials[dial.dial_id]
        return DialOver(dial.dial_id, failure.status, failure.reason, failure.auth_failed)

    def answered(self, call_id: str) -> str | None:
        """An attempt was answered: its dial is settled. Returns the dial's id."""
        dial_id = self._of_call.pop(call_id, None)
        if dial_id is not None:
            self._dials.pop(dial_id, None)
        return dial_id

    def _next(self, dial: _Dial) -> Attempt | DialOver:
        if not dial.left:
            self._dials.pop(dial.dial_id, None)
            return DialOver(dial.dial_id, 503, "no outbound trunk")
        name, route = dial.left.pop(0)
        dial.tried.append(name)
        call_id = f"{secrets.token_hex(8)}-{next(self._counter)}@callbridge"
        self._of_call[call_id] = dial.dial_id
        return Attempt(dial.dial_id, call_id, name, route)
