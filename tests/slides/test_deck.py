"""The deck: a real PDF rendered by PDFium, and everything that is not a deck refused."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from callbridge.slides.deck import (
    DECK_JSON,
    DECK_PDF,
    MAX_BYTES,
    MAX_PAGES,
    Deck,
    DeckError,
    render_deck,
    slide_name,
)
from callbridge.store import layout
from tests.slides.pdfs import pages, pdf

NOW = datetime(2026, 11, 5, 21, 0, tzinfo=UTC)


def test_every_page_is_rendered_at_the_width_and_the_pdf_kept(tmp_path: Path) -> None:
    folder = layout.deck_dir(tmp_path, 1)
    data = pdf(3)
    deck = render_deck(data, folder, "../Q3 results deck.pdf", NOW)
    assert (deck.pages, deck.width, deck.height) == (3, 1280, 720)
    assert deck.filename == "Q3 results deck.pdf"  # no path from the upload's name
    for number in (1, 2, 3):
        with Image.open(folder / slide_name(number)) as image:
            assert image.format == "PNG" and image.size == (1280, 720)
    assert (folder / DECK_PDF).read_bytes() == data
    assert Deck.load(folder) == deck
    assert json.loads((folder / DECK_JSON).read_text())["sha256"] == deck.sha256
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_a_new_deck_replaces_the_old_whole(tmp_path: Path) -> None:
    folder = layout.event_folder(tmp_path, 1)
    render_deck(pdf(3), folder, "a.pdf", NOW)
    render_deck(pdf(2), folder, "b.pdf", NOW)
    assert Deck.load(folder) is not None and Deck.load(folder).pages == 2  # type: ignore[union-attr]
    assert not (folder / slide_name(3)).exists()
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # nothing left over


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (b"", "empty"),
        (b"PK\x03\x04 a zip, or a .pptx", "not a PDF"),
        (b"<html><body>deck</body></html>", "not a PDF"),
        (b"%PDF-1.7\n this is no PDF at all", "cannot be read"),
        (b"%PDF-" + b"0" * MAX_BYTES, "at most 50 MB"),
    ],
)
def test_what_is_not_a_readable_pdf_is_refused_and_nothing_changes(
    tmp_path: Path, data: bytes, refusal: str
) -> None:
    folder = layout.event_folder(tmp_path, 1)
    render_deck(pdf(1), folder, "kept.pdf", NOW)
    with pytest.raises(DeckError, match=refusal):
        render_deck(data, folder, "x.pdf", NOW)
    kept = Deck.load(folder)
    assert kept is not None and kept.filename == "kept.pdf"


def test_a_500_page_deck_is_refused_by_its_page_count(tmp_path: Path) -> None:
    with pytest.raises(DeckError, match=f"500 pages; a deck may have at most {MAX_PAGES}"):
        render_deck(pdf(500), layout.event_folder(tmp_path, 1), "long.pdf", NOW)
    assert not layout.event_folder(tmp_path, 1).exists()
    assert list(tmp_path.iterdir()) == []  # the half-built folder is gone


def test_a_deck_that_is_missing_or_unreadable_loads_as_none(tmp_path: Path) -> None:
    assert Deck.load(tmp_path) is None
    (tmp_path / DECK_JSON).write_text("{not json")
    assert Deck.load(tmp_path) is None


def test_a_page_14400_pt_tall_is_refused_by_its_size_and_nothing_changes(tmp_path: Path) -> None:
    folder = tmp_path / "event-1"
    render_deck(pdf(1), folder, "kept.pdf", NOW)
    data = pages(b"/MediaBox [0 0 1 14400]")
    assert len(data) < 420  # the finding's file was 416 bytes
    started = time.monotonic()
    with pytest.raises(DeckError) as refused:
        render_deck(data, folder, "tall.pdf", NOW)
    assert str(refused.value) == (
        "page 1 is 1 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a side"
    )
    assert time.monotonic() - started < 20  # a child's start; seconds on a loaded host
    kept = Deck.load(folder)
    assert kept is not None and kept.filename == "kept.pdf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["event-1"]


def test_150_pages_of_100_by_14400_pt_are_refused_within_seconds(tmp_path: Path) -> None:
    data = pages(*[b"/MediaBox [0 0 100 14400]"] * 150)
    started = time.monotonic()
    with pytest.raises(DeckError, match=r"^page 1 is 100 × 14,400 pt; a slide may be at most"):
        render_deck(data, tmp_path / "event-1", "tall.pdf", NOW)
    elapsed = time.monotonic() - started
    print(f"150 pages of 100 × 14,400 pt refused in {elapsed:.2f} s")
    assert elapsed < 20  # was minutes, rendering 1280 × 184,320 px each
    assert list(tmp_path.iterdir()) == []


def test_the_size_checked_is_the_box_pdfium_draws_cropped_and_turned(tmp_path: Path) -> None:
    # A 14,400 pt MediaBox cropped to 16:9 is a slide; the crop is what is drawn.
    cropped = pages(b"/MediaBox [0 0 14400 14400] /CropBox [100 100 1060 640]")
    deck = render_deck(cropped, tmp_path / "event-1", "cropped.pdf", NOW)
    assert (deck.width, deck.height) == (1280, 720)
    # 300 × 1,200 pt upright would be 1280 × 5120 px; turned a quarter it is 1280 × 320.
    upright = pages(b"/MediaBox [0 0 300 1200]")
    with pytest.raises(DeckError, match=r"^page 1 is 300 × 1,200 pt and would be 1,280 × 5,120 px"):
        render_deck(upright, tmp_path / "event-2", "upright.pdf", NOW)
    turned = pages(b"/MediaBox [0 0 300 1200] /Rotate 90")
    deck = render_deck(turned, tmp_path / "event-2", "turned.pdf", NOW)
    assert (deck.width, deck.height) == (1280, 320)
    # A later page over the limit is named, and nothing of the earlier ones is kept.
    mixed = pages(b"/MediaBox [0 0 960 540]", b"/MediaBox [0 0 960 540]",
                  b"/MediaBox [0 0 1 14400] /Rotate 270")  # fmt: skip
    with pytest.raises(DeckError, match=r"^page 3 is 14,400 × 1 pt"):
        render_deck(mixed, tmp_path / "event-2", "mixed.pdf", NOW)
    kept = Deck.load(tmp_path / "event-2")
    assert kept is not None and kept.filename == "turned.pdf"
