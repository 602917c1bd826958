"""One cache node as files and command lines: Varnish, and hitch in front of it for HTTPS.

Varnish caches and coalesces (``deploy/varnish/callbridge.vcl`` says what and
why). It does not speak TLS; hitch, made by the same people for this, ends
TLS (HTTP/2 offered by ALPN) and hands the connection to Varnish over the
PROXY protocol, so Varnish still knows the browser's address. Nothing here
starts a process: ``edge.node`` does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import pwd
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# The repository's deploy/ folder; an installed copy can name its VCL with --vcl.
DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DEFAULT_VCL = DEPLOY / "varnish" / "callbridge.vcl"

Address = tuple[str, int]


def parse_address(text: str, default_host: str = "127.0.0.1") -> Address:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` as (host, port); raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not an address such as 127.0.0.1:8000")
    return host, int(port)


def _join(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class CacheNode:
    """What one cache node needs to know.

    ``listen`` is where browsers reach it over HTTP; ``tls_listen`` (with
    ``tls_pem``, certificate chain and key in one PEM file) over HTTPS.
    ``proxy_port`` is the loopback port hitch hands TLS connections to
    Varnish on. ``workdir`` holds Varnish's working files and its
    configuration (``default_workdir`` gives one).
    """

    listen: Address
    origin: Address
    workdir: Path
    # More origins, tried in turn when the one before is down (``backend_vcl``):
    # a hot standby origin (serve --role origin --standby) packages the same webcast.
    standbys: tuple[Address, ...] = ()
    tls_listen: Address | None = None
    tls_pem: Path | None = None
    proxy_port: int = 0
    memory_mb: int = 256
    vcl: Path = DEFAULT_VCL
    # serve --cache: Varnish reaches its own origin on this Unix socket, not ``origin``.
    origin_socket: Path | None = None
    extra_params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.tls_listen is None) != (self.tls_pem is None):
            raise ValueError("HTTPS needs both an address and a certificate (PEM)")
        if self.tls_listen is not None and not self.proxy_port:
            raise ValueError("HTTPS needs a loopback port between hitch and Varnish")


def default_workdir(listen: Address, fallback: Path) -> Path:
    """Where a node keeps its files: somewhere Varnish's own user can read, when run as root.

    As root, Varnish compiles the VCL (and runs) as its unprivileged user,
    which must read the configuration: not inside callbridge's private data
    folder, then, but beside Varnish's own state. Otherwise ``fallback``.
    """
    if os.geteuid() == 0:
        name = f"callbridge-{listen[0]}-{listen[1]}".replace(":", "_")
        return Path("/var/lib/varnish") / name
    return fallback


HITCH_USER = "_hitch"  # made by Debian's hitch package
VARNISH_WORKER = "vcache"  # the user Debian's varnishd (as root, -j unix) runs its worker as
# sun_path is 108 bytes on Linux.
_MAX_SOCKET_PATH = 100


def origin_socket(workdir: Path) -> tuple[Path, int | None]:
    """Where ``serve --cache``'s origin listens for its own Varnish, and the group that may.

    A Unix socket in a folder only the cache can reach (web.forwarded says
    why): as root, Varnish's worker runs as ``vcache``, so the folder is
    0750 and the socket 0660 with that user's group; otherwise Varnish runs
    as this user and both are the owner's only (group None).
    """
    group = pwd.getpwnam(VARNISH_WORKER).pw_gid if os.geteuid() == 0 else None
    path = (workdir / "origin" / "origin.sock").absolute()
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"callbridge-origin-{digest}" / "origin.sock"
    return path, group


# Varnish's parameters for a crowd of LL-HLS listeners (varnishd -p).
PARAMETERS: dict[str, str] = {
    # Browsers ask for HTTP/2 over TLS (hitch offers it by ALPN).
    "feature": "+http2",
    # A listener's connection is busy for most of every part (its blocking
    # reload waits at the origin); idle ones between parts last milliseconds.
    "timeout_idle": "30",
    # A crowd joining at the top of the hour opens thousands of connections at once.
    "listen_depth": "4096",
    "thread_pool_min": "200",
    "thread_pool_max": "5000",
    # No stale answers: a live playlist must be the newest (the VCL sets grace 0 too).
    "default_grace": "0",
    "default_keep": "0",
}


def backend_vcl(
    origin: Address, socket: Path | None = None, standbys: tuple[Address, ...] = ()
) -> str:
    """``backend.vcl``: the origin, as the VCL includes it (on ``socket`` if given).

    The timeouts leave room for a blocking playlist request, which the origin
    holds until the next part exists (at most ``web.media.BLOCK_TIMEOUT``).
    With ``standbys``, every origin is a backend (``failover_vcl``).
    """
    if standbys:
        if socket is not None:
            raise ValueError("origins on a Unix socket have no standby")
        return failover_vcl((origin, *standbys))
    host, port = origin
    ipaddress.ip_address(host)  # Varnish resolves names once, at load: ask for an address
    if socket is not None and '"' in str(socket):
        raise ValueError(f"{socket} cannot be named in VCL")
    where = (
        f'    .path = "{socket}";\n'
        if socket is not None
        else f'    .host = "{host}";\n    .port = "{port}";\n'
    )
    return (
        "backend origin {\n" + where + "    .connect_timeout = 2s;\n"
        "    .first_byte_timeout = 15s;\n"
        "    .between_bytes_timeout = 10s;\n"
        "    .max_connections = 1000;\n"
        "}\n"
    )


def failover_vcl(origins: tuple[Address, ...]) -> str:
    """Every origin a backend, probed on ``/healthz``, in a ``fallback`` director in order.

    The first healthy origin gets every request (the active one: list it
    first); when its probe fails (two of the last three, half a second
    apart) the next one does. Between its death and the probe noticing, a
    request that fails to connect, or that the dying origin answers with a
    5xx, is tried once more on the next origin (``vcl_backend_error``,
    ``vcl_backend_response``): a player's blocking reload waits a moment
    longer instead of failing. The origins package the same webcast on one
    timeline (``webcast.live``), so the playlist goes on where it was. These
    subroutines run before callbridge.vcl's own of the same name (Varnish
    joins them in the order it reads them) and return only when they retry.
    """
    names = [f"origin_{n}" if n else "origin" for n in range(len(origins))]
    lines = [
        "import directors;",
        "",
        "probe callbridge_health {",
        '    .url = "/healthz";',
        "    .interval = 0.5s;",
        "    .timeout = 0.4s;",
        "    .window = 3;",
        "    .threshold = 2;",
        "    .initial = 2;",
        "}",
    ]
    for name, (host, port) in zip(names, origins, strict=True):
        ipaddress.ip_address(host)
        lines += [
            f"backend {name} {{",
            f'    .host = "{host}";',
            f'    .port = "{port}";',
            "    .probe = callbridge_health;",
            "    .connect_timeout = 0.5s;",
            "    .first_byte_timeout = 15s;",
            "    .between_bytes_timeout = 10s;",
            "    .max_connections = 1000;",
            "}",
        ]
    lines += ["", "sub vcl_init {", "    new origins = directors.fallback();"]
    lines += [f"    origins.add_backend({name});" for name in names]
    # The retry's order: from the second on, the first last.
    lines += ["    new origins_retry = directors.fallback();"]
    lines += [f"    origins_retry.add_backend({name});" for name in (*names[1:], names[0])]
    lines += [
        "}",
        "",
        "sub vcl_recv {",
        "    set req.backend_hint = origins.backend();",
        "}",
        "",
        "sub vcl_backend_fetch {",
        "    if (bereq.retries > 0) {",
        "        set bereq.backend = origins_retry.backend();",
        # A retry keeps the bereq as the last try left it: callbridge.vcl's own
        # vcl_backend_fetch, after this one, must find the gate cookie where it
        # first did, or the retry would reach the origin without it.
        "        if (bereq.http.X-CB-Gate-Cookie) {",
        '            set bereq.http.X-CB-Event = "retry";',
        "            set bereq.http.X-CB-Cookie = bereq.http.X-CB-Gate-Cookie;",
        "        }",
        "    }",
        "}",
        "",
        "sub vcl_backend_response {",
        '    if (beresp.status >= 500 && bereq.retries < 1 && bereq.method != "POST") {',
        "        return (retry);",
        "    }",
        "}",
        "",
        "sub vcl_backend_error {",
        "    if (bereq.retries < 1) {",
        "        return (retry);",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def hitch_conf(node: CacheNode) -> str:
    """hitch's configuration: TLS on ``tls_listen``, PROXY v2 to Varnish's loopback port."""
    assert node.tls_listen is not None and node.tls_pem is not None
    return (
        f'frontend = "[{node.tls_listen[0]}]:{node.tls_listen[1]}"\n'
        f'backend = "[127.0.0.1]:{node.proxy_port}"\n'
        f'pem-file = "{node.tls_pem}"\n'
        'alpn-protos = "h2, http/1.1"\n'
        "write-proxy-v2 = on\n"
        "workers = 1\n"
        "backlog = 4096\n"
        "daemon = off\n"
        'ciphers = "EECDH+AESGCM:EDH+AESGCM"\n'
        "tls-protos = TLSv1.2 TLSv1.3\n"
        # hitch reads the key as the user that starts it, then refuses to
        # serve as root: its workers run as the Debian package's own user.
        + (f'user = "{HITCH_USER}"\ngroup = "{HITCH_USER}"\n' if os.geteuid() == 0 else "")
    )


def varnishd_command(node: CacheNode, varnishd: str = "varnishd") -> list[str]:
    """``varnishd`` in the foreground with the callbridge VCL and this node's origin."""
    command = [
        varnishd,
        "-F",
        "-n",
        str(node.workdir / "varnish"),
        "-a",
        f"http={_join(node.listen)}",
        "-f",
        str(node.workdir / VCL_NAME),
        "-p",
        f"vcl_path={node.workdir}",
        "-s",
        f"malloc,{node.memory_mb}m",
    ]
    if node.tls_listen is not None:
        command += ["-a", f"tls=127.0.0.1:{node.proxy_port},PROXY"]
    for name, value in {**PARAMETERS, **node.extra_params}.items():
        command += ["-p", f"{name}={value}"]
    if os.geteuid() != 0:
        # Only root can hand the worker to Varnish's own user.
        command += ["-j", "none"]
    return command


def hitch_command(node: CacheNode, hitch: str = "hitch") -> list[str]:
    return [hitch, f"--config={node.workdir / 'hitch.conf'}"]


VCL_NAME = "callbridge.vcl"


def write_files(node: CacheNode) -> None:
    """Put the VCL, ``backend.vcl`` (and ``hitch.conf``) in the node's working folder.

    Readable by all (Varnish's user compiles them); they hold no secret. The
    certificate stays where it is, read by hitch as the user that runs it.
    """
    node.workdir.mkdir(parents=True, exist_ok=True)
    node.workdir.chmod(0o755)
    files = {
        VCL_NAME: node.vcl.read_text(),
        "backend.vcl": backend_vcl(node.origin, node.origin_socket, node.standbys),
    }
    if node.tls_listen is not None:
        files["hitch.conf"] = hitch_conf(node)
    for name, text in files.items():
        path = node.workdir / name
        path.write_text(text)
        path.chmod(0o644)
