"""Write RTP streams to pcap files that sipp plays with ``play_pcap_audio``.

sipp's stock DTMF pcaps all come from one capture, so replaying digits in
another order is not what a phone sends (FACTS.md). Here a whole passcode is
one stream: one SSRC, rising sequence numbers, a new timestamp per key and
the three end packets, with PCMU silence around it, as a phone sends it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callbridge.rtp.dtmf import DtmfSender
from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket

ETHERNET = b"\x00" * 12 + b"\x08\x00"
SRC, DST = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])


@dataclass
class Timed:
    at: float
    packet: RtpPacket


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, sport: int = 6000, dport: int = 6000) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, SRC, DST)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ETHERNET + ip + udp


def write_pcap(path: Path, packets: list[Timed]) -> None:
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for item in packets:
            frame = _frame(bytes(item.packet))
            seconds = int(item.at)
            micros = round((item.at - seconds) * 1_000_000)
            out.write(struct.pack("<IIII", 1_700_000_000 + seconds, micros, len(frame), len(frame)))
            out.write(frame)


def read_pcap(path: Path) -> list[RtpPacket]:
    data = path.read_bytes()
    offset, packets = 24, []
    while offset < len(data):
        _, _, length, _ = struct.unpack_from("<IIII", data, offset)
        offset += 16
        packets.append(RtpPacket.parse(data[offset + 42 : offset + length]))
        offset += length
    return packets


def passcode_stream(
    codes: list[str],
    *,
    dtmf_pt: int = 101,
    lead_in: float = 0.4,
    between_codes: float = 2.5,
    tone: np.ndarray | None = None,
    talk_after: float = 0.0,
) -> list[Timed]:
    """PCMU silence, then each code's keys, ``between_codes`` apart; optionally talk after.

    ``tone`` (160-sample frames repeated) is sent for ``talk_after`` seconds
    after the last code, as a speaker's voice.
    """
    ssrc = 0x5EED1234
    sender = DtmfSender(ssrc, dtmf_pt)
    seq, ts, t = 1000, 16000, 0.0
    out: list[Timed] = []
    silence = ulaw_encode(np.zeros(160, np.int16))

    def audio(seconds: float, payload: bytes) -> None:
        nonlocal seq, ts, t
        for _ in range(int(seconds / 0.02)):
            out.append(Timed(t, RtpPacket(0, seq & 0xFFFF, ts, ssrc, payload)))
            seq, ts, t = seq + 1, ts + 160, t + 0.02

    audio(lead_in, silence)
    for index, code in enumerate(codes):
        for key in code:
            run = sender.packets(key, ts, seq, duration_ms=120)
            for i, packet in enumerate(run):
                out.append(Timed(t, packet))
                t += 0.05 if i < len(run) - 3 else 0.02
            seq += len(run)
            ts += 160 * 8
            audio(0.1, silence)
        if index < len(codes) - 1:
            audio(between_codes, silence)
    if tone is not None and talk_after > 0:
        audio(talk_after, ulaw_encode(tone))
    return out


# The keypad's tones (Q.23): row Hz, column Hz.
_ROWS, _COLUMNS, _KEYPAD = (
    (697, 770, 852, 941),
    (1209, 1336, 1477, 1633),
    ("123A", "456B", "789C", "*0#D"),
)


def keypad_tone(key: str, seconds: float, level: float = 4000.0) -> np.ndarray:
    """``key`` as its two tones (int16 samples at 8 kHz), each at amplitude ``level``."""
    row = next(r for r, keys in enumerate(_KEYPAD) if key in keys)
    low, high = _ROWS[row], _COLUMNS[_KEYPAD[row].index(key)]
    t = np.arange(int(8000 * seconds)) / 8000
    both = level * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return both.astype(np.int16)


def inband_stream(
    code: str, *, lead_in: float = 0.4, tone_s: float = 0.1, gap_s: float = 0.1, after: float = 0.5
) -> list[Timed]:
    """PCMU only, as a gateway that sends keys in-band does: ``code``'s keys as tones."""
    pcm = [np.zeros(int(8000 * lead_in), np.int16)]
    for key in code:
        pcm += [keypad_tone(key, tone_s), np.zeros(int(8000 * gap_s), np.int16)]
    pcm.append(np.zeros(int(8000 * after), np.int16))
    samples = np.concatenate(pcm)
    samples = np.concatenate([samples, np.zeros(-len(samples) % 160, np.int16)])
    ssrc, out = 0x1B4D7015, []
    for n in range(len(samples) // 160):
        payload = ulaw_encode(samples[n * 160 : (n + 1) * 160])
        out.append(
            Timed(n * 0.02, RtpPacket(0, (2000 + n) & 0xFFFF, 32000 + 160 * n, ssrc, payload))
        )
    return out
