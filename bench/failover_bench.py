#!/usr/bin/env python3
"""Failover benchmark: a phone listener's audio gap when the active origin is SIGKILLed,
over several kills, and what the hot standby costs in CPU.

Two origins (the second ``--standby``) and one edge, ``callbridge serve``
each, on loopback and one real PostgreSQL, as tests/cascade/test_standby.py
starts them. A speaker (a 440 Hz tone) and a listener (``tests.support.phone``)
dial the edge. First the media processes' CPU is read over ``--cpu-window``
seconds of the call: the active origin's and the standby's (both mix,
record and package; only the active one sends). Then, each round, every
process of the active origin is SIGKILLed at once, the listener's longest
pause between frames is read once it hears the speaker through the other
origin, and the killed one is started again (it comes back as the standby)
for the next round.

    .venv/bin/python bench/failover_bench.py --kills 10
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import percentiles  # noqa: E402
from tests.cascade.test_standby import (  # noqa: E402
    SPEAKER_HZ,
    _hears_speaker,
    _kill_all_at_once,
    _leases,
    _longest_pause,
    _pair,
    _state,
)
from tests.support.nodes import start_again  # noqa: E402
from tests.support.phone import Phone, tone  # noqa: E402
from tests.support.wait import wait_until  # noqa: E402
from tests.telephony.conftest import DID, RunningServer  # noqa: E402

MEDIA_PID = re.compile(r"the media process is pid (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _media_pid(server: RunningServer) -> int:
    return int(MEDIA_PID.findall(server.log())[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--cpu-window", type=float, default=20.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        _pair(Path(tmp)) as (origins, edge, processes),
    ):
        event = origins[0].create_event(passcode="7171", registration="off")
        assert origins[0].api("POST", f"/api/events/{event.id}/start").status_code == 200
        assert event.speaker_passcode is not None
        with Phone(edge.sip_port, DID) as speaker, Phone(edge.sip_port, DID) as listener:
            speaker.voice = tone(SPEAKER_HZ)
            for phone, code in ((speaker, event.speaker_passcode), (listener, "7171")):
                phone.call()
                time.sleep(1.0)
                phone.press(code + "#")
            wait_until(lambda: _hears_speaker(listener), 20, "the speaker heard")

            pids = [_media_pid(o) for o in origins]
            before = [_cpu_seconds(pid) for pid in pids]
            time.sleep(args.cpu_window)
            used = [
                (_cpu_seconds(pid) - b) / args.cpu_window
                for pid, b in zip(pids, before, strict=True)
            ]
            print(
                f"CPU of the media process over {args.cpu_window:.0f} s of a call:"
                f" active {used[0] * 100:.1f}%, standby {used[1] * 100:.1f}% of one core"
            )

            pauses: list[float] = []
            for round_ in range(1, args.kills + 1):
                active = next(o for o in origins if _state(o) == "active")
                standby = next(o for o in origins if o is not active)
                killed = time.monotonic()
                _kill_all_at_once(active)
                wait_until(lambda standby=standby: _state(standby) == "active", 10, "takeover")
                wait_until(
                    lambda killed=killed: (
                        time.monotonic() - killed > 3.0 and _hears_speaker(listener)
                    ),
                    20,
                    "the speaker again",
                )
                pause = _longest_pause(listener, killed, time.monotonic())
                pauses.append(pause)
                told = len(_leases(active))
                again = start_again(active)
                processes.append(again.process)
                origins[origins.index(active)] = again
                again.wait_for(
                    lambda again=again, told=told: len(_leases(again)) > told, timeout=120
                )
                assert _leases(again)[-1][2] == "standby", _leases(again)[-1]
                time.sleep(3.0)  # told what was done; mixing the call again
                print(f"kill {round_}: the listener's longest pause {pause * 1000:.0f} ms",
                      flush=True)  # fmt: skip
        print(f"\nlongest pause per kill over {len(pauses)} kills, s: {percentiles(pauses)}")


if __name__ == "__main__":
    main()
