"""Kamailio as a carrier: digest authentication, a registrar, and the route to a callee.

The bridge's trunk points here. Kamailio challenges every REGISTER (401) and
every new INVITE (407) with SHA-256 digest, checks the answer against the
passwords in an ``htable`` (the auth module's ``pv_*_authenticate``; no
database), keeps registrations in memory (usrloc, ``kamcmd ul.dump``), and
relays an authenticated INVITE to the callee (a sipp UAS), record-routing so
the ACK and both sides' BYE pass through it.

With ``tls`` (a certificate and its key) it listens for SIP over TLS too
(``kamailio-tls-modules``) on ``tls_port`` of each of ``tls_hosts``, and
takes our connection's alias (RFC 5923) so its requests to us go back over
it; ``routes`` sends some numbers to callees of their own (a number -> a port); ``tls_client_ca``
makes the TLS listener on a host require a client certificate that CA signed.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import stop_tree
from tests.support.wait import wait_until

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=1
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
tcp_accept_aliases=yes
{tls_listen}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "htable.so"
loadmodule "ctl.so"
loadmodule "kex.so"
loadmodule "corex.so"
{tls_module}
modparam("ctl", "binrpc", "unix:{workdir}/kamailio_ctl")
modparam("htable", "htable", "users=>size=4;")
modparam("auth", "algorithm", "{algorithm}")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", {max_expires})

event_route[htable:mod-init] {{
{users}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "$sht(users=>$au)", "0")) {{
            xlog("L_NOTICE", "REGISTER of $tU: challenged\\n");
            www_challenge("$td", "1");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("INVITE")) {{
        xlog("L_NOTICE", "INVITE for $rU\\n");
        if (!pv_proxy_authenticate("$fd", "$sht(users=>$au)", "0")) {{
            proxy_challenge("$fd", "1");
            exit;
        }}
        consume_credentials();
        record_route();
{routes}        $ru = "sip:" + $rU + "@127.0.0.1:" + $var(port);
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""


@dataclass
class Carrier:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def rpc(self, *command: str) -> str:
        done = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.workdir / 'kamailio_ctl'}", *command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def registered(self) -> str:
        """``ul.dump``: the location table (empty of contacts before any REGISTER)."""
        return self.rpc("ul.dump")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def carrier(
    workdir: Path,
    port: int,
    callee_port: int,
    users: dict[str, str],
    *,
    algorithm: str = "SHA-256",
    max_expires: int = 3600,
    tls: tuple[Path, Path] | None = None,
    tls_port: int | None = None,
    routes: dict[str, int] | None = None,
    tls_hosts: tuple[str, ...] = ("127.0.0.1",),
    tls_client_ca: dict[str, Path] | None = None,
) -> Iterator[Carrier]:
    """Kamailio on 127.0.0.1:``port``, relaying INVITEs to 127.0.0.1:``callee_port``."""
    workdir.mkdir(parents=True, exist_ok=True)
    tls_listen = tls_module = ""
    if tls is not None:
        assert tls_port is not None
        mutual = "".join(
            f"[server:{host}:{tls_port}]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
            f"require_certificate = yes\nca_list = {ca}\nprivate_key = {tls[1]}\n"
            f"certificate = {tls[0]}\n\n"
            for host, ca in (tls_client_ca or {}).items()
        )
        (workdir / "tls.cfg").write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
            f"require_certificate = no\nprivate_key = {tls[1]}\ncertificate = {tls[0]}\n\n"
            + mutual
            + "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
        )
        tls_listen = "enable_tls=yes\n" + "\n".join(
            f"listen=tls:{host}:{tls_port}" for host in tls_hosts
        )
        tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{workdir / "tls.cfg"}")'
    chosen = "".join(
        f'        if ($rU == "{number}") {{ $var(port) = "{to}"; }}\n'
        for number, to in (routes or {}).items()
    )
    route_lines = f'        $var(port) = "{callee_port}";\n' + chosen
    lines = "\n".join(
        f'    $sht(users=>{name}) = "{password}";' for name, password in users.items()
    )
    cfg = workdir / "carrier.cfg"
    cfg.write_text(
        CFG.format(
            port=port,
            modules=MODULES,
            workdir=workdir,
            algorithm=algorithm,
            users=lines,
            max_expires=max_expires,
            tls_listen=tls_listen,
            tls_module=tls_module,
            routes=route_lines,
        )
    )
    log_path = workdir / "carrier.log"
    process = subprocess.Popen(
        ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(workdir), "-P",
         str(workdir / "kamailio.pid"), "-m", "32", "-M", "8"],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Carrier(port, workdir, process, log_path)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"kamailio exited:\n{running.log()[-3000:]}")
            return "uptime" in running.rpc("core.uptime")

        wait_until(
            up,
            15,
            "kamailio did not start; its log:",
            lambda: running.log()[-2000:],
        )
        yield running
    finally:
        stop_tree(process)
