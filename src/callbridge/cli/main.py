"""The ``callbridge`` command.

Every subcommand takes the database from ``--db URL`` (before or after the
subcommand's name) or ``CALLBRIDGE_DB``; the default is a SQLite file under
./var. One-shot commands are quiet on stderr unless ``-v`` is given or a
migration runs (one line). A refused input exits non-zero
with one line that names the field and the reason.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from callbridge.events.errors import describe
from callbridge.events.schema import EventFile
from callbridge.sip.advertise import parse_host_port
from callbridge.store import layout
from callbridge.store.db import ENV_VAR, Database, default_url
from callbridge.store.events import EventStore, StoreError
from callbridge.store.files import restrict_umask

if TYPE_CHECKING:
    from callbridge.edge.varnish import CacheNode

EXIT_INPUT = 2


class CliError(Exception):
    """One line for the operator; the command exits with EXIT_INPUT."""


# An event file is a page of TOML; anything much larger is not one.
MAX_EVENT_FILE = 1024 * 1024


def load_event_file(path: Path) -> EventFile:
    """The event in ``path``, validated; raises ``CliError`` with one line saying what is wrong."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_EVENT_FILE + 1)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not an event file") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_EVENT_FILE:
        raise CliError(f"{path}: larger than {MAX_EVENT_FILE // 1024} KiB; not an event file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "TOML files are UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path}: not valid TOML ({exc})") from None
    try:
        return EventFile.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"{path}: {describe(exc.errors())}") from None


def _database(args: argparse.Namespace) -> Database:
    database = Database(args.db)
    database.upgrade()
    return database


def cmd_event_create(args: argparse.Namespace) -> int:
    spec = load_event_file(Path(args.file))
    record = EventStore(_database(args)).create(spec)
    print(record.id)
    return 0


def cmd_event_list(args: argparse.Namespace) -> int:
    store = EventStore(_database(args))
    records = store.list_events()
    if args.json:
        print(json.dumps([json.loads(s.model_dump_json()) for s in store.summaries()], indent=2))
        return 0
    if not records:
        print("no events")
        return 0
    for r in records:
        local = r.local_start
        print(
            f"{r.id:>4}  {r.company.ticker:<6} {local:%Y-%m-%d %H:%M} {local.tzname():<5} "
            f"{r.state.value:<9} {r.title}"
        )
    return 0


def cmd_event_show(args: argparse.Namespace) -> int:
    record = EventStore(_database(args)).get(args.id)
    print(record.model_dump_json(indent=2))
    return 0


def cmd_announce(args: argparse.Namespace) -> int:
    from callbridge.announce import render as announce

    record = EventStore(_database(args)).get(args.id)
    if args.format == "ics":
        sys.stdout.buffer.write(announce.render_ics(record, datetime.now(UTC), args.public_url))
        return 0
    renderers = {
        "text": announce.render_text,
        "html": announce.render_html,
        "md": announce.render_markdown,
    }
    print(renderers[args.format](record, args.public_url), end="")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Transcribe an event's newest recording: transcript.json and captions.vtt beside it."""
    import time

    from callbridge.replay import library
    from callbridge.store.calllog import CallLog, LogKind
    from callbridge.transcript.cli import ProgressBar
    from callbridge.transcript.engine import EngineUnavailable
    from callbridge.transcript.transcribe import TranscriptError, qa_start_in, transcribe_recording

    database = _database(args)
    record = EventStore(database).get(args.id)
    recordings = layout.recordings(Path(args.data_dir))
    directory = library.newest_assembled(recordings, record.id)
    if directory is None:
        raise CliError(f"event {record.id} has no assembled recording under {recordings}")
    # The Q&A starts when the first analyst's line was opened (the transcript marks it).
    opened = [e.at for e in CallLog(database).entries(record.id) if e.kind is LogKind.LINE_OPEN]
    bar = ProgressBar(sys.stderr)
    written = [0.0]

    def progress(fraction: float) -> None:
        bar(fraction)
        now = time.monotonic()
        if now - written[0] >= 0.5:  # the console polls; twice a second is plenty
            written[0] = now
            library.write_progress(directory, library.Progress("running", fraction))

    library.write_progress(directory, library.Progress("running", 0.0))
    try:
        transcript = transcribe_recording(
            directory,
            engine=args.engine,
            glossary=record.glossary,
            progress=progress,
            qa_start=qa_start_in(directory, opened),
        )
    except (TranscriptError, EngineUnavailable, OSError) as error:
        bar.close()
        library.write_progress(directory, library.Progress("failed", 0.0, str(error)))
        raise CliError(f"cannot transcribe event {record.id}: {error}") from None
    bar.close()
    library.write_progress(directory, library.Progress("done", 1.0))
    print(
        f"event {record.id}: {len(transcript.segments)} segments, "
        f"{transcript.duration_s:.0f} s of audio in {transcript.elapsed_s:.1f} s with "
        f"{transcript.engine} (real-time factor {transcript.real_time_factor:.2f})"
    )
    print(f"transcript: {directory / library.TRANSCRIPT}")
    return 0


def _read_password(name: str) -> str:
    password = os.environ.get("CALLBRIDGE_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"Password for {name}: ")
            if getpass.getpass("Again: ") != password:
                raise CliError("password: the two entries differ")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    from callbridge.store.users import UserStore

    operator = UserStore(_database(args)).add(args.name, _read_password(args.name))
    print(f"operator {operator.name} saved")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from callbridge.store.users import UserStore

    operator = UserStore(_database(args)).set_password(args.name, _read_password(args.name))
    print(f"operator {operator.name}: password changed; every session and token ended")
    return 0


def _duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: a positive span for ``--expires``."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not (number.isascii() and number.isdigit()) or len(number) > 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span such as 90m, 12h, 30d or 2w")
    if int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a token must last a positive time")
    return timedelta(seconds=int(number) * units[unit])


def cmd_user_token(args: argparse.Namespace) -> int:
    from callbridge.store.users import UserStore

    print(UserStore(_database(args)).issue_token(args.name, args.label, expires_in=args.expires))
    return 0


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def cmd_user_tokens(args: argparse.Namespace) -> int:
    from callbridge.store.users import UserStore

    now = datetime.now(UTC)
    found = UserStore(_database(args)).credentials(args.name, now)
    if not found:
        print(f"{args.name} has no sessions or tokens")
        return 0
    print(f"{'ID':<8} {'KIND':<8} {'CREATED':<20} {'LAST USED':<20} {'EXPIRES':<20} LABEL")
    for c in found:
        expires = _when(c.expires_at)
        if c.expires_at is not None and c.expires_at <= now:
            expires += " (expired)"
        print(
            f"{c.id:<8} {c.kind:<8} {_when(c.created_at):<20} {_when(c.last_used_at):<20} "
            f"{expires:<20} {c.label}"
        )
    return 0


def cmd_user_revoke(args: argparse.Namespace) -> int:
    from callbridge.store.users import UserStore

    users = UserStore(_database(args))
    if args.all:
        if args.id is not None:
            raise CliError("revoke: give an id or --all, not both")
        users.revoke_all(args.name)
        print(f"every session and token of {args.name} revoked")
    elif args.id is None:
        raise CliError("revoke: give an id (see `callbridge user tokens NAME`) or --all")
    else:
        users.revoke(args.name, args.id)
        print(f"{args.id} of {args.name} revoked")
    return 0


def _cache_node(
    args: argparse.Namespace,
    origin: tuple[str, int],
    workdir: Path,
    origin_socket: Path | None = None,
    standbys: tuple[tuple[str, int], ...] = (),
) -> CacheNode:
    from callbridge.edge.node import free_loopback_port
    from callbridge.edge.varnish import DEFAULT_VCL, CacheNode, parse_address

    tls = parse_address(args.tls_listen, args.host) if args.tls_listen else None
    if (tls is None) != (args.tls_cert is None):
        raise CliError("HTTPS needs both --tls-listen and --tls-cert")
    return CacheNode(
        listen=(args.host, args.port),
        origin=origin,
        workdir=workdir,
        tls_listen=tls,
        tls_pem=Path(args.tls_cert).resolve() if args.tls_cert else None,
        proxy_port=free_loopback_port() if tls else 0,
        memory_mb=args.cache_memory,
        vcl=Path(args.vcl).resolve() if args.vcl else DEFAULT_VCL,
        origin_socket=origin_socket,
        standbys=standbys,
    )


def cmd_cache(args: argparse.Namespace) -> int:
    from callbridge.edge.node import CacheUnavailable, run_cache_node
    from callbridge.edge.varnish import default_workdir, parse_address

    try:
        origin, *standbys = (parse_address(text) for text in args.origin)
        listen = (args.host, args.port)
        default = layout.cache_dir(Path("var"))
        workdir = Path(args.workdir) if args.workdir else default_workdir(listen, default)
        node = _cache_node(args, origin, workdir.resolve(), standbys=tuple(standbys))
        return run_cache_node(node)
    except (ValueError, CacheUnavailable) as error:
        raise CliError(str(error)) from None


def cmd_proxy(args: argparse.Namespace) -> int:
    from callbridge.edge.varnish import parse_address
    from callbridge.proxy.kamailio import (
        DEFAULT_CFG,
        Proxy,
        parse_carrier,
        parse_node,
        parse_speaker_line,
    )
    from callbridge.proxy.run import ProxyUnavailable, run_proxy

    try:
        proxy = Proxy(
            listen=parse_address(args.listen, "127.0.0.1"),
            nodes=tuple(parse_node(node) for node in args.node),
            carriers=tuple(parse_carrier(carrier) for carrier in args.carrier or ()),
            workdir=Path(args.workdir).resolve(),
            probe_interval=args.probe_interval,
            probe_threshold=args.probe_threshold,
            invite_timeout=args.invite_timeout,
            cfg=Path(args.cfg).resolve() if args.cfg else DEFAULT_CFG,
            speaker_nodes=tuple(parse_node(node) for node in args.speaker_node or ()),
            speaker_lines=tuple(parse_speaker_line(line) for line in args.speaker_line or ()),
        )
        return run_proxy(proxy)
    except (ValueError, ProxyUnavailable) as error:
        raise CliError(str(error)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from callbridge.config import LOOPBACK_TRUNKS, Settings
    from callbridge.edge.varnish import default_workdir, origin_socket
    from callbridge.server import serve

    cache = None
    host, port = args.host, args.port
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
        args.trusted_proxy or ()
    )
    socket: Path | None = None
    socket_group: int | None = None
    if args.cache:
        # Browsers reach the cache on --host/--port. The origin listens behind
        # it on 127.0.0.1 (believing nobody's X-Forwarded-For there) and on a
        # Unix socket only the cache can open, whose X-Forwarded-For it believes.
        host, port = "127.0.0.1", args.origin_port or args.port + 1
        try:
            workdir = default_workdir((args.host, args.port), layout.cache_dir(Path(args.data_dir)))
            socket, socket_group = origin_socket(workdir.resolve())
            cache = _cache_node(args, (host, port), workdir.resolve(), socket)
        except ValueError as error:
            raise CliError(str(error)) from None
    settings = Settings(
        db_url=args.db,
        http_host=host,
        http_port=port,
        trusted_proxies=trusted,
        cache_socket=socket,
        cache_socket_group=socket_group,
        sip_host=args.sip_host,
        sip_port=args.sip_port,
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        data_dir=Path(args.data_dir),
        rtp_port_min=args.rtp_ports[0],
        rtp_port_max=args.rtp_ports[1],
        trunk_networks=tuple(args.trunk) if args.trunk else LOOPBACK_TRUNKS,
        media_timeout=args.media_timeout,
        answer_delay=args.answer_delay,
        max_passcode_failures=args.max_passcode_failures,
        guess_budget=args.guess_budget,
        trunk_guess_budget=args.trunk_guess_budget,
        media_sender=args.media_sender,
        **_sip_tls(args),
        **_nat_settings(args),
        media_priority=args.media_priority,
        secure_cookies=args.secure_cookies,
        role=args.role,
        node_id=_node_id(args),
        bus_key_file=_bus_key_file(args),
        cascade_edges=_cascade_edges(args),
        standby=_standby(args),
        trunks_file=_trunks_file(args),
        call_me_countries=args.call_me_countries,
        live_captions=args.live_captions,
        transcripts=args.transcripts,
        **_smtp(args),
        metrics_listen=_metrics_listen(args),
    )
    serve(settings, cache=cache)
    return 0


def _sip_tls(args: argparse.Namespace) -> dict[str, Any]:
    """The TLS and SRTP settings, checked here (the certificate and key load)."""
    tls: dict[str, Any] = {"srtp": args.srtp, "srtp_trunks": tuple(args.srtp_trunk or ())}
    if args.sip_tls_port is None:
        return tls
    if not args.sip_tls_cert or not args.sip_tls_key:
        raise CliError("--sip-tls-port needs --sip-tls-cert and --sip-tls-key")
    from callbridge.bridge.sip_transport import server_context

    try:
        server_context(args.sip_tls_cert, args.sip_tls_key, args.sip_tls_ca)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise CliError(f"--sip-tls-cert/--sip-tls-key/--sip-tls-ca: {error}") from None
    ca = Path(args.sip_tls_ca).absolute() if args.sip_tls_ca else None
    return tls | {
        "sip_tls_port": args.sip_tls_port,
        "sip_tls_cert": Path(args.sip_tls_cert).absolute(),
        "sip_tls_key": Path(args.sip_tls_key).absolute(),
        "sip_tls_ca": ca,
    }


def _srtp_trunk(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]:
    network, _, policy = value.partition("=")
    if policy not in ("off", "offered", "required"):
        raise argparse.ArgumentTypeError("POLICY is off, offered or required")
    try:
        return ipaddress.ip_network(network), policy
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _smtp(args: argparse.Namespace) -> dict[str, Any]:
    """--smtp, --smtp-from and --smtp-ca as Settings' fields, checked here so serve starts clean."""
    if args.smtp is None:
        if args.smtp_from or args.smtp_ca or args.alert_email:
            raise CliError("--smtp-from, --smtp-ca and --alert-email go with --smtp URL")
        return {}
    from callbridge.mail.compose import InvalidAddress, Sender, valid_address
    from callbridge.mail.smtp import SmtpConfig, SmtpUrlError

    if not args.smtp_from:
        raise CliError("--smtp needs --smtp-from, the address mail comes from")
    if not args.public_url:
        # The emails' links (the webcast, unsubscribe) must open from a recipient's inbox.
        raise CliError("--smtp needs --public-url, where the emails' links lead")
    try:
        SmtpConfig.parse(args.smtp)
    except SmtpUrlError as error:
        raise CliError(f"--smtp: {error}") from None
    try:
        Sender.parse(args.smtp_from)
    except InvalidAddress as error:
        raise CliError(f"--smtp-from: {error}") from None
    alert_email = None
    if args.alert_email:
        try:
            alert_email = valid_address(args.alert_email)
        except InvalidAddress as error:
            raise CliError(f"--alert-email: {error}") from None
    ca = Path(args.smtp_ca) if args.smtp_ca else None
    return {
        "smtp_url": args.smtp,
        "smtp_from": args.smtp_from,
        "smtp_ca_file": ca,
        "alert_email": alert_email,
    }


def cmd_event_mail(args: argparse.Namespace) -> int:
    from callbridge.mail.core import parse_offsets, reminders_setting, show_offset
    from callbridge.store.outbox import MailSettings, Outbox

    outbox = Outbox(_database(args))
    EventStore(outbox.database).get(args.id)
    current = outbox.settings(args.id)
    reminders = current.reminders
    if args.reminders is not None:
        try:
            reminders = reminders_setting(args.reminders.split(","))
        except ValueError as error:
            raise CliError(f"--reminders: {error}") from None
    chosen = MailSettings(
        confirmation=current.confirmation if args.confirmation is None else args.confirmation,
        reminders=reminders,
        replay=current.replay if args.replay is None else args.replay,
    )
    outbox.set_settings(args.id, chosen)
    shown = ", ".join(show_offset(m) for m in parse_offsets(reminders))
    print(
        f"confirmation {'on' if chosen.confirmation else 'off'}; "
        f"reminders {shown or 'off'}; replay notice {'on' if chosen.replay else 'off'}"
    )
    return 0


def _country_codes(value: str) -> tuple[int, ...]:
    """``1,44`` as (1, 44): country calling codes, 1 to 3 digits each."""
    codes = [part.strip().lstrip("+") for part in value.split(",") if part.strip()]
    if not codes or not all(c.isdigit() and 1 <= len(c) <= 3 and c[0] != "0" for c in codes):
        raise argparse.ArgumentTypeError(f"{value!r}: give country codes such as 1,44")
    return tuple(sorted({int(c) for c in codes}))


def _metrics_listen(args: argparse.Namespace) -> tuple[str, int] | None:
    if not args.metrics_listen:
        return None
    from callbridge.edge.varnish import parse_address

    try:
        return parse_address(args.metrics_listen, "127.0.0.1")
    except ValueError as error:
        raise CliError(f"--metrics-listen: {error}") from None


def _trunks_file(args: argparse.Namespace) -> Path | None:
    """The trunks file, checked here (its mode, its fields) and read again by the media plane."""
    if not args.trunks:
        return None
    from callbridge.bridge.trunks import TrunkConfigError, load

    path = Path(args.trunks).absolute()
    try:
        load(path)
    except (OSError, TrunkConfigError) as error:
        raise CliError(f"--trunks: {error}") from None
    return path


def _bus_key_file(args: argparse.Namespace) -> Path | None:
    """A cascade node's bus key file, checked (looked at, not read: ``seal.check_key_file``)."""
    if args.role == "standalone":
        if args.bus_key_file:
            raise CliError("--bus-key-file is for a cascade node (--role origin or edge)")
        return None
    from callbridge.cascade.seal import KeyFileError, check_key_file

    if not args.bus_key_file:
        raise CliError(
            f"--role {args.role} needs --bus-key-file: make one with "
            "`callbridge cascade keygen PATH` and copy it to every node of the cascade"
        )
    path = Path(args.bus_key_file).absolute()
    try:
        check_key_file(path)
    except KeyFileError as error:
        raise CliError(str(error)) from None
    return path


def _cascade_edges(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The origin's registered edges: ``--edge NAME=HOST``, the host an IP address."""
    if not args.edge:
        if args.role == "origin":
            logging.getLogger(__name__).warning(
                "no --edge given: no edge of this origin will be sent its calls' mix"
            )
        return ()
    if args.role != "origin":
        raise CliError("--edge is for a cascade's origin (--role origin)")
    from callbridge.cascade.messages import BusError, valid_node_id

    edges: dict[str, str] = {}
    for text in args.edge:
        name, _, host = text.partition("=")
        try:
            valid_node_id(name)
            address = ipaddress.ip_address(host)
        except (BusError, ValueError):
            raise CliError(
                f"--edge {text!r}: not NODE_ID=IP_ADDRESS (e.g. edge-1=10.0.0.5)"
            ) from None
        if name in edges:
            raise CliError(f"--edge: {name} is given twice")
        edges[name] = str(address)
    return tuple(edges.items())


def cmd_cascade_keygen(args: argparse.Namespace) -> int:
    from callbridge.cascade.seal import KeyFileError, generate_key_file

    try:
        generate_key_file(Path(args.path))
    except KeyFileError as error:
        raise CliError(str(error)) from None
    print(f"{args.path}: a new bus key; copy it (mode 0600) to every node of the cascade")
    return 0


def cmd_trunk_password(args: argparse.Namespace) -> int:
    """Seal a trunk's password for the trunks file; it is read from stdin and never shown."""
    from callbridge.bridge.trunk_secrets import SecretError, new_key_file, read_key_file, seal

    path = Path(args.key)
    if args.new_key:
        try:
            new_key_file(path)
        except FileExistsError:
            raise CliError(
                f"--key {path}: exists; not overwritten (it opens sealed passwords)"
            ) from None
        print(
            f"# {path}: a new key (mode 0600); name it as key_file in the trunks file",
            file=sys.stderr,
        )
    try:
        key = read_key_file(path)
    except SecretError as error:
        raise CliError(str(error)) from None
    if sys.stdin.isatty():
        password = getpass.getpass(f"trunk {args.trunk}'s password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no password given (on standard input)")
    print(f'password = "{seal(key, args.trunk, password)}"')
    return 0


def _standby(args: argparse.Namespace) -> bool:
    """``--standby``: only an origin has one."""
    if args.standby and args.role != "origin":
        raise CliError("--standby is for a cascade's second origin (--role origin --standby)")
    return bool(args.standby)


def _node_id(args: argparse.Namespace) -> str:
    """The node's name on the cascade's bus; a cascade needs the shared PostgreSQL store."""
    if args.role == "standalone":
        return ""
    from callbridge.cascade.messages import BusError, valid_node_id
    from callbridge.cascade.node import default_node_id
    from callbridge.store.db import normalise_url

    if not normalise_url(args.db).startswith("postgresql"):
        raise CliError(f"--role {args.role} needs the shared PostgreSQL store (--db)")
    try:
        return valid_node_id(args.node_id) if args.node_id else default_node_id(args.sip_port)
    except BusError as error:
        raise CliError(str(error)) from None


def _nat_settings(args: argparse.Namespace) -> dict[str, Any]:
    """serve's NAT and in-band DTMF options as Settings fields (sip.advertise, rtp.inband)."""
    from callbridge.config import LOOPBACK_TRUNKS

    external = str(args.external_ip) if args.external_ip else None
    sip_host, sip_port = args.sip_advertise or (external, None)
    media = args.media_advertise or args.external_ip
    if args.local_net and not (sip_host or sip_port or media):
        raise CliError(
            "--local-net names the networks that are not told an advertised address: "
            "give --external-ip, --sip-advertise or --media-advertise with it"
        )
    trunks = tuple(args.trunk) if args.trunk else LOOPBACK_TRUNKS
    return {
        "sip_advertise": sip_host,
        "sip_advertise_port": sip_port,
        "media_advertise": str(media) if media else None,
        "local_networks": tuple(args.local_net or ()),
        "inband_dtmf_networks": trunks if args.inband_dtmf else tuple(args.inband_dtmf_from or ()),
    }


def _host_port(text: str) -> tuple[str, int | None]:
    try:
        return parse_host_port(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST[:PORT] ({error})") from None


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or not 0 < int(low) < int(high) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port range such as 20000-29999")
    return int(low), int(high)


def _guess_budget(text: str) -> tuple[int, float]:
    burst, sep, interval = text.partition(":")
    try:
        budget = int(burst), float(interval)
    except ValueError:
        budget = (0, 0.0)
    if not sep or budget[0] < 1 or not 0 < budget[1] < 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a guessing budget such as 100:120 (wrong codes, then seconds each)"
        )
    return budget


def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-listen",
        default=None,
        metavar="[HOST:]PORT",
        help="also serve HTTPS (HTTP/2 by ALPN) here, through hitch",
    )
    parser.add_argument(
        "--tls-cert", default=None, metavar="PEM", help="certificate chain and key, one PEM file"
    )
    parser.add_argument(
        "--cache-memory", type=int, default=256, help="cache size in MiB (default 256)"
    )
    parser.add_argument("--vcl", default=None, help="VCL file (default deploy/varnish)")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--db`` and ``-v``: on the command itself with their defaults, and on every
    subcommand with none (SUPPRESS), so that ``serve --db URL`` works as
    ``--db URL serve`` does and an option not repeated keeps the value given before."""
    parser.add_argument(
        "--db",
        default=default_url() if top else argparse.SUPPRESS,
        help=f"database URL (sqlite:///FILE or postgresql://...); default ${ENV_VAR} or ./var",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="log at debug level",
    )


class _Subcommand(argparse.ArgumentParser):
    """A subcommand's parser: takes the global options too (nested ones inherit the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _global_options(self, top=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbridge", description="Earnings calls: announce, host, webcast, replay."
    )
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Subcommand)

    serve = sub.add_parser("serve", help="run the web app and the SIP server")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--sip-host", default="127.0.0.1", help="SIP address (default 127.0.0.1)")
    serve.add_argument("--sip-port", type=int, default=5060, help="SIP port; 0 picks a free one")
    serve.add_argument(
        "--sip-tls-port", type=int, default=None, help="SIP over TLS port (5061); 0 picks one"
    )
    serve.add_argument("--sip-tls-cert", default=None, metavar="PEM", help="TLS certificate chain")
    serve.add_argument("--sip-tls-key", default=None, metavar="PEM", help="its private key")
    serve.add_argument(
        "--sip-tls-ca",
        default=None,
        metavar="PEM",
        help="mutual TLS: only clients with a certificate from this CA get in",
    )
    serve.add_argument(
        "--srtp",
        choices=["off", "offered", "required"],
        default="off",
        help="SRTP (SDES) for callers' media: required refuses plain RTP offers with 488 "
        "(default off)",
    )
    serve.add_argument(
        "--srtp-trunk",
        type=_srtp_trunk,
        action="append",
        metavar="CIDR=POLICY",
        help="SRTP policy for calls from one trunk network (repeat; the most specific wins)",
    )
    serve.add_argument("--public-url", default=None, help="the URL listeners reach us at")
    serve.add_argument("--data-dir", default="var", help="recordings, keys (default ./var)")
    serve.add_argument(
        "--rtp-ports",
        type=_port_range,
        default=(20000, 29999),
        metavar="LOW-HIGH",
        help="UDP ports for call media (default 20000-29999)",
    )
    serve.add_argument(
        "--trunk",
        type=ipaddress.ip_network,
        action="append",
        metavar="CIDR",
        help="a network allowed to send INVITEs (repeat; default loopback only)",
    )
    serve.add_argument(
        "--media-timeout",
        type=float,
        default=30.0,
        help="seconds without RTP before a call is dropped (default 30)",
    )
    serve.add_argument(
        "--answer-delay",
        type=float,
        default=0.25,
        help="seconds to ring before answering (default 0.25)",
    )
    serve.add_argument(
        "--max-passcode-failures",
        type=int,
        default=6,
        help="wrong passcodes from one caller (as the trunk asserts them) within 10 minutes "
        "before their calls are refused for 15 minutes; half as many slow their answers "
        "(default 6)",
    )
    serve.add_argument(
        "--guess-budget",
        type=_guess_budget,
        default=(100, 120.0),
        metavar="BURST:SECONDS",
        help="wrong passcodes a dialled number takes from all callers together before "
        "every answer on it slows down; once they are spent, one more every SECONDS "
        "(default 100:120)",
    )
    serve.add_argument(
        "--trunk-guess-budget",
        type=_guess_budget,
        default=(300, 10.0),
        metavar="BURST:SECONDS",
        help="the same for each trunk network, over all the numbers it calls (default 300:10)",
    )
    serve.add_argument(
        "--media-sender",
        choices=["auto", "io_uring", "sendto"],
        default="auto",
        help="how a frame goes to many listeners: io_uring where the kernel allows it, "
        "else one sendto each (default auto)",
    )
    serve.add_argument(
        "--external-ip",
        type=ipaddress.ip_address,
        metavar="IP",
        help="behind a NAT: the public address mapped to --sip-host, told to peers outside "
        "--local-net in Contact, Via and the SDP (sets --sip-advertise and --media-advertise)",
    )
    serve.add_argument(
        "--sip-advertise",
        type=_host_port,
        metavar="HOST[:PORT]",
        help="behind a NAT: our SIP host (and port, default --sip-port) as peers outside "
        "--local-net must see it (Contact, Via)",
    )
    serve.add_argument(
        "--media-advertise",
        type=ipaddress.ip_address,
        metavar="IP",
        help="behind a NAT: the address the SDP answers of peers outside --local-net name "
        "(forward the --rtp-ports range to the same ports)",
    )
    serve.add_argument(
        "--local-net",
        type=ipaddress.ip_network,
        action="append",
        metavar="CIDR",
        help="a network told the bound address, not the advertised one (repeat; "
        "loopback always is)",
    )
    serve.add_argument(
        "--inband-dtmf",
        action="store_true",
        help="listen for keys sent as tones in the audio on calls from every --trunk "
        "(for gateways that do not send RFC 4733; costs a little CPU per caller)",
    )
    serve.add_argument(
        "--inband-dtmf-from",
        type=ipaddress.ip_network,
        action="append",
        metavar="CIDR",
        help="the same for calls from this network, or whose media comes from it (behind "
        "a proxy: a carrier's media gateways), only (repeat)",
    )
    serve.add_argument(
        "--media-priority",
        choices=["realtime", "nice", "normal"],
        default="realtime",
        help="how the media plane's clock is scheduled: realtime (SCHED_RR for its event "
        "loop, else nice -10), nice (-10), normal (default realtime; both need CAP_SYS_NICE "
        "and fall back quietly; unless normal, the web app lowers itself to nice 5)",
    )
    serve.add_argument(
        "--secure-cookies",
        action="store_true",
        help="behind HTTPS: the session cookie is sent over HTTPS only, and responses "
        "carry Strict-Transport-Security",
    )
    serve.add_argument(
        "--trusted-proxy",
        type=ipaddress.ip_network,
        action="append",
        metavar="CIDR",
        help="cache nodes in front (callbridge cache on other hosts): their X-Forwarded-For "
        "names the client (repeat; --cache adds its own)",
    )
    serve.add_argument(
        "--cache",
        action="store_true",
        help="put the cache tier (Varnish) in front: browsers reach it on --host/--port, "
        "the origin listens on 127.0.0.1:--origin-port behind it and, for the cache, on a "
        "Unix socket only the cache can open (only there is X-Forwarded-For believed)",
    )
    serve.add_argument(
        "--origin-port", type=int, default=0, help="with --cache: the origin's port (--port + 1)"
    )
    serve.add_argument(
        "--role",
        choices=["standalone", "origin", "edge"],
        default="standalone",
        help="in a cascade of nodes sharing one PostgreSQL: the origin mixes each call, "
        "edges answer its listeners (default standalone: one node does everything)",
    )
    serve.add_argument(
        "--standby",
        action="store_true",
        help="with --role origin: start as the hot standby of the origin that holds the lease "
        "(it mixes, records and packages in parallel and takes over within a second when the "
        "active origin stops renewing; give it the same --edge list)",
    )
    serve.add_argument(
        "--node-id", default=None, help="this node's name on the cascade's bus (hostname-port)"
    )
    serve.add_argument(
        "--trunks",
        default=None,
        metavar="FILE",
        help="the carriers' trunks for calls placed (dial a speaker) and registrations: a TOML "
        "file, mode 0600 (it holds their passwords; see bridge/trunks.py)",
    )
    serve.add_argument(
        "--call-me-countries",
        type=_country_codes,
        default=(),
        metavar="CODES",
        help="the country codes call-me may dial, e.g. 1,44 (default: each event's own, those "
        "of its dial-in numbers); premium-rate and short numbers are never dialled",
    )
    serve.add_argument(
        "--bus-key-file",
        default=None,
        metavar="PATH",
        help="a cascade node's key for the bus (callbridge cascade keygen; the same on every "
        "node, mode 0600, never in the database); needed with --role origin or edge",
    )
    serve.add_argument(
        "--edge",
        action="append",
        metavar="NODE_ID=HOST",
        help="on a cascade's origin: an edge (its --node-id) and the IP address its calls' mix "
        "is sent to (repeat); a Subscribe from any other node is refused",
    )
    serve.add_argument(
        "--metrics-listen",
        default=None,
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics (/metrics) and the health check (/healthz) here, "
        "apart from the web port, which the cache tier passes to the public (default: off; "
        "HOST defaults to 127.0.0.1)",
    )
    serve.add_argument(
        "--no-live-captions",
        dest="live_captions",
        action="store_false",
        help="no live captions (by default a caption worker transcribes each live call)",
    )
    serve.add_argument(
        "--no-transcripts",
        dest="transcripts",
        action="store_false",
        help="no transcript after each call (by default the recording is transcribed once "
        "the call ends; `callbridge transcribe ID` makes one on demand)",
    )
    serve.add_argument(
        "--smtp",
        default=None,
        metavar="URL",
        help="send email (confirmations, reminders, replay notices) through this relay: "
        "smtp://user:password@host:587 (STARTTLS), smtps://…:465 (TLS), smtp+plain://host:25",
    )
    serve.add_argument(
        "--smtp-from", default=None, metavar="ADDRESS", help='with --smtp: "IR <ir@example.com>"'
    )
    serve.add_argument(
        "--smtp-ca", default=None, metavar="PEM", help="with --smtp: a CA file to trust as well"
    )
    serve.add_argument(
        "--alert-email",
        default=None,
        metavar="ADDRESS",
        help="with --smtp: email the operator here when a caller is slowed or refused for "
        "guessing passcodes and when a bridge node goes down or comes back",
    )
    _cache_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    cache = sub.add_parser(
        "cache", help="run a cache node (Varnish) in front of a callbridge origin"
    )
    cache.add_argument(
        "--origin",
        action="append",
        required=True,
        help="the origin's HOST:PORT; repeat for a hot standby origin (serve --standby), "
        "active one first: each is probed on /healthz and the first healthy one is used",
    )
    cache.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    cache.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    cache.add_argument(
        "--workdir",
        default=None,
        help="Varnish's working folder (default /var/lib/varnish/callbridge-HOST-PORT as "
        "root, else ./var/cache)",
    )
    _cache_arguments(cache)
    cache.set_defaults(func=cmd_cache)

    proxy = sub.add_parser(
        "proxy", help="run the SIP proxy (Kamailio) in front of bridge nodes (callbridge serve)"
    )
    proxy.add_argument(
        "--listen", default="5060", metavar="[HOST:]PORT", help="SIP (UDP) address (default 5060)"
    )
    proxy.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="HOST[:PORT]",
        help="a bridge node's SIP address (repeat); run each with --trunk <proxy>/32",
    )
    proxy.add_argument(
        "--speaker-node",
        action="append",
        metavar="HOST[:PORT]",
        help="a node (one of --node: the cascade's origin) that takes the speaker lines' calls "
        "(repeat)",
    )
    proxy.add_argument(
        "--speaker-line",
        action="append",
        metavar="NUMBER",
        help="a number only speakers dial (+15551230000, as the carrier sends it; repeat): "
        "its calls go to the --speaker-node, so no edge's loss silences a speaker",
    )
    proxy.add_argument(
        "--carrier",
        action="append",
        required=True,
        metavar="CIDR[:PORT]",
        help="a carrier network allowed to place calls, and its SIP port where it has one "
        "(192.0.2.0/24:5060; repeat)",
    )
    proxy.add_argument(
        "--workdir", default="var/proxy", help="Kamailio's files (default ./var/proxy)"
    )
    proxy.add_argument(
        "--probe-interval", type=int, default=5, help="seconds between OPTIONS probes (default 5)"
    )
    proxy.add_argument(
        "--probe-threshold",
        type=int,
        default=2,
        help="unanswered probes in a row that take a node out (default 2)",
    )
    proxy.add_argument(
        "--invite-timeout",
        type=float,
        default=2.0,
        help="seconds a node has to answer a probe or a new INVITE before the next is tried "
        "(default 2)",
    )
    proxy.add_argument("--cfg", default=None, help="routing script (default deploy/kamailio)")
    proxy.set_defaults(func=cmd_proxy)

    cascade = sub.add_parser("cascade", help="a cascade's bus key").add_subparsers(
        dest="cascade_command", required=True
    )
    keygen = cascade.add_parser(
        "keygen", help="write a new key for the cascade's bus to PATH (mode 0600)"
    )
    keygen.add_argument("path")
    keygen.set_defaults(func=cmd_cascade_keygen)

    sealer = sub.add_parser(
        "trunk-password",
        help="seal a trunk's password for the trunks file (read from standard input; prints "
        "the sealed line, never the password)",
    )
    sealer.add_argument("--trunk", required=True, help="the trunk's name (sealed in)")
    sealer.add_argument("--key", required=True, help="the key file (the trunks file's key_file)")
    sealer.add_argument("--new-key", action="store_true", help="make the key file first (0600)")
    sealer.set_defaults(func=cmd_trunk_password)

    event = sub.add_parser("event", help="create and list events").add_subparsers(
        dest="event_command", required=True
    )
    create = event.add_parser("create", help="create an event from a TOML file")
    create.add_argument("file")
    create.set_defaults(func=cmd_event_create)
    listing = event.add_parser("list", help="list events")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_event_list)
    show = event.add_parser("show", help="print one event as JSON")
    show.add_argument("id", type=int)
    show.set_defaults(func=cmd_event_show)
    mail = event.add_parser("mail", help="which emails an event sends (prints the settings)")
    mail.add_argument("id", type=int)
    mail.add_argument(
        "--reminders", default=None, help='before the start, e.g. "24h,15m"; "" for none'
    )
    for kind, what in (
        ("confirmation", "the registration's confirmation"),
        ("replay", "the replay notice"),
    ):
        mail.add_argument(
            f"--{kind}", dest=kind, action="store_true", default=None, help=f"send {what}"
        )
        mail.add_argument(f"--no-{kind}", dest=kind, action="store_false", help=f"no {what}")
    mail.set_defaults(func=cmd_event_mail)

    announce = sub.add_parser("announce", help="render an event's press release or invite")
    announce.add_argument("id", type=int)
    announce.add_argument("--format", choices=["text", "html", "md", "ics"], default="text")
    announce.add_argument(
        "--public-url",
        default=None,
        help="where listeners reach the server (as serve's): the webcast page's address "
        "when the event names no webcast_url",
    )
    announce.set_defaults(func=cmd_announce)

    transcribe = sub.add_parser(
        "transcribe", help="transcribe an event's recording (captions and transcript page)"
    )
    transcribe.add_argument("id", type=int)
    transcribe.add_argument("--data-dir", default="var", help="where serve keeps recordings")
    transcribe.add_argument("--engine", default=None, help="moonshine or pocketsphinx")
    transcribe.set_defaults(func=cmd_transcribe)

    user = sub.add_parser("user", help="operator accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="add an operator or set a password")
    add.add_argument("name")
    add.set_defaults(func=cmd_user_add)
    passwd = user.add_parser(
        "passwd", help="set an operator's password; ends all their sessions and tokens"
    )
    passwd.add_argument("name")
    passwd.set_defaults(func=cmd_user_passwd)
    token = user.add_parser("token", help="issue an API bearer token for an operator")
    token.add_argument("name")
    token.add_argument("--label", default="api")
    token.add_argument(
        "--expires",
        type=_duration,
        default=None,
        metavar="SPAN",
        help="refuse the token after this long: 90m, 12h, 30d, 2w (default: never)",
    )
    token.set_defaults(func=cmd_user_token)
    tokens = user.add_parser("tokens", help="list an operator's sessions and tokens")
    tokens.add_argument("name")
    tokens.set_defaults(func=cmd_user_tokens)
    revoke = user.add_parser("revoke", help="end one of an operator's sessions or tokens")
    revoke.add_argument("name")
    revoke.add_argument("id", nargs="?", help="s<n> or t<n>, as `user tokens` lists them")
    revoke.add_argument("--all", action="store_true", help="end every session and token")
    revoke.set_defaults(func=cmd_user_revoke)
    return parser


# The commands that run until stopped log as a server does; the others print
# their answer and stay quiet on stderr unless something is wrong.
SERVERS = frozenset({"serve", "cache"})


def _configure_logging(args: argparse.Namespace) -> None:
    """Debug with ``-v``; else INFO for servers, warnings only for one-shot commands.

    Either way, a migration that actually runs is said in one line
    (``store.db`` logs it at INFO).
    """
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    elif args.command in SERVERS:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    else:
        logging.basicConfig(level=logging.WARNING, format="callbridge: %(message)s")
        logging.getLogger("callbridge.store.db").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever any subcommand writes (the database, recordings, webcast files,
    # transcripts) is for the server's user only.
    restrict_umask()
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    try:
        result: int = args.func(args)
    except CliError as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except StoreError as exc:
        where = f"{exc.field}: " if exc.field else ""
        print(f"callbridge: {where}{exc.message}", file=sys.stderr)
        return EXIT_INPUT
    return result


if __name__ == "__main__":
    sys.exit(main())
