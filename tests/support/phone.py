"""A scripted phone in Python: one SIP call over UDP, its RTP sent and heard in threads.

The attack tests need what sipp and baresip do not give: the port the bridge
answered with (so a stranger can aim at it), arrival times of every frame a
listener hears (loss and gaps), and keys sent at a moment the test chooses.
Audio goes out every 20 ms from the moment the call is answered (PCMU, silence
or a tone); ``press`` puts RFC 4733 keys into that stream.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from callbridge.rtp.dtmf import DtmfSender
from callbridge.rtp.g711 import ulaw_decode, ulaw_encode
from callbridge.rtp.packet import RtpError, RtpPacket
from tests.sip.uac import OFFER, Uac

SILENCE = np.zeros(160, np.int16)


def tone(freq: float, level: int = 8000) -> list[npt.NDArray[np.int16]]:
    """One second of a sine at ``freq``, as fifty 20 ms frames."""
    t = np.arange(8000) / 8000
    samples = (level * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return [samples[i : i + 160] for i in range(0, 8000, 160)]


def final_response(sock: socket.socket, call_id: str, timeout: float) -> bytes:
    """The first non-1xx response for ``call_id`` on ``sock`` (b"" if none came in time)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        if f"Call-ID: {call_id}\r\n".encode() in data and not data.startswith(b"SIP/2.0 1"):
            return data
    return b""


@dataclass
class Heard:
    """What a phone received: arrival times and decoded frames (audio only)."""

    times: list[float] = field(default_factory=list)
    frames: list[npt.NDArray[np.int16]] = field(default_factory=list)

    def longest_gap(self, since: float = 0.0) -> float:
        times = [t for t in self.times if t >= since]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def count(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t < end)

    def audio(self, start: int = 0) -> npt.NDArray[np.int16]:
        frames = self.frames[start:]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)


class Phone:
    """A caller on 127.0.0.1 (or ``host``); use as a context manager."""

    def __init__(self, server_port: int, number: str, host: str = "127.0.0.1") -> None:
        self.server = ("127.0.0.1", server_port)
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((host, 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.uac = Uac(self.sip.getsockname()[1], number=number.lstrip("+"))
        self.heard = Heard()
        self.bridge_rtp: tuple[str, int] | None = None
        self.voice: list[npt.NDArray[np.int16]] = [SILENCE]
        self.sending = True  # False: the phone goes silent (sends nothing) until set again
        self._keys: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.hang_up()

    def call(self, timeout: float = 10.0) -> None:
        """INVITE, wait for the 200 OK, ACK it, and start sending and hearing RTP."""
        offer = OFFER.replace("m=audio 40000", f"m=audio {self.rtp.getsockname()[1]}")
        offer = offer.replace("127.0.0.1", self.rtp.getsockname()[0])
        self.sip.sendto(self.uac.invite(offer), self.server)
        answer = final_response(self.sip, self.uac.call_id, timeout)
        assert answer.startswith(b"SIP/2.0 200"), answer[:200]
        self.uac.learn(answer)
        self.sip.sendto(self.uac.ack_2xx(), self.server)
        text = answer.decode()
        port = re.search(r"m=audio (\d+)", text)
        host = re.search(r"c=IN IP4 (\S+)", text)
        assert port and host, text
        self.bridge_rtp = (host[1], int(port[1]))
        for target in (self._send_loop, self._hear_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def press(self, keys: str) -> None:
        """Send ``keys`` as RFC 4733 events in the RTP stream, one after another."""
        with self._lock:
            self._keys.extend(keys)

    def _send_loop(self) -> None:
        assert self.bridge_rtp is not None
        ssrc, seq, ts = 0x1234ABCD, 1, 0
        dtmf = DtmfSender(ssrc, 101)
        next_at = time.monotonic()
        frame = 0
        while not self._stop.is_set():
            with self._lock:
                key = self._keys.pop(0) if self._keys else None
            if key is not None:
                run = dtmf.packets(key, ts, seq, duration_ms=100)
                for packet in run:
                    self.rtp.sendto(bytes(packet), self.bridge_rtp)
                    next_at += 0.02
                    time.sleep(max(0.0, next_at - time.monotonic()))
                seq += len(run)
                ts += 160 * (len(run) + 1)
                continue
            payload = ulaw_encode(self.voice[frame % len(self.voice)])
            frame += 1
            if self.sending:
                packet = RtpPacket(0, seq & 0xFFFF, ts, ssrc, payload)
                self.rtp.sendto(bytes(packet), self.bridge_rtp)
            seq, ts = seq + 1, ts + 160
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _hear_loop(self) -> None:
        self.rtp.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = self.rtp.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                continue
            if packet.payload_type == 0:
                self.heard.times.append(time.monotonic())
                self.heard.frames.append(ulaw_decode(packet.payload))

    def hang_up(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        if self.bridge_rtp is not None:
            self.sip.sendto(self.uac.bye(), self.server)
            final_response(self.sip, self.uac.call_id, 2.0)
        self.sip.close()
        self.rtp.close()


class Stranger:
    """Someone on 127.0.0.2 who sends RTP at a port they found: audio, keys, or both."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keys(self, target: tuple[str, int], keys: str, payload_type: int = 101) -> None:
        """Send ``keys`` at once, each as a complete RFC 4733 event."""
        dtmf = DtmfSender(0xBAD0BAD0, payload_type)
        seq, ts = 5000, 80000
        for key in keys:
            run = dtmf.packets(key, ts, seq, duration_ms=100)
            for packet in run:
                self.sock.sendto(bytes(packet), target)
                time.sleep(0.005)
            seq += len(run)
            ts += 160 * (len(run) + 1)
            time.sleep(0.1)

    def stream(
        self, target: tuple[str, int], frames: list[npt.NDArray[np.int16]], ssrc: int = 0x0BADF00D
    ) -> None:
        """Start sending ``frames`` (repeated) as PCMU every 20 ms, as a parallel stream."""

        def run() -> None:
            seq, ts, n = 1, 0, 0
            next_at = time.monotonic()
            while not self._stop.is_set():
                payload = ulaw_encode(frames[n % len(frames)])
                self.sock.sendto(bytes(RtpPacket(0, seq, ts, ssrc, payload)), target)
                seq, ts, n = (seq + 1) & 0xFFFF, ts + 160, n + 1
                next_at += 0.02
                time.sleep(max(0.0, next_at - time.monotonic()))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.sock.close()
