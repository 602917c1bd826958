"""The deck: a real PDF rendered by PDFium, and everything that is not a deck refused."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
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

NOW = datetime(2026, 11, 5, 21, 0, tzinfo=UTC)


def pdf(pages: int, size: tuple[float, float] = (960, 540)) -> bytes:
    """A real PDF of ``pages`` blank pages, written by PDFium."""
    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(*size)
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


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
