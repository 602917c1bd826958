"""Speech recognition engines behind one interface, and the energy detector that feeds them.

Two engines run offline on the CPU with weights that an installed package ships:

``moonshine``
    Moonshine *base* English (about 61 M parameters, MIT licence), published by
    Moonshine AI, the model's authors, inside their ``moonshine-cpp`` wheel as
    ONNX Runtime (``.ort``) files. That wheel's own C library needs AVX-512, so
    the files are run here through the ``onnxruntime`` package with a greedy
    decoding loop of our own, read back as ONNX first (``ortformat``: their
    8-bit weights are then made floats once, not on every token). No glossary
    biasing: glossary terms are restored (case and spelling) in its output by
    ``apply_glossary``. ``get_engine(careful=True)`` reads a piece again with
    a second of silence around it instead of half a second when the model is
    unsure of its first reading, and keeps the surer one: telephone-band
    speech is misheard differently with different padding ("flinty blounty
    seven" and "twenty twenty seven"). Not on by default: on Flite's voices
    it raised figure recall from 0.935 to 0.972 (``bench/transcript_bench.py
    --careful``), but on an espeak-ng voice in a real call the surer reading
    was the wrong one ("sixty one points for Perth", where one reading gave
    "61.4%"), and it costs about twice the CPU.
``pocketsphinx``
    CMU PocketSphinx 5 with the US English model in its wheel: the floor. The
    glossary is added to its dictionary (letter by letter for acronyms) and its
    output is then cased by ``apply_glossary``.

``get_engine(None)`` gives the best installed one.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from callbridge.transcript.ortformat import OrtFormatError, ort_to_onnx
from callbridge.transcript.vad import Samples, engine_chunks, to_float

log = logging.getLogger(__name__)

Progress = Callable[[float], None]

ENGINE_RATE = 16_000  # both models were trained on 16 kHz audio


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech; times in seconds from the start of the samples given."""

    start: float
    end: float
    text: str


class EngineUnavailable(RuntimeError):
    """The engine asked for is not installed, or its model files are missing."""


class SpeechEngine(Protocol):
    """Turns audio into timed text. Create once, call ``transcribe`` often; not thread-safe."""

    name: str

    def transcribe(
        self,
        samples: Samples,
        sample_rate: int,
        glossary: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Segment]:
        """Segments in time order for mono ``samples`` (int16, or float32 in -1..1).

        ``glossary`` terms (product names, tickers, "T-DM1") are favoured where
        the engine can be biased, and always written as given. ``progress`` is
        called with the fraction (0..1) of the audio done.
        """
        ...


# -- audio helpers -----------------------------------------------------------


def resample(samples: npt.NDArray[np.float32], rate: int, target: int) -> npt.NDArray[np.float32]:
    """Band-limited resampling in the frequency domain (for pieces of up to a minute or so).

    Linear interpolation from 8 kHz leaves images of the speech above 4 kHz,
    which cost Moonshine about a third of its words in our tests.
    """
    if rate == target or not len(samples):
        return samples
    count = round(len(samples) * target / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))
    bins = count // 2 + 1
    if bins > len(spectrum):
        spectrum = np.concatenate([spectrum, np.zeros(bins - len(spectrum), dtype=spectrum.dtype)])
    else:
        spectrum = spectrum[:bins]
    out = np.fft.irfft(spectrum, count) * (count / len(samples))
    return out.astype(np.float32)


# -- glossary ----------------------------------------------------------------

_SEPARATOR = r"[\s.\-]?"


def _glossary_pattern(term: str) -> re.Pattern[str] | None:
    key = re.sub(r"[^0-9A-Za-z]", "", term)
    if not key:
        return None
    # Any spelling an engine might produce for the term: "t dm1", "TDM1", "T-D-M-1".
    body = _SEPARATOR.join(re.escape(ch) for ch in key)
    return re.compile(rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])", re.IGNORECASE)


def apply_glossary(text: str, glossary: Sequence[str]) -> str:
    """``text`` with each glossary term written exactly as the glossary writes it.

    Matches ignore case and the spaces, dots and hyphens an engine puts between
    letters, so "arpu", "A.R.P.U." and "t dm1" become "ARPU" and "T-DM1".
    Longer terms are applied first so "T-DM1" wins over a term "DM1".
    """
    for term in sorted({t.strip() for t in glossary if t.strip()}, key=len, reverse=True):
        pattern = _glossary_pattern(term)
        if pattern is not None:
            text = pattern.sub(lambda _m, t=term: t, text)  # type: ignore[misc]
    return text


# -- moonshine -----------------------------------------------------------------


def _moonshine_dir() -> Path | None:
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    # Found without importing: importing moonshine_cpp loads its AVX-512 library.
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / "base-en"
        if (candidate / "encoder_model.ort").is_file():
            return candidate
    return None


def _session(onnxruntime: Any, path: Path, options: Any) -> Any:
    """An inference session for the ``.ort`` file at ``path``, read back as ONNX if it can be.

    As ONNX the weights' dequantizing nodes are folded into constants when the
    session is made (about a second); the ``.ort`` file as it is runs them on
    every call, several times the decoder's own work. Without the ``onnx``
    package, or for a file the reader cannot carry, the ``.ort`` file is used.
    """
    providers = ["CPUExecutionProvider"]
    try:
        model = ort_to_onnx(path)
        return onnxruntime.InferenceSession(model, options, providers=providers)
    except ImportError:
        log.warning("the onnx package is not installed: %s runs unfolded (slower)", path.name)
    except (OrtFormatError, onnxruntime.capi.onnxruntime_pybind11_state.Fail) as error:
        log.warning("%s runs unfolded (slower): %s", path.name, error)
    return onnxruntime.InferenceSession(str(path), options, providers=providers)


def _load_tokens(path: Path) -> list[bytes]:
    """moonshine's tokenizer.bin: for each token id in order, a length byte then its bytes."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        offset += 1
        if length >= 0x80 or offset + length > len(data):
            raise EngineUnavailable(f"{path}: unexpected tokenizer format at byte {offset - 1}")
        tokens.append(data[offset : offset + length])
        offset += length
    return tokens


class MoonshineEngine:
    """Moonshine base English on ONNX Runtime; one ``Segment`` per detected speech region."""

    name = "moonshine"
    START_TOKEN = 1
    END_TOKEN = 2
    LAYERS = 8
    HEADS = 8
    HEAD_DIM = 52
    TOKENS_PER_SECOND = 8.0  # a cap against runaway decoding; speech averages 3-5
    MAX_INPUT_S = 30.0
    PAD_S = 0.5
    CAREFUL_PADS_S = (0.5, 1.0)
    # Misheard figures in the benchmark read at -0.12 to -0.5 per token; most right
    # readings above -0.1, and those need no second reading.
    SURE_LOGPROB = -0.1

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int | None = None,
        pads_s: Sequence[float] = (PAD_S,),
    ) -> None:
        """``pads_s``: the silences (seconds) to decode each piece with, one reading each."""
        if not pads_s:
            raise ValueError("pads_s needs at least one padding")
        self.pads_s = tuple(pads_s)
        try:
            import onnxruntime
        except ImportError as exc:
            raise EngineUnavailable("onnxruntime is not installed") from exc
        directory = model_dir or _moonshine_dir()
        if directory is None:
            raise EngineUnavailable("moonshine-cpp (which ships the model files) is not installed")
        options = onnxruntime.SessionOptions()
        # Two threads at most: the transcript shares a small machine with live calls.
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: spinning cost half as much CPU again
        # on a 2-core machine, for no gain in speed when the other core is busy.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._encoder = _session(onnxruntime, directory / "encoder_model.ort", options)
        self._decoder = _session(onnxruntime, directory / "decoder_model_merged.ort", options)
        self._tokens = _load_tokens(directory / "tokenizer.bin")
        self._past_names = [
            f"past_key_values.{layer}.{part}.{kind}"
            for layer in range(self.LAYERS)
            for part in ("decoder", "encoder")
            for kind in ("key", "value")
        ]

    def transcribe(
        self,
        samples: Samples,
        sample_rate: int,
        glossary: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Segment]:
        audio = to_float(samples)
        regions = engine_chunks(audio, sample_rate, self.MAX_INPUT_S - 2 * self.PAD_S)
        total = sum(end - start for start, end in regions) or 1
        done = 0
        segments: list[Segment] = []
        for start, end in regions:
            piece = resample(audio[start:end], sample_rate, ENGINE_RATE)
            if len(piece) >= ENGINE_RATE // 10:
                text = apply_glossary(self.decode(piece), glossary)
                if text:
                    segments.append(Segment(start / sample_rate, end / sample_rate, text))
            done += end - start
            if progress is not None:
                progress(done / total)
        if progress is not None and not regions:
            progress(1.0)
        return segments

    def decode(self, audio: npt.NDArray[np.float32]) -> str:
        """Text for at most ``MAX_INPUT_S`` of 16 kHz float audio (greedy decoding).

        With several ``pads_s``, the next padding is tried while the reading so far
        is unsure (mean log-probability per token below ``SURE_LOGPROB``), and the
        surest reading wins.
        """
        audio = audio[: int(self.MAX_INPUT_S * ENGINE_RATE)]
        # The model expects speech at a normal level; quiet stems are brought up.
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if 0.0 < peak < 0.25:
            audio = audio * (0.5 / peak)
        readings = [self._greedy(audio, self.pads_s[0])]
        for pad_s in self.pads_s[1:]:
            if readings[-1][1] >= self.SURE_LOGPROB:
                break
            readings.append(self._greedy(audio, pad_s))
        return max(readings, key=lambda reading: reading[1])[0]

    def _greedy(self, audio: npt.NDArray[np.float32], pad_s: float) -> tuple[str, float]:
        """The greedy reading of ``audio`` with ``pad_s`` of silence either side, and its
        mean log-probability per token."""
        # Speech that starts at the first sample is often decoded as nothing at
        # all (end-of-text first): half a second of silence either side fixes it.
        pad = np.zeros(int(pad_s * ENGINE_RATE), dtype=np.float32)
        audio = np.concatenate([pad, audio, pad])
        hidden = self._encoder.run(None, {"input_values": audio[None, :].astype(np.float32)})[0]
        empty = np.zeros((1, self.HEADS, 0, self.HEAD_DIM), dtype=np.float32)
        past: dict[str, Any] = dict.fromkeys(self._past_names, empty)
        limit = math.ceil(len(audio) / ENGINE_RATE * self.TOKENS_PER_SECOND) + 8
        tokens: list[int] = []
        score = 0.0
        next_ids = np.array([[self.START_TOKEN]], dtype=np.int64)
        for step in range(limit):
            outputs = self._decoder.run(
                None,
                {
                    "input_ids": next_ids,
                    "encoder_hidden_states": hidden,
                    "use_cache_branch": np.array([step > 0]),
                    **past,
                },
            )
            logits = outputs[0][0, -1].astype(np.float64)
            token = int(np.argmax(logits))
            top = float(logits[token])
            score -= math.log(float(np.sum(np.exp(logits - top))))  # log-softmax of the top
            if token == self.END_TOKEN:
                break
            tokens.append(token)
            next_ids = np.array([[token]], dtype=np.int64)
            for name, value in zip(self._past_names, outputs[1:], strict=True):
                # The encoder's keys and values are computed on the first step only.
                if step == 0 or ".decoder." in name:
                    past[name] = value
        return self.detokenize(tokens), score / (len(tokens) + 1)

    def detokenize(self, ids: Sequence[int]) -> str:
        """SentencePiece pieces to text: "▁" is a space; ids 3-258 are raw bytes."""
        raw = b"".join(self._tokens[i] for i in ids if 3 <= i < len(self._tokens))
        text = raw.decode("utf-8", errors="replace").replace("\u2581", " ")
        return " ".join(text.split())


# -- pocketsphinx ----------------------------------------------------------------

# CMU phones for spelling an acronym letter by letter ("ARPU" → A R P U).
_LETTER_PHONES = {
    "a": "EY", "b": "B IY", "c": "S IY", "d": "D IY", "e": "IY", "f": "EH F",
    "g": "JH IY", "h": "EY CH", "i": "AY", "j": "JH EY", "k": "K EY", "l": "EH L",
    "m": "EH M", "n": "EH N", "o": "OW", "p": "P IY", "q": "K Y UW", "r": "AA R",
    "s": "EH S", "t": "T IY", "u": "Y UW", "v": "V IY", "w": "D AH B AH L Y UW",
    "x": "EH K S", "y": "W AY", "z": "Z IY",
    "0": "Z IH R OW", "1": "W AH N", "2": "T UW", "3": "TH R IY", "4": "F AO R",
    "5": "F AY V", "6": "S IH K S", "7": "S EH V AH N", "8": "EY T", "9": "N AY N",
}  # fmt: skip


class PocketSphinxEngine:
    """CMU PocketSphinx with its bundled US English model: word times, weak on synthetic speech."""

    name = "pocketsphinx"
    FRAME_RATE = 100  # pocketsphinx frames per second

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EngineUnavailable("pocketsphinx is not installed") from exc
        self._decoder = Decoder(samprate=ENGINE_RATE, loglevel="FATAL")
        self._added: set[str] = set()

    def _add_glossary(self, glossary: Sequence[str]) -> None:
        for term in glossary:
            for word in re.findall(r"[0-9A-Za-z]+", term):
                key = word.lower()
                if key in self._added or self._decoder.lookup_word(key) is not None:
                    continue
                phones = " ".join(_LETTER_PHONES[ch] for ch in key if ch in _LETTER_PHONES)
                if phones:
                    self._decoder.add_word(key, phones, True)
                    self._added.add(key)

    def transcribe(
        self,
        samples: Samples,
        sample_rate: int,
        glossary: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Segment]:
        self._add_glossary(glossary)
        audio = to_float(samples)
        regions = engine_chunks(audio, sample_rate, 30.0)
        total = sum(end - start for start, end in regions) or 1
        done = 0
        segments: list[Segment] = []
        for start, end in regions:
            piece = resample(audio[start:end], sample_rate, ENGINE_RATE)
            pcm = np.clip(piece * 32768.0, -32768, 32767).astype("<i2")
            self._decoder.start_utt()
            self._decoder.process_raw(pcm.tobytes(), full_utt=True)
            self._decoder.end_utt()
            segments.extend(self._words(start / sample_rate, glossary))
            done += end - start
            if progress is not None:
                progress(done / total)
        if progress is not None and not regions:
            progress(1.0)
        return _join_words(segments)

    def _words(self, offset: float, glossary: Sequence[str]) -> Iterator[Segment]:
        for seg in self._decoder.seg():
            word = re.sub(r"\(\d+\)$", "", str(seg.word))
            if not word or word.startswith("<") or word.startswith("["):
                continue  # <s>, </s>, <sil>, [NOISE]
            yield Segment(
                offset + seg.start_frame / self.FRAME_RATE,
                offset + (seg.end_frame + 1) / self.FRAME_RATE,
                apply_glossary(word, glossary),
            )


def _join_words(
    words: list[Segment], pause_s: float = 0.6, longest_s: float = 10.0
) -> list[Segment]:
    """Words into phrase segments, broken at pauses and before ``longest_s``."""
    segments: list[Segment] = []
    current: list[Segment] = []
    for word in words:
        if current and (
            word.start - current[-1].end > pause_s or word.end - current[0].start > longest_s
        ):
            segments.append(
                Segment(current[0].start, current[-1].end, " ".join(w.text for w in current))
            )
            current = []
        current.append(word)
    if current:
        segments.append(
            Segment(current[0].start, current[-1].end, " ".join(w.text for w in current))
        )
    return segments


# -- choosing ------------------------------------------------------------------

ENGINES: dict[str, Callable[[], SpeechEngine]] = {
    "moonshine": MoonshineEngine,
    "pocketsphinx": PocketSphinxEngine,
}
PREFERENCE = ("moonshine", "pocketsphinx")


def available_engines() -> list[str]:
    """Names of the engines whose packages (and model files) are installed, best first."""
    names = []
    if importlib.util.find_spec("onnxruntime") is not None and _moonshine_dir() is not None:
        names.append("moonshine")
    if importlib.util.find_spec("pocketsphinx") is not None:
        names.append("pocketsphinx")
    return names


def get_engine(name: str | None = None, *, careful: bool = False) -> SpeechEngine:
    """The engine called ``name``, or the best installed one when ``name`` is None.

    ``careful``: a second reading of unsure pieces (Moonshine's ``CAREFUL_PADS_S``;
    see the module for why it is off by default).

    Raises ``EngineUnavailable`` for an unknown name or one that is not installed.
    Loading takes about half a second: keep the engine for a batch of recordings.
    """
    if name is None:
        installed = available_engines()
        if not installed:
            raise EngineUnavailable("no speech engine is installed (pip install pocketsphinx)")
        name = installed[0]
    factory = ENGINES.get(name)
    if factory is None:
        raise EngineUnavailable(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    engine = factory()
    if careful and isinstance(engine, MoonshineEngine):
        engine.pads_s = MoonshineEngine.CAREFUL_PADS_S
    return engine
