from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from callbridge.media.prompts import (
    PROMPT_DIR,
    PromptError,
    PromptLibrary,
    PromptName,
    PromptPlayer,
    load_wav,
)


@pytest.mark.parametrize("name", list(PromptName))
def test_every_prompt_ships_as_real_8khz_audio(name: PromptName) -> None:
    path = PROMPT_DIR / f"{name.value}.wav"
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    samples = load_wav(path).astype(float)
    assert len(samples) > 8000 * 0.8
    assert np.sqrt((samples**2).mean()) > 500, "the prompt is (nearly) silent"
    library = PromptLibrary()
    frames = library.frames(name)
    assert len(frames) == -(-len(samples) // 160)
    assert all(f.shape == (160,) for f in frames)


def test_wrong_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "welcome.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(b"\x00" * 400)
    with pytest.raises(PromptError, match="8000 Hz mono"):
        PromptLibrary(tmp_path).frames(PromptName.WELCOME)


def test_player_plays_once_or_loops() -> None:
    library = PromptLibrary()
    player = PromptPlayer(library)
    player.start(PromptName.MUTED)
    count = 0
    while player.next_frame() is not None:
        count += 1
    assert count == len(library.frames(PromptName.MUTED))
    assert not player.playing
    player.start(PromptName.MUTED, loop=True)
    for _ in range(count * 2 + 1):
        assert player.next_frame() is not None
