#!/usr/bin/env python3
"""Live captions: delay in the player, word error rate live and offline, CPU, media clock.

One run, three calls on fresh servers, everything real: ``callbridge serve``
on loopback, a sipp speaker playing an espeak-ng paragraph (the same one as
tests/telephony/test_live_captions.py, read ``--repeats`` times, a pause
between its parts) and headless Chromium playing the webcast through hls.js.

* captions on: the page records each cue as it becomes active and the
  player's position over time. The caption delay is from the player reaching
  a cue's last word to the cue showing (p50 and p90), and from its first word;
  the worker's part of it (cue made after the words ended, on the mix's clock)
  is shown beside it. After the call the offline pass transcribes the
  recording: word error rate of each against the paragraph, and of the live
  text against the offline one.
* CPU: the caption worker's CPU seconds per second of call, and the whole
  server's (its process tree) with captions on and off.
* the media clock: two more servers, captions on and off, each with a call
  of the same speaker at the same time (so under the same load): p99 (and
  max) tick lateness from ``/api/bridge/stats`` of each.
* where the delay goes, per cue, on the one wall clock of the machine: the
  words end in the mix; the worker cuts the piece (the pause heard, plus the
  hand-off); its decode; the cue made until the page's first subtitle
  playlist that lists its segment (the segment's publication and hls.js's
  reload); that segment loaded; the cue shown. Beside them the player's
  latency (the words in the mix to the words heard).

The server (and its caption worker) runs on ``--server-core``, Chromium,
sipp and this script on ``--client-core`` (taskset)::

    .venv/bin/python bench/captions_bench.py               # paragraph read twice
    .venv/bin/python bench/captions_bench.py --repeats 4 --json out.json

On a machine shared with other work the worker (nice 10 by default) gets a
small share of the CPU: ``--nice 0`` gives it an even one. The load average
is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from figures import cpu_seconds  # noqa: E402
from tests.support.captions import COLLECT, PARTS, heard_at, side_by_side, speech_stream  # noqa: E402
from tests.support.chromium import launch  # noqa: E402
from tests.support.sipp import call_in  # noqa: E402
from tests.telephony.conftest import RunningServer, start_server  # noqa: E402

from callbridge.store import layout  # noqa: E402
from callbridge.transcript.live import SKIPPED  # noqa: E402
from callbridge.transcript.transcribe import transcribe_recording  # noqa: E402
from callbridge.transcript.wer import word_error_rate  # noqa: E402


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def words(text: str) -> str:
    return " ".join(text.split())


def settle(server: RunningServer, event_id: int, quiet_s: float = 8.0) -> list[dict[str, Any]]:
    """The console's live transcript once nothing new has come for ``quiet_s``."""
    last: list[dict[str, Any]] = []
    since = time.monotonic()
    deadline = since + 120
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.api("GET", f"/api/events/{event_id}/captions/live").json()["cues"]
        if now != last:
            last, since = now, time.monotonic()
    return last


# The page's subtitle playlist loads and fragment loads (hls.js events), and how its
# player's position maps to the mix's wall clock (program date-time less position).
STAGES = """
() => {
  window.__subsLoaded = [];
  window.__subsFrags = [];
  window.__pdtOffsets = [];
  const hls = document.getElementById('webcast').hlsPlayer;
  const media = document.getElementById('media');
  hls.on(window.Hls.Events.SUBTITLE_TRACK_LOADED, (_e, data) => {
    window.__subsLoaded.push([Date.now(), data.details.endSN]);
  });
  hls.on(window.Hls.Events.SUBTITLE_FRAG_PROCESSED, (_e, data) => {
    window.__subsFrags.push([Date.now(), data.frag.sn]);
  });
  setInterval(() => {
    const date = hls.playingDate;
    if (date && !media.paused) {
      window.__pdtOffsets.push(date.getTime() / 1000 - media.currentTime);
    }
  }, 200);
}
"""


def stages(
    lines: list[dict[str, Any]],
    shown: dict[tuple[str, int], dict[str, Any]],
    positions: list[list[float]],
    loaded: list[list[float]],
    frags: list[list[float]],
    offsets: list[float],
) -> dict[str, float | None]:
    """Median seconds of each stage of the caption delay (see the module docstring)."""
    if not offsets:
        return {}
    offset = sorted(offsets)[len(offsets) // 2]  # mix wall clock = offset + media time
    cut, decode, listed, fragment, show, latency, total = [], [], [], [], [], [], []
    seen: dict[str, int] = {}
    for line in lines:
        key = words(str(line.get("text", "")))
        index = seen.get(key, 0)
        seen[key] = index + 1
        cue = shown.get((key, index))
        if cue is None or "decode_s" not in line:
            continue
        words_end = cue["start"] + line["end"] - line["start"]  # media time
        in_mix = offset + words_end
        made = line["made_at"]
        began = made - line["decode_s"]
        cut.append(began - in_mix)
        decode.append(line["decode_s"])
        listing = next(
            (at / 1000 for at, end in loaded if end >= line["msn"] and at / 1000 >= made), None
        )
        if listing is not None:
            listed.append(listing - made)
        frag = next(
            (at / 1000 for at, sn in frags if sn >= line["msn"] and at / 1000 >= made), None
        )
        if frag is not None and listing is not None:
            fragment.append(frag - listing)
            show.append(cue["shownAt"] / 1000 - frag)
        heard = heard_at(positions, words_end)
        if heard is not None:
            latency.append(heard - in_mix)
            total.append(cue["shownAt"] / 1000 - heard)
    return {
        "words_to_cut": quantile(cut, 0.5),
        "decode": quantile(decode, 0.5),
        "made_to_listed": quantile(listed, 0.5),
        "listed_to_fragment": quantile(fragment, 0.5),
        "fragment_to_shown": quantile(show, 0.5),
        "player_latency": quantile(latency, 0.5),
        "delay_after_last_word": quantile(total, 0.5),
    }


def one_call(
    tmp: Path, captions: bool, repeats: int, nice: str, prefix: tuple[str, ...]
) -> dict[str, Any]:
    parts = PARTS * repeats
    reference = " ".join(parts)
    result: dict[str, Any] = {"captions": captions}
    with (
        start_server(
            tmp, env={"CALLBRIDGE_CAPTION_NICE": nice}, live_captions=captions, prefix=prefix
        ) as server,
        launch() as browser,
    ):
        page = browser.new_page()
        event = server.create_event(starts_in=timedelta(minutes=-1), registration="off")
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        server.wait_for(
            lambda: server.api("GET", f"/api/events/{event.id}/webcast").json()["live_playlist"],
            timeout=20,
        )
        page.goto(f"{server.http_url}/events/{event.id}/webcast")
        page.wait_for_function(
            "() => document.getElementById('webcast').dataset.playing === 'live'"
        )
        page.evaluate(COLLECT)
        page.wait_for_function(
            "() => document.getElementById('media').currentTime > 0.5", timeout=30_000
        )
        page.evaluate(STAGES)
        packets, _ = speech_stream(event.speaker_passcode, gap_s=2.0, parts=parts)
        talk = packets[-1].at + 1
        cpu_before = sum(cpu_seconds(server.process.pid))
        started = time.monotonic()
        outcome = call_in(
            server.sip_target,
            tmp,
            packets,
            name="speaker",
            stay_ms=int(talk * 1000) + 1000,
            timeout=talk + 60,
        )
        assert outcome.ok, outcome.output[-2000:]
        call_s = time.monotonic() - started
        status_path = layout.event_webcast(server.data_dir, event.id) / captions.STATUS
        worker_cpu = None
        if captions:
            made = settle(server, event.id)
            pid = json.loads(status_path.read_text()).get("pid")
            if pid:
                worker_cpu = sum(cpu_seconds(int(pid)))
        server_cpu = sum(cpu_seconds(server.process.pid)) - cpu_before
        stats = server.api("GET", "/api/bridge/stats").json()
        result.update(
            call_s=round(call_s, 1),
            tick_lateness_ms=stats["tick_lateness_ms"],
            ticks_skipped=stats["ticks_skipped"],
            server_cpu_per_call_s=round(server_cpu / call_s, 3),
        )
        if captions:
            time.sleep(3.0)
            cues = page.evaluate("window.__cues")
            positions = page.evaluate("window.__positions")
            spoken = [c for c in cues if c["text"] != SKIPPED]
            by_text = {words(c["text"]): c for c in made}
            after_end, after_start, worker = [], [], []
            for cue in spoken:
                source = by_text.get(words(cue["text"]))
                if source is None:
                    continue
                start = heard_at(positions, cue["start"])
                end = heard_at(positions, cue["start"] + source["end"] - source["start"])
                if start is not None:
                    after_start.append(cue["shownAt"] / 1000 - start)
                if end is not None:
                    after_end.append(cue["shownAt"] / 1000 - end)
                    if source["delay"] is not None:  # None: a revision (its cues' delay counts)
                        worker.append(source["delay"])
            lines = [
                json.loads(line)
                for line in (status_path.parent / "captions.jsonl").read_text().splitlines()
            ]
            # The paragraph is read more than once: the n-th cue of a text is its n-th showing.
            first_shown: dict[tuple[str, int], dict[str, Any]] = {}
            seen: dict[str, int] = {}
            for cue in sorted(spoken, key=lambda c: c["start"]):
                key = words(cue["text"])
                first_shown[(key, seen.get(key, 0))] = cue
                seen[key] = seen.get(key, 0) + 1
            result["stages_p50_s"] = stages(
                lines,
                first_shown,
                positions,
                page.evaluate("window.__subsLoaded"),
                page.evaluate("window.__subsFrags"),
                page.evaluate("window.__pdtOffsets"),
            )
            result["delay_after_last_word_max_s"] = round(max(after_end), 3) if after_end else None
            # The live text settled (each revision in place of the cues it revises), and
            # as first read (no revision).
            revised = {index for c in made for index in c.get("revises") or ()}
            live_text = " ".join(
                c["text"] for c in made if c["text"] != SKIPPED and c["index"] not in revised
            )
            first_text = " ".join(
                c["text"] for c in made if c["text"] != SKIPPED and not c.get("revises")
            )
            page_text = " ".join(c["text"] for c in spoken)
            result.update(
                cues_made=len(made),
                cues_shown=len(cues),
                skips=sum(1 for c in made if c["text"] == SKIPPED),
                delay_after_last_word_s={
                    "p50": quantile(after_end, 0.5),
                    "p90": quantile(after_end, 0.9),
                },
                delay_after_first_word_s_p50=quantile(after_start, 0.5),
                worker_delay_s_p50=quantile(worker, 0.5),
                worker_cpu_per_call_s=round(worker_cpu / call_s, 3) if worker_cpu else None,
                wer_live=round(word_error_rate(reference, live_text, numbers=True), 3),
                wer_live_first=round(word_error_rate(reference, first_text, numbers=True), 3),
                revisions=sum(1 for c in made if c.get("revises")),
                wer_page=round(word_error_rate(reference, page_text, numbers=True), 3),
            )
        assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
        if captions:
            recordings = layout.event_recordings(server.data_dir, event.id)
            kept = server.wait_for(lambda: list(recordings.glob("*/live.vtt")), timeout=60)
            directory = kept[0].parent
            server.wait_for(lambda: (directory / "recording.wav").is_file(), timeout=60)
            offline = transcribe_recording(directory)
            result.update(
                wer_offline=round(word_error_rate(reference, offline.text, numbers=True), 3),
                wer_live_vs_offline=round(
                    word_error_rate(offline.text, live_text, numbers=True), 3
                ),
                offline_real_time_factor=round(offline.real_time_factor, 3),
            )
    return result


def media_pid(server: RunningServer) -> int:
    """The media plane's process: the one bound to the server's SIP port."""
    found = subprocess.run(
        ["ss", "-H", "-lunp", f"sport = :{server.sip_port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"pid=(\d+)", found)
    assert match is not None, found
    return int(match.group(1))


def clocks(tmp: Path, repeats: int, nice: str, prefix: tuple[str, ...]) -> dict[str, Any]:
    """Two servers on the server core, captions on and off, a call on each at once with the
    same speaker: each one's p99 tick lateness and CPU per second of call, under one load."""
    on_dir, off_dir = tmp / "clock-on", tmp / "clock-off"
    on_dir.mkdir()
    off_dir.mkdir()
    env = {"CALLBRIDGE_CAPTION_NICE": nice}
    with (
        start_server(on_dir, env=env, live_captions=True, prefix=prefix) as on,
        start_server(off_dir, live_captions=False, prefix=prefix) as off,
    ):
        media = [media_pid(s) for s in (on, off)]
        before = [sum(cpu_seconds(s.process.pid)) for s in (on, off)]
        media_before = [sum(cpu_seconds(pid, children=False)) for pid in media]
        started = time.monotonic()
        (_, on_stats), (_, off_stats) = side_by_side([on, off], tmp, parts=PARTS * repeats)
        call_s = time.monotonic() - started
        cpu = [sum(cpu_seconds(s.process.pid)) - b for s, b in zip((on, off), before, strict=True)]
        media_cpu = [
            sum(cpu_seconds(pid, children=False)) - b
            for pid, b in zip(media, media_before, strict=True)
        ]
    return {
        "tick_lateness_ms": {
            "on": on_stats["tick_lateness_ms"],
            "off": off_stats["tick_lateness_ms"],
        },
        "ticks_skipped": {"on": on_stats["ticks_skipped"], "off": off_stats["ticks_skipped"]},
        "server_cpu_per_call_s": {
            "on": round(cpu[0] / call_s, 3),
            "off": round(cpu[1] / call_s, 3),
        },
        # The media plane's process alone (its caption worker not counted): what the
        # captions cost where the clock runs.
        "media_process_cpu_per_call_s": {
            "on": round(media_cpu[0] / call_s, 4),
            "off": round(media_cpu[1] / call_s, 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="times the paragraph is read")
    parser.add_argument("--nice", default="10", help="the caption worker's niceness")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--server-core", type=int, default=0, help="taskset core of the server")
    parser.add_argument("--client-core", type=int, default=1, help="core of Chromium and sipp")
    parser.add_argument("--phase", choices=("all", "delay", "clock"), default="all")
    args = parser.parse_args()
    figures: dict[str, Any] = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    os.sched_setaffinity(0, {args.client_core})  # Chromium and sipp inherit it
    prefix = ("taskset", "-c", str(args.server_core))
    with tempfile.TemporaryDirectory(prefix="captions-bench-") as tmp:
        if args.phase in ("all", "delay"):
            folder = Path(tmp) / "on"
            folder.mkdir()
            figures["on"] = one_call(folder, True, args.repeats, args.nice, prefix)
        if args.phase in ("all", "clock"):
            figures["clock"] = clocks(Path(tmp), args.repeats, args.nice, prefix)
    figures["load_after"] = os.getloadavg()[0]
    print(json.dumps(figures, indent=2))
    if "on" in figures:
        on = figures["on"]
        print(
            f"\ncaption delay after the last word p50 {on['delay_after_last_word_s']['p50']} s, "
            f"max {on['delay_after_last_word_max_s']} s (worker {on['worker_delay_s_p50']} s), "
            f"after the first word {on['delay_after_first_word_s_p50']} s; WER live "
            f"{on['wer_live']}, offline {on.get('wer_offline')}, live vs offline "
            f"{on.get('wer_live_vs_offline')}; worker CPU {on['worker_cpu_per_call_s']} s/s, "
            f"server with it {on['server_cpu_per_call_s']} s/s"
        )
        print(f"stages (p50 s): {json.dumps(on.get('stages_p50_s'))}")
    if "clock" in figures:
        clock = figures["clock"]
        print(
            f"side by side: tick lateness p99 {clock['tick_lateness_ms']['on']['p99']} ms with "
            f"captions, {clock['tick_lateness_ms']['off']['p99']} ms without; server CPU "
            f"{clock['server_cpu_per_call_s']['on']} and "
            f"{clock['server_cpu_per_call_s']['off']} s/s; the media plane's process alone "
            f"{clock['media_process_cpu_per_call_s']['on']} and "
            f"{clock['media_process_cpu_per_call_s']['off']} s/s"
        )
    print(
        f"load {figures['load_before']:.2f} before, {figures['load_after']:.2f} after; "
        f"reproduce: .venv/bin/python bench/captions_bench.py --repeats {args.repeats} "
        f"--nice {args.nice} --server-core {args.server_core} --client-core {args.client_core} "
        f"--phase {args.phase}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
