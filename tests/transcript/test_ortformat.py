"""Moonshine's .ort files read back as ONNX: the same model, with its weights folded once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbridge.transcript.engine import MoonshineEngine, _moonshine_dir
from callbridge.transcript.ortformat import OrtFormatError, ort_to_onnx

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx", reason="the onnx package is not installed (pyproject)")
MODELS = _moonshine_dir()
pytestmark = pytest.mark.skipif(MODELS is None, reason="moonshine-cpp is not installed")


def _sessions(name: str) -> tuple[Any, Any]:
    assert MODELS is not None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    as_saved = onnxruntime.InferenceSession(str(MODELS / name), options, providers=providers)
    folded = onnxruntime.InferenceSession(ort_to_onnx(MODELS / name), options, providers=providers)
    return as_saved, folded


def _first_step(hidden: np.ndarray) -> dict[str, np.ndarray]:
    empty = np.zeros((1, MoonshineEngine.HEADS, 0, MoonshineEngine.HEAD_DIM), np.float32)
    inputs: dict[str, np.ndarray] = {
        f"past_key_values.{layer}.{part}.{kind}": empty
        for layer in range(MoonshineEngine.LAYERS)
        for part in ("decoder", "encoder")
        for kind in ("key", "value")
    }
    inputs["input_ids"] = np.array([[MoonshineEngine.START_TOKEN]], np.int64)
    inputs["encoder_hidden_states"] = hidden
    inputs["use_cache_branch"] = np.array([False])
    return inputs


def test_the_onnx_model_computes_what_the_ort_file_does() -> None:
    audio = np.random.default_rng(7).normal(0, 0.1, 16_000 * 2).astype(np.float32)
    encoder, encoder_folded = _sessions("encoder_model.ort")
    hidden = encoder.run(None, {"input_values": audio[None, :]})[0]
    folded_hidden = encoder_folded.run(None, {"input_values": audio[None, :]})[0]
    assert np.allclose(hidden, folded_hidden, atol=1e-3)

    decoder, decoder_folded = _sessions("decoder_model_merged.ort")
    logits = decoder.run(None, _first_step(hidden))[0]
    started = time.process_time()
    folded_logits = decoder_folded.run(None, _first_step(hidden))[0]
    folded_s = time.process_time() - started
    started = time.process_time()
    decoder.run(None, _first_step(hidden))
    saved_s = time.process_time() - started
    assert np.allclose(logits, folded_logits, atol=1e-2)
    assert int(np.argmax(logits[0, -1])) == int(np.argmax(folded_logits[0, -1]))
    print(f"decoder step: {saved_s * 1000:.0f} ms CPU as saved, {folded_s * 1000:.0f} ms folded")


def test_a_file_that_is_not_an_ort_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.ort"
    path.write_bytes(b"\x08\x07" + b"not a flatbuffer" * 8)
    with pytest.raises(OrtFormatError, match="not an ONNX Runtime format model"):
        ort_to_onnx(path)
