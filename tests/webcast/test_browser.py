"""The live playlist played by real Chromium: through hls.js (MSE) and natively."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from callbridge.webcast.live import LiveWebcast
from tests.webcast.conftest import VENDOR, Origin

pytestmark = [pytest.mark.browser, pytest.mark.serial]

# The settings that keep hls.js near the live edge; the webcast page should use them.
HLS_CONFIG = """{
  lowLatencyMode: true,
  liveSyncMode: 'edge',
  maxLiveSyncPlaybackRate: 1.5,
  liveSyncOnStallIncrease: 0.32,
  backBufferLength: 30
}"""

HLS_PAGE = f"""<!doctype html><meta charset="utf-8">
<audio id="a" autoplay></audio>
<script src="hls.min.js"></script>
<script>
window.errors = [];
const audio = document.getElementById('a');
const hls = new Hls({HLS_CONFIG});
hls.on(Hls.Events.ERROR, (_, d) => window.errors.push(d.type + ':' + d.details + ':' + d.fatal));
hls.loadSource('index.m3u8');
hls.attachMedia(audio);
window.hls = hls;
window.sample = () => ({{
  t: audio.currentTime,
  paused: audio.paused,
  latency: hls.latency,
  target: hls.targetLatency,
  behind: hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null,
  mse: Hls.isSupported(),
}});
</script>"""

NATIVE_PAGE = """<!doctype html><meta charset="utf-8">
<audio id="a" autoplay src="index.m3u8"></audio>
<script>
const audio = document.getElementById('a');
window.errors = [];
audio.addEventListener('error', () => window.errors.push(String(audio.error && audio.error.code)));
window.sample = () => ({t: audio.currentTime, paused: audio.paused,
  canPlay: audio.canPlayType('application/vnd.apple.mpegurl')});
</script>"""


def _watch(page: Any, seconds: float) -> list[dict[str, Any]]:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(page.evaluate("window.sample()"))
        time.sleep(0.25)
    return samples


def _skip_without_hlsjs() -> None:
    if not (VENDOR / "hls.min.js").exists():
        message = "hls.js is not bundled: run scripts/build-static"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_hlsjs_plays_the_live_playlist_at_low_latency(
    chromium: Any, live_origin: tuple[Origin, LiveWebcast]
) -> None:
    _skip_without_hlsjs()
    origin, webcast = live_origin
    origin.pages["hls.html"] = HLS_PAGE.encode()
    page = chromium.new_page()
    try:
        page.goto(f"{origin.url}/hls.html")
        page.wait_for_function("window.sample().t > 0.5", timeout=15_000, polling=100)
        samples = _watch(page, 6)
        errors = page.evaluate("window.errors")
    finally:
        page.close()
    print("hls.js samples:", samples[0], samples[-1], "errors:", errors)
    assert samples[0]["mse"]
    assert not any(s["paused"] for s in samples[len(samples) // 2 :])
    advanced = samples[-1]["t"] - samples[0]["t"]
    assert advanced > 4.5, samples  # ~6 s of wall time
    assert not [e for e in errors if e.endswith(":true")]
    behind = sorted(s["behind"] for s in samples[len(samples) // 2 :])
    # Glass to glass: wall clock minus the program date-time being played.
    assert behind[len(behind) // 2] < 2.0, behind
    assert webcast.stats.dropped == 0


def test_chromium_plays_the_live_playlist_natively(
    chromium: Any, live_origin: tuple[Origin, LiveWebcast]
) -> None:
    origin, webcast = live_origin
    origin.pages["native.html"] = NATIVE_PAGE.encode()
    # Chromium's own player fails (MEDIA_ERR_SRC_NOT_SUPPORTED) on a live
    # playlist shorter than its hold-back of three target durations.
    deadline = time.monotonic() + 15
    while webcast.stats.segments < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    page = chromium.new_page()
    try:
        page.goto(f"{origin.url}/native.html")
        if not page.evaluate("window.sample().canPlay"):
            pytest.skip("this Chromium has no native HLS player")
        page.wait_for_function("window.sample().t > 0.5", timeout=20_000, polling=100)
        samples = _watch(page, 4)
        errors = page.evaluate("window.errors")
    finally:
        page.close()
    print("native samples:", samples[0], samples[-1], "errors:", errors)
    assert not errors
    assert samples[-1]["t"] - samples[0]["t"] > 2.5
