#!/usr/bin/env python3
"""The long fuzz run: every parser a stranger can reach, a million inputs each.

Each parser (``tests/fuzz/targets.py``: SIP message, SDP offer, RTP, RTCP,
RFC 4733 event, TCP framing fed whole and in pieces, HLS playlist, the
blocking-reload query) either returns a value or raises its own protocol
error. Anything else is a crash; the first few are printed with their input
and the command that replays them.

The default engine is our own seeded mutation fuzzer over the targets'
valid samples (bit flips, byte insert/delete/overwrite, truncation,
splicing two samples, an ASCII digit replaced by a Unicode one such as "²",
numbers at their bounds, lines duplicated, dropped or swapped, case
changes; one to four at a time). It needs nothing installed and is
deterministic: the same seed gives the same inputs, so input number i of a
run can be replayed alone. Accepted mutants join the pool now and then, so
later mutations start from deeper inputs.

``--engine atheris`` uses libFuzzer's coverage guidance instead (when the
``atheris`` package is importable: ``pip install atheris``), one child
process per parser, with the same samples as its seed corpus and our
mutator mixed into libFuzzer's. Its runs are not replayable by index; a
crash is printed with its input.

    taskset -c 1 nice .venv/bin/python bench/fuzz.py               # 10**6 per parser
    .venv/bin/python bench/fuzz.py --inputs 20000 --parser sip sdp
    .venv/bin/python bench/fuzz.py --parser sip --seed 0 --replay 1234
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POOL_LIMIT = 2000  # accepted mutants kept as extra starting points
SHOW_CRASHES = 5
PROGRESS_EVERY = 100_000
# Cheapest first: a run cut short still reports whole parsers.
ORDER = ("rtcp", "blocking-query", "rfc4733", "rtp", "playlist", "sdp", "sip", "tcp-framing")


@dataclass
class Counts:
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    first: list[tuple[int, bytes, str]] = field(default_factory=list)


def inputs(name: str, seed: int) -> Iterator[tuple[bytes, random.Random]]:
    """The endless, deterministic input stream for one parser (the pool grows as it runs)."""
    from tests.fuzz.targets import TARGETS, mutate

    target = TARGETS[name]
    rng = random.Random(f"{seed}:{name}")
    pool = list(target.samples)
    yield from ((sample, rng) for sample in target.samples)
    while True:
        if rng.random() < 1 / 32:
            data = rng.randbytes(rng.randrange(64 if name != "playlist" else 600))
        else:
            data = mutate(rng.choice(pool), rng, target.samples)
        yield data, rng
        # The caller has run it; an accepted mutant sometimes becomes a new start.
        if _accepted_last and len(pool) < POOL_LIMIT + len(target.samples) and rng.random() < 0.05:
            pool.append(data)


_accepted_last = False


def run(name: str, count: int, seed: int) -> Counts:
    from tests.fuzz.targets import TARGETS

    global _accepted_last
    target = TARGETS[name]
    counts = Counts()
    started = time.perf_counter()
    for index, (data, _rng) in enumerate(inputs(name, seed)):
        if index >= count:
            break
        if index and index % PROGRESS_EVERY == 0:
            elapsed = time.perf_counter() - started
            print(
                f"  ({name}: {index:,} inputs, {counts.crashes} crashes, {elapsed:.0f} s)",
                flush=True,
            )
        counts.inputs += 1
        try:
            target.parse(data)
        except target.errors:
            counts.rejected += 1
            _accepted_last = False
        except Exception:
            counts.crashes += 1
            _accepted_last = False
            if len(counts.first) < SHOW_CRASHES:
                counts.first.append((index, data, traceback.format_exc(limit=4)))
        else:
            counts.accepted += 1
            _accepted_last = True
    return counts


def replay(name: str, seed: int, index: int) -> None:
    from tests.fuzz.targets import TARGETS

    global _accepted_last
    target = TARGETS[name]
    for i, (data, _rng) in enumerate(inputs(name, seed)):
        if i == index:
            print(f"input {index} of {name} (seed {seed}): {data!r}")
            target.parse(data)  # let whatever it raises show its traceback
            print("accepted")
            return
        try:
            target.parse(data)
            _accepted_last = True
        except Exception:
            _accepted_last = False


def report(name: str, counts: Counts, elapsed: float, seed: int, engine: str) -> None:
    rate = counts.inputs / elapsed if elapsed else 0.0
    print(
        f"{name:15} inputs {counts.inputs:>9,}  accepted {counts.accepted:>9,}  "
        f"rejected {counts.rejected:>9,}  crashes {counts.crashes:>5,}  "
        f"{elapsed:8.1f} s  {rate:9,.0f}/s",
        flush=True,
    )
    for index, data, trace in counts.first:
        print(f"  crash at input {index}: {data[:300]!r}")
        print("    " + trace.strip().replace("\n", "\n    "))
        if engine == "mutate":
            replay = f"--parser {name} --seed {seed} --replay {index}"
            print(f"    reproduce: python bench/fuzz.py {replay}")


# -- atheris (coverage-guided) ---------------------------------------------------


def atheris_child(name: str, count: int, seed: int) -> None:
    """One parser under libFuzzer; prints one ``report`` line, then exits the process."""
    import atheris  # type: ignore[import-untyped]

    if "callbridge" in sys.modules:
        raise RuntimeError("callbridge was imported before atheris could instrument it")
    with atheris.instrument_imports(include=["callbridge"]):
        from tests.fuzz.targets import TARGETS, mutate

    target = TARGETS[name]
    counts = Counts()
    started = time.perf_counter()
    rng = random.Random(seed)

    def one_input(data: bytes) -> None:
        counts.inputs += 1
        try:
            target.parse(data)
        except target.errors:
            counts.rejected += 1
        except Exception:
            counts.crashes += 1
            if len(counts.first) < SHOW_CRASHES:
                counts.first.append((counts.inputs - 1, data, traceback.format_exc(limit=4)))
        else:
            counts.accepted += 1
        if counts.inputs >= count:
            report(name, counts, time.perf_counter() - started, seed, "atheris")
            sys.stdout.flush()
            os._exit(0)

    def mutator(data: bytes, max_size: int, libfuzzer_seed: int) -> bytes:
        if rng.random() < 0.5:
            return bytes(atheris.Mutate(data, max_size))
        return mutate(data, rng, target.samples, limit=max_size)

    with tempfile.TemporaryDirectory() as corpus:
        for i, sample in enumerate(target.samples):
            Path(corpus, f"seed{i}").write_bytes(sample)
        atheris.Setup(
            [sys.argv[0], f"-seed={seed + 1}", f"-runs={count + 10}", "-max_len=70000", corpus],
            one_input,
            custom_mutator=mutator,
        )
        atheris.Fuzz()


def main() -> None:
    # Nothing of callbridge is imported here: an atheris child must import it
    # under ``instrument_imports`` for coverage guidance to see it.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="per parser")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parser", nargs="+", choices=sorted(ORDER), default=list(ORDER))
    parser.add_argument("--engine", choices=("mutate", "atheris"), default="mutate")
    parser.add_argument("--replay", type=int, help="run input number REPLAY of --parser alone")
    parser.add_argument("--atheris-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.replay is not None:
        replay(args.parser[0], args.seed, args.replay)
        return
    if args.atheris_child:
        atheris_child(args.parser[0], args.inputs, args.seed)
        return
    if args.engine == "atheris" and importlib.util.find_spec("atheris") is None:
        parser.error("--engine atheris needs the atheris package (pip install atheris)")
    print(
        f"# bench/fuzz.py --engine {args.engine} --seed {args.seed} --inputs {args.inputs} "
        f"(python {sys.version.split()[0]})",
        flush=True,
    )
    total_crashes = 0
    for name in args.parser:
        started = time.perf_counter()
        if args.engine == "atheris":
            command = [sys.executable, __file__, "--atheris-child", "--parser", name]
            command += ["--inputs", str(args.inputs), "--seed", str(args.seed)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.strip()]
            print("\n".join(lines) or f"{name}: atheris child failed\n{done.stderr[-2000:]}")
            total_crashes += sum("crash at input" in line for line in lines)
            continue
        counts = run(name, args.inputs, args.seed)
        report(name, counts, time.perf_counter() - started, args.seed, args.engine)
        total_crashes += counts.crashes
    print(f"# crashes in all: {total_crashes}", flush=True)
    sys.exit(1 if total_crashes else 0)


if __name__ == "__main__":
    main()
