#!/usr/bin/env python3
"""What RTCP costs the media plane: building (and SRTCP-protecting) 1,000 legs' reports.

Each leg reports every ~5 s (RFC 3550's minimum, randomised), so a thousand
legs build 200 reports a second; the figure is the CPU that takes, plain and
with SRTCP, without the sendto calls (one datagram each, as RTP's are).

    .venv/bin/python bench/rtcp_bench.py
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from callbridge.bridge.leg import CallLeg  # noqa: E402
from callbridge.media.prompts import PromptPlayer, default_library  # noqa: E402
from callbridge.rtp.rtcp import INTERVAL  # noqa: E402
from callbridge.sip.sdp import SdpSession, SrtpPolicy  # noqa: E402

LEGS = 1000
KEY = base64.b64encode(bytes(range(30))).decode()
OFFER = (
    "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
).encode()


def main() -> int:
    library = default_library()
    for srtp in (False, True):
        offer = OFFER if srtp else OFFER.replace(b"RTP/SAVP", b"RTP/AVP")
        legs = []
        for i in range(LEGS):
            negotiated = SdpSession("127.0.0.1", srtp=SrtpPolicy.OFFERED).negotiate(offer, 20000)
            leg = CallLeg(
                call_id=str(i), dialled=None, caller="c", source=("127.0.0.1", 40000),
                negotiated=negotiated, local_port=20000, send=lambda d, a: None,
                prompt_player=PromptPlayer(library), now=0.0,
            )  # fmt: skip
            leg.rtcp_send = lambda d, a: None
            for seq in range(50):
                leg.rtcp.received_rtp(0x1234, seq, 160 * seq, 0.02 * seq)
            legs.append(leg)
        best = float("inf")
        for round_ in range(5):
            began = time.perf_counter()
            for leg in legs:
                leg.send_rtcp(10.0 + round_ * INTERVAL, 1.8e9)
            best = min(best, time.perf_counter() - began)
        print(
            f"{'SRTCP' if srtp else 'RTCP '}: {LEGS} reports in {1000 * best:.1f} ms: "
            f"{100 * best / INTERVAL:.2f} % of a core for {LEGS} legs"
        )
    print("  reproduce: .venv/bin/python bench/rtcp_bench.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
