"""The renderer's child process: bombs that pass the page checks are stopped by its limits."""

from __future__ import annotations

import io
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from callbridge.slides.deck import Deck, DeckError, render_deck
from callbridge.slides.sandbox import RenderBudget
from tests.slides.pdfs import concatenation_bomb, form_bomb, pages, pdf

NOW = datetime(2026, 11, 5, 21, 0, tzinfo=UTC)


def renderer_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("deck renderer")]


def peak_mib(line: str) -> int:
    found = re.search(r"peak (\d+) MiB", line)
    assert found, line
    return int(found.group(1))


def refused_within(
    data: bytes, folder: Path, budget: RenderBudget, seconds: float
) -> tuple[str, float]:
    """Upload ``data`` over a kept deck: the refusal and how long it took (the old deck stays)."""
    render_deck(pdf(2), folder, "kept.pdf", NOW)
    started = time.monotonic()
    with pytest.raises(DeckError) as refused:
        render_deck(data, folder, "bomb.pdf", NOW, budget=budget)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, elapsed
    kept = Deck.load(folder)
    assert kept is not None and kept.filename == "kept.pdf" and kept.pages == 2
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no half-built deck
    return str(refused.value), elapsed


def test_a_content_stream_bomb_is_stopped_by_the_memory_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 10 KB asking for 1.5 GB of content; in the web process it took 3 GB and 14 s.
    caplog.set_level(logging.INFO, "callbridge.slides.sandbox")
    data = concatenation_bomb()
    assert len(data) < 11_000
    message, elapsed = refused_within(data, tmp_path / "event-1", RenderBudget(), 60)
    assert message.startswith(
        "page 1 could not be rendered within 1 GiB of memory, the most a deck may take"
    )
    peak = peak_mib(renderer_logs(caplog)[-1])
    print(f"content stream bomb: refused in {elapsed:.2f} s, the renderer peaked at {peak} MiB")
    assert peak <= 1024


def test_a_form_bomb_is_stopped_by_the_processor_time_limit(tmp_path: Path) -> None:
    # A form drawing a form ten times, five deep: 100,000 lines, seconds of processor time.
    budget = RenderBudget(cpu_seconds=1)
    message, elapsed = refused_within(form_bomb(5), tmp_path / "event-1", budget, 60)
    assert message.startswith("page 1 could not be rendered within 1 s of processor time")
    print(f"form bomb (1 s of processor time): refused in {elapsed:.2f} s")


def test_a_renderer_past_its_wall_time_is_killed(tmp_path: Path) -> None:
    budget = RenderBudget(wall_seconds=1.5)
    message, elapsed = refused_within(form_bomb(5), tmp_path / "event-1", budget, 10)
    assert message.startswith("page 1 could not be rendered within 1.5 s, the most a deck may take")
    print(f"form bomb (1.5 s in all): refused in {elapsed:.2f} s")


def test_a_deep_form_bomb_is_stopped_by_the_memory_limit(tmp_path: Path) -> None:
    # Seven deep: ten million lines; PDFium keeps every form's objects (nine deep took 24 GB).
    budget = RenderBudget(memory_bytes=512 << 20)
    message, elapsed = refused_within(form_bomb(7), tmp_path / "event-1", budget, 60)
    assert message.startswith("page 1 could not be rendered within 512 MiB of memory")
    print(f"form bomb seven deep (512 MiB): refused in {elapsed:.2f} s")


def test_one_renderer_renders_the_whole_deck_and_a_photograph_fits_its_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "callbridge.slides.sandbox")
    photo = io.BytesIO()
    Image.effect_noise((3000, 2000), 64).convert("RGB").save(photo, "JPEG", quality=90)
    document = pdfium.PdfDocument.new()
    for _ in range(2):
        page = document.new_page(960, 540)
        image = pdfium.PdfImage.new(document)
        image.load_jpeg(io.BytesIO(photo.getvalue()), inline=True)
        image.set_matrix(pdfium.PdfMatrix().scale(960, 540))
        page.insert_obj(image)
        page.gen_content()
    out = io.BytesIO()
    document.save(out)
    document.close()
    deck = render_deck(out.getvalue(), tmp_path / "event-1", "photos.pdf", NOW)
    assert (deck.pages, deck.width, deck.height) == (2, 1280, 720)
    logs = renderer_logs(caplog)
    assert len(logs) == 1  # one child for the deck, not one a page
    print(f"two 6-megapixel photographs: {deck.render_seconds} s, peak {peak_mib(logs[0])} MiB")
    assert peak_mib(logs[0]) < 512


SEED = pages(b"/MediaBox [0 0 960 540]", b"/MediaBox [0 0 720 540] /Rotate 90")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.binary(max_size=8)), max_size=6))
def test_a_mangled_pdf_is_a_deck_or_a_refusal_and_never_anything_else(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(SEED)
    for offset, replacement in edits:
        data[offset : offset + len(replacement)] = replacement
    folder = tmp_path_factory.mktemp("fuzz") / "event-1"
    try:
        deck = render_deck(bytes(data), folder, "mangled.pdf", NOW, budget=RenderBudget(
            memory_bytes=256 << 20, cpu_seconds=5, wall_seconds=20))  # fmt: skip
    except DeckError as refusal:
        assert str(refusal)
        assert not folder.exists()
    else:
        assert Deck.load(folder) == deck and 1 <= deck.pages <= 2
