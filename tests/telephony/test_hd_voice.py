"""HD voice end to end: baresip callers offering G.722 (or Opus) are mixed at 16 kHz.

A speaker on a wideband codec talks a 1 kHz and a 6 kHz tone at once. A
listener on G.722 hears both (6 kHz does not fit 8 kHz sampling: it can only
have come through wideband all the way: decoded at 16 kHz, mixed at 16 kHz,
encoded at 16 kHz), a μ-law listener in the same call hears the 1 kHz tone
and neither 6 kHz nor its 2 kHz alias, and the speaker hears the welcome
prompt in their own codec. The call's recording is 16 kHz and holds the 6 kHz
tone too.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from callbridge.store import layout
from tests.support.baresip import Baresip, read_wav, tone_power
from tests.telephony.conftest import DID, RunningServer, need

pytestmark = pytest.mark.baresip

LOW_HZ, HIGH_HZ = 1000.0, 6000.0
WIDE = 16_000


# baresip 1.0's aufile plays a WAV only at the codec's own rate and channels.
RATES = {"G722": 16_000, "opus": 48_000, "PCMU": 8000}
CHANNELS = {"G722": 1, "opus": 2, "PCMU": 1}


def write_source(path: Path, samples: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, channels).astype("<i2").tobytes())


def two_tones(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    both = 6000 * np.sin(2 * np.pi * LOW_HZ * t) + 6000 * np.sin(2 * np.pi * HIGH_HZ * t)
    return both.astype(np.int16)


def caller(folder: Path, codec: str, voice: np.ndarray | None = None) -> Baresip:
    """baresip offering only ``codec`` (and telephone-event, which baresip adds), saying
    ``voice`` (at the codec's rate) or nothing."""
    modules = {"G722": "g722.so", "opus": "opus.so", "PCMU": "g711.so"}
    folder.mkdir(parents=True)
    source = folder / "source.wav"
    rate = RATES[codec]
    samples = np.zeros(rate * 30, np.int16) if voice is None else voice
    write_source(source, samples, rate, CHANNELS[codec])
    return Baresip(
        folder,
        source,
        account=f";regint=0;audio_codecs={codec}",
        config=(f"module {modules[codec]}",) if codec != "PCMU" else (),
    )


def join(
    phone: Baresip, server: RunningServer, event_id: int, passcode: str, role: str, seconds: int
) -> None:
    """Dial in, key ``passcode``, and wait until one more ``role`` is on the call."""
    before = sum(p["role"] == role for p in server.participants(event_id))
    phone.dial(f"sip:{DID[1:]}@127.0.0.1:{server.sip_port}", seconds=seconds)
    time.sleep(2.0)  # into the welcome prompt: the keys barge in
    phone.send_digits(passcode + "#")
    server.wait_for(
        lambda: sum(p["role"] == role for p in server.participants(event_id)) > before,
        timeout=20,
    )


@pytest.mark.parametrize("speaker_codec", ["G722", "opus"])
def test_a_wideband_speaker_is_heard_wideband_and_by_a_phone(
    server: RunningServer, tmp_path: Path, speaker_codec: str
) -> None:
    need("baresip")
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    # Quiet while the passcode goes in (the keys must not drown in the tone), then talking.
    rate = RATES[speaker_codec]
    voice = np.concatenate([np.zeros(rate * 7, np.int16), two_tones(23, rate)])

    with (
        caller(tmp_path / "wide", "G722") as wide,
        caller(tmp_path / "phone", "PCMU") as phone,
        caller(tmp_path / "speaker", speaker_codec, voice) as speaker,
    ):
        join(wide, server, event.id, event.passcode, "listener", seconds=24)
        join(phone, server, event.id, event.passcode, "listener", seconds=22)
        join(speaker, server, event.id, event.speaker_passcode, "speaker", seconds=16)
        for each in (speaker, phone, wide):
            each.wait(timeout=40)
        heard_wide, wide_rate = wide.heard()
        heard_phone, phone_rate = phone.heard()
        heard_speaker, speaker_rate = speaker.heard()

    assert wide_rate == WIDE and phone_rate == 8000, (wide_rate, phone_rate)
    # The speaker's tones, in the last seconds both listeners were on the call.
    end_wide = heard_wide[-int(WIDE * 9) : -int(WIDE * 3)]
    end_phone = heard_phone[-(8000 * 7) : -(8000 * 1)]
    assert tone_power(end_wide, WIDE, HIGH_HZ) > 0.2, tone_power(end_wide, WIDE, LOW_HZ)
    assert tone_power(end_wide, WIDE, LOW_HZ) > 0.2
    # The phone hears the 1 kHz tone, and 6 kHz neither as itself nor folded to 2 kHz.
    assert tone_power(end_phone, 8000, LOW_HZ) > 0.6
    assert tone_power(end_phone, 8000, 8000 - HIGH_HZ) < 0.01
    # And the speaker heard the bridge: the welcome prompt, in the first seconds.
    assert np.abs(heard_speaker[: speaker_rate * 3]).max() > 1000
    roles = [p["role"] for p in server.participants(event.id, include_left=True)]
    assert sorted(roles) == ["listener", "listener", "speaker"], roles

    # The recording is wideband too: 16 kHz, with the speaker's 6 kHz in it.
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    folder = layout.event_recordings(server.data_dir, event.id)
    done = server.wait_for(lambda: list(folder.glob("*/assembled.json")), timeout=30)
    recorded, recorded_rate = read_wav(done[0].parent / "recording.wav")
    assert recorded_rate == WIDE
    talking = recorded[np.abs(recorded) > 0]
    assert tone_power(talking, WIDE, HIGH_HZ) > 0.2 and tone_power(talking, WIDE, LOW_HZ) > 0.2
