"""baresip, a real SIP user agent, driven as a test caller.

It dials, plays a WAV file as its microphone, records what it hears
(the ``sndfile`` module's ``dump-…-dec.wav``) and sends RFC 4733 digits
when told to over its ``ctrl_tcp`` socket. See FACTS.md for the settings
that make it run without a terminal.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.support.ports import free_port

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    with wave.open(str(path), "rb") as src:
        rate = src.getframerate()
        data = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
        if src.getnchannels() > 1:
            data = data[:: src.getnchannels()]
    return data.astype(np.int16), rate


class Baresip:
    """One baresip process with its own config folder; use as a context manager."""

    def __init__(
        self,
        folder: Path,
        source_wav: Path,
        user: str = "analyst",
        host: str = "127.0.0.1",
        account: str = ";regint=0",
        config: tuple[str, ...] = (),
        sip_port: int = 0,
    ) -> None:
        """``account`` are the account's parameters (``;mediaenc=srtp-mand``), ``config``
        more config lines (``module srtp.so``, ``sip_cafile ...``)."""
        if BARESIP is None:
            raise RuntimeError("baresip is not installed (Debian package baresip-core)")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recordings = folder / "rec"
        self.recordings.mkdir(exist_ok=True)
        self.ctrl_port = free_port()
        (folder / "accounts").write_text(f"<sip:{user}@{host}>{account}\n")
        (folder / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen {host}:{sip_port}",
                    f"net_interface {host}",
                    "audio_player aubridge,nil",
                    f"audio_source aufile,{source_wav}",
                    "audio_alert aubridge,nil",
                    f"module_path {MODULES}",
                    "module g711.so",
                    "module aufile.so",
                    "module aubridge.so",
                    "module sndfile.so",
                    "module_app account.so",
                    "module_app menu.so",
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    f"snd_path {self.recordings}",
                    *config,
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "baresip.log"

    def dial(self, uri: str, seconds: int) -> None:
        """Start baresip calling ``uri``; it quits by itself after ``seconds``."""
        self.process = subprocess.Popen(
            [BARESIP, "-f", str(self.folder), "-t", str(seconds), "-e", f"/dial {uri}"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def answer(self, seconds: int) -> None:
        """Start baresip as a callee (the account needs ``;answermode=auto``) for ``seconds``."""
        self.process = subprocess.Popen(
            [BARESIP, "-f", str(self.folder), "-t", str(seconds)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def send_digits(self, digits: str, gap: float = 0.25) -> None:
        """Key ``digits`` as RFC 4733 events, one at a time like a person would."""
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with conn:
            for i, digit in enumerate(digits):
                payload = json.dumps(
                    {"command": "sndcode", "params": digit, "token": f"d{i}"}
                ).encode()
                conn.sendall(str(len(payload)).encode() + b":" + payload + b",")
                time.sleep(gap)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def heard(self) -> tuple[npt.NDArray[np.int16], int]:
        """What baresip received and decoded, as 16-bit samples."""
        dumps = sorted(self.recordings.glob("dump-*-dec.wav"))
        if not dumps:
            raise AssertionError(f"baresip recorded nothing; log: {self.log.read_text()[-2000:]}")
        return read_wav(dumps[-1])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Baresip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rms_windows(
    samples: npt.NDArray[np.int16], rate: int, window: float = 0.1
) -> npt.NDArray[np.float64]:
    """RMS level per window of ``window`` seconds."""
    size = int(rate * window)
    usable = len(samples) // size * size
    blocks = samples[:usable].astype(np.float64).reshape(-1, size)
    return np.sqrt((blocks**2).mean(axis=1))


def tone_power(samples: npt.NDArray[np.int16], rate: int, freq: float) -> float:
    """Share of the signal's energy within ±30 Hz of ``freq`` (0..1)."""
    if len(samples) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > freq - 30) & (freqs < freq + 30)
    total = spectrum.sum()
    return float(spectrum[band].sum() / total) if total > 0 else 0.0
