"""One SIP proxy as files and a command line: Kamailio with its dispatcher in front of the nodes.

Kamailio spreads new INVITEs over the bridge nodes (``callbridge serve``
processes), probes them with OPTIONS, record-routes so a call's in-dialog
requests reach the node that took it, refuses SIP from anyone but the
carriers' networks and the nodes, and relays a call's in-dialog requests
only between its carrier and its node (``deploy/kamailio/kamailio.cfg`` says
how and why). Nothing here starts a process: ``proxy.run`` does.

The routing script is the same everywhere; what differs between proxies is
written beside it into the working folder:

- ``callbridge-local.cfg``: the listen address, the control socket, the
  timers, where the two lists are, and the speaker lines (``SPEAKER_LINES``,
  a regular expression over the dialled number) where there are any;
- ``callbridge-secret.cfg`` (owner only): ``ROUTE_KEY``, the key of the
  Route parameter that marks the proxy's own calls (``route_token``); made
  once and kept in ``route.key``, so calls outlive a restart of the proxy;
- ``dispatcher.list``: the nodes, dispatcher set 1
  (``1 sip:HOST:PORT 0 0 duid=nodeN``: the unique id the call-load count
  is kept under; the port always written, as a node is known by its
  address and its port), and the speaker nodes (the origin) again as set 2
  (``2 sip:HOST:PORT 0 0 duid=speakerN``);
- ``carriers.list``: the carrier networks, permissions group 1
  (``1 NETWORK PREFIX PORT``: port 0 is any).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from callbridge.edge.varnish import Address, parse_address

# The repository's deploy/ folder; an installed copy can name its script with --cfg.
DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DEFAULT_CFG = DEPLOY / "kamailio" / "kamailio.cfg"

CFG_NAME = "kamailio.cfg"
LOCAL_NAME = "callbridge-local.cfg"
DISPATCHER_LIST = "dispatcher.list"
CARRIERS_LIST = "carriers.list"
SECRET_NAME = "callbridge-secret.cfg"
KEY_NAME = "route.key"
CTL_NAME = "kamailio_ctl"

KAMAILIO_USER = "kamailio"  # made by Debian's kamailio package

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NODES = 64  # one dispatcher set; more would want weights and a database
MAX_SPEAKER_LINES = 20

_LINE = re.compile(r"\+?([0-9]{3,15})")


def parse_speaker_line(text: str) -> str:
    """A speaker line as the carrier sends it in the Request-URI: ``+15551230000`` or its digits.

    Kept as its digits; the routing script matches them with or without a
    leading ``+``. Raises ValueError on anything else (spaces, dashes, letters:
    the carrier sends none).
    """
    match = _LINE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"speaker line {text!r}: a number as the carrier dials it (+15551230000)")
    return match[1]


@dataclass(frozen=True)
class Carrier:
    """A carrier's network, and the one port its SIP comes from and goes to (0: any)."""

    network: Network
    port: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} of carrier {self.network} is not a port")

    def __str__(self) -> str:
        return f"{self.network}:{self.port}" if self.port else str(self.network)


def parse_carrier(text: str) -> Carrier:
    """``NETWORK[/PREFIX]`` (any port) or ``NETWORK/PREFIX:PORT``; raises ValueError.

    The port comes after the prefix, which keeps an IPv6 network's colons
    apart from it (``2001:db8::/32:5060``).
    """
    network, port = text, 0
    if "/" in text:
        address, _, rest = text.rpartition("/")
        prefix, colon, port_text = rest.partition(":")
        if colon:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{text!r}: the port after the prefix is not a port")
            port = int(port_text)
        network = f"{address}/{prefix}"
    return Carrier(ipaddress.ip_network(network), port)


@dataclass(frozen=True)
class Proxy:
    """What one proxy needs to know.

    ``listen`` is where carriers send SIP (UDP) and the address the proxy
    record-routes; ``nodes`` are the bridge nodes' SIP addresses (SIP from a
    node's address on another port is a stranger's); ``carriers`` the
    networks allowed to place calls. A node is probed every
    ``probe_interval`` s and leaves the rotation after ``probe_threshold``
    probes in a row go unanswered, each allowed ``invite_timeout`` s (a new
    INVITE a node leaves unanswered that long goes to the next node).
    ``workdir`` holds the configuration and the control socket.

    ``speaker_lines`` are the numbers only speakers are given; a call to one
    goes to the ``speaker_nodes`` (the cascade's origin, each one of
    ``nodes``) by load, and to any node only when none of them is in service.
    A speaker on the origin is mixed there: the loss of an edge cannot
    silence them (on an edge, their voice reaches the call through that edge).
    """

    listen: Address
    nodes: tuple[Address, ...]
    carriers: tuple[Carrier, ...]
    workdir: Path
    probe_interval: int = 5
    probe_threshold: int = 2
    invite_timeout: float = 2.0
    children: int = 4
    memory_mb: int = 64
    cfg: Path = DEFAULT_CFG
    speaker_nodes: tuple[Address, ...] = ()
    speaker_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("a proxy needs at least one bridge node (--node)")
        if len(self.nodes) > MAX_NODES:
            raise ValueError(f"at most {MAX_NODES} bridge nodes")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError("a bridge node is named twice")
        if not self.carriers:
            raise ValueError("a proxy needs at least one carrier network (--carrier)")
        for host, _ in (self.listen, *self.nodes):
            # Kamailio here resolves nothing (dns=no): addresses only.
            ipaddress.ip_address(host)
        if ipaddress.ip_address(self.listen[0]).is_unspecified:
            # The address goes into Record-Route: callers and nodes must reach it.
            raise ValueError("the proxy listens on one address that carriers and nodes reach")
        if not 1 <= self.probe_interval <= 300 or not 1 <= self.probe_threshold <= 10:
            raise ValueError("probes: an interval of 1-300 s and a threshold of 1-10")
        if not 0.5 <= self.invite_timeout <= 30:
            raise ValueError("a node's time to answer an INVITE: 0.5-30 s")
        if bool(self.speaker_nodes) != bool(self.speaker_lines):
            raise ValueError(
                "speaker lines (--speaker-line) and the nodes that take them (--speaker-node) "
                "come together"
            )
        for node in self.speaker_nodes:
            if node not in self.nodes:
                # Set 1 is what the script knows nodes by (probes, relaying).
                raise ValueError(f"speaker node {node[0]}:{node[1]} is not one of the --node list")
        if len(set(self.speaker_nodes)) != len(self.speaker_nodes):
            raise ValueError("a speaker node is named twice")
        if len(self.speaker_lines) > MAX_SPEAKER_LINES:
            raise ValueError(f"at most {MAX_SPEAKER_LINES} speaker lines")
        for line in self.speaker_lines:
            if not re.fullmatch(r"[0-9]{3,15}", line):
                raise ValueError(f"speaker line {line!r}: digits only (parse_speaker_line)")

    @property
    def ctl_socket(self) -> Path:
        """The control socket ``kamcmd -s unix:PATH`` talks to (``dispatcher.list`` and more)."""
        return self.workdir / CTL_NAME

    def failover_bound(self) -> float:
        """Seconds at most from a node's death to its leaving the rotation.

        The last answered probe may have just gone out: ``probe_threshold``
        more intervals, the last probe's timeout on top.
        """
        return self.probe_interval * self.probe_threshold + self.invite_timeout


def _sip_uri(address: Address) -> str:
    host, port = address
    return f"sip:[{host}]:{port}" if ":" in host else f"sip:{host}:{port}"


def dispatcher_list(proxy: Proxy) -> str:
    """``dispatcher.list``: set 1, one node a line, in the order given; set 2, the speaker nodes.

    Each node carries a ``duid``: the dispatcher counts a node's active calls
    under it (algorithm 10, call-load distribution) and sends a new call to
    the node with the fewest. Among equals it takes the node listed *last*:
    Kamailio 5.6 keeps a set's nodes of equal priority in the reverse of the
    file's order (``add_dest2list`` appends, ``reindex_dests`` copies
    backwards) and ``ds_get_leastloaded`` keeps the first of the lowest
    count in that order (``kamcmd dispatcher.list`` shows it). Set 2 keeps
    its own counts: a speaker's call counts there, not in set 1.
    """
    return "".join(
        f"1 {_sip_uri(node)} 0 0 duid=node{n}\n" for n, node in enumerate(proxy.nodes, start=1)
    ) + "".join(
        f"2 {_sip_uri(node)} 0 0 duid=speaker{n}\n"
        for n, node in enumerate(proxy.speaker_nodes, start=1)
    )


def carriers_list(proxy: Proxy) -> str:
    """``carriers.list``: permissions group 1, one network a line, its port (0: any)."""
    return "".join(
        f"1 {c.network.network_address} {c.network.prefixlen} {c.port}\n" for c in proxy.carriers
    )


_KEY = re.compile(r"[0-9a-f]{32}")


def secret_cfg(key: str) -> str:
    """``callbridge-secret.cfg``: the route key as the routing script includes it."""
    if not _KEY.fullmatch(key):
        raise ValueError("a route key is 32 lowercase hex digits")
    return f'# Written by `callbridge proxy` from {KEY_NAME}.\n#!define ROUTE_KEY "{key}"\n'


def route_token(key: str, call_id: str) -> str:
    """The ``cbt`` Route parameter the routing script records for the call ``call_id``.

    The script's ``route[ROUTE_TOKEN]``, for tests and tools: the first 32
    hex digits of sha256 over the key, a colon and the Call-ID.
    """
    return hashlib.sha256(f"{key}:{call_id}".encode()).hexdigest()[:32]


def route_key(workdir: Path) -> str:
    """The proxy's route key, made (owner only) on the first start and kept after.

    A new key would orphan every call in progress: their in-dialog requests
    would carry a parameter the proxy no longer recognises.
    """
    path = workdir / KEY_NAME
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        return key
    if not _KEY.fullmatch(key):
        raise ValueError(f"{path} is not a route key (32 hex digits); remove it to make a new one")
    return key


def local_cfg(proxy: Proxy) -> str:
    """``callbridge-local.cfg``: what the routing script includes about this proxy."""
    host, port = proxy.listen
    listen = f"udp:[{host}]:{port}" if ":" in host else f"udp:{host}:{port}"
    workdir = proxy.workdir
    return (
        "# Written by `callbridge proxy` at start; changes here are lost.\n"
        f"listen={listen}\n"
        f"children={proxy.children}\n"
        f"#!define INVITE_TIMEOUT {round(proxy.invite_timeout * 1000)}\n"
        f"#!define PROBE_INTERVAL {proxy.probe_interval}\n"
        f"#!define PROBE_THRESHOLD {proxy.probe_threshold}\n"
        f'#!define CTL_SOCKET "unix:{proxy.ctl_socket}"\n'
        f'modparam("dispatcher", "list_file", "{workdir / DISPATCHER_LIST}")\n'
        f'modparam("permissions", "address_file", "{workdir / CARRIERS_LIST}")\n'
        + speaker_lines_cfg(proxy)
    )


def speaker_lines_cfg(proxy: Proxy) -> str:
    """``#!define SPEAKER_LINES``: the Request-URI users that go to set 2; nothing without any."""
    if not proxy.speaker_lines:
        return ""
    # Digits only (checked): nothing in them is special to a regex or to the script.
    return f'#!define SPEAKER_LINES "^[+]?({"|".join(proxy.speaker_lines)})$"\n'


def kamailio_command(proxy: Proxy, kamailio: str = "kamailio") -> list[str]:
    """``kamailio`` in the foreground, logging to stderr, with this proxy's configuration."""
    command = [
        kamailio,
        "-DD",  # no daemon: the caller holds the process
        "-E",  # log to stderr
        "-f",
        str(proxy.workdir / CFG_NAME),
        "-Y",
        str(proxy.workdir),
        "-P",
        str(proxy.workdir / "kamailio.pid"),
        "-m",
        str(proxy.memory_mb),
        "-M",
        "8",
    ]
    if os.geteuid() == 0:
        # It binds the port as root, then works as the Debian package's own user.
        command += ["-u", KAMAILIO_USER, "-g", KAMAILIO_USER]
    return command


def check_command(proxy: Proxy, kamailio: str = "kamailio") -> list[str]:
    """``kamailio -c``: parse the configuration and load its modules, start nothing."""
    return [kamailio, "-c", "-f", str(proxy.workdir / CFG_NAME)]


def write_files(proxy: Proxy) -> None:
    """Put the routing script, the local part, the route key and both lists in the working folder.

    Readable by all (Kamailio's user reads them), but for the route key and
    its include, which Kamailio reads before it leaves root. As root, the
    folder belongs to Kamailio's user, which creates its control socket and
    pid file there.
    """
    proxy.workdir.mkdir(parents=True, exist_ok=True)
    proxy.workdir.chmod(0o755)
    files = {
        CFG_NAME: proxy.cfg.read_text(),
        LOCAL_NAME: local_cfg(proxy),
        DISPATCHER_LIST: dispatcher_list(proxy),
        CARRIERS_LIST: carriers_list(proxy),
    }
    for name, text in files.items():
        path = proxy.workdir / name
        path.write_text(text)
        path.chmod(0o644)
    secret = proxy.workdir / SECRET_NAME
    secret.unlink(missing_ok=True)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret_cfg(route_key(proxy.workdir)))
    if os.geteuid() == 0:
        shutil.chown(proxy.workdir, KAMAILIO_USER, KAMAILIO_USER)


def parse_node(text: str, default_port: int = 5060) -> Address:
    """A node's ``HOST[:PORT]`` (IPv6 as ``[V6]`` or ``[V6]:PORT``); raises ValueError."""
    if text.count(":") == 0 or (text.startswith("[") and text.endswith("]")):
        return parse_address(f"{text}:{default_port}")
    return parse_address(text)
