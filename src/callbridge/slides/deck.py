"""An event's deck: the uploaded PDF checked, rendered page by page to images, and kept.

The operator uploads the deck in the console; listeners see its pages as
images (a browser shows a PNG whatever it thinks of PDFs) and may download the
PDF from the event page. PDFium (``pypdfium2``, whose wheel carries it) reads
and renders the PDF; it is told nothing but the bytes, and a file that is not
a PDF, that PDFium cannot read, or that is too long is refused with the
reason (``DeckError``) before anything is written. Rendering happens in a
fresh folder that replaces the old deck only once every page is written, so a
deck is either the old one or the new one, whole.

Files, under the data folder's ``decks/event-ID/``::

    deck.pdf          the upload, as the event page offers it
    deck.json         pages, width, height, the upload's name, size, SHA-256, when
    slide-001.png …   one image per page, ``RENDER_WIDTH`` pixels wide
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from callbridge.store.files import durable_dir, fsync_dir, write_atomic

MAX_BYTES = 50 * 1024 * 1024  # a 40-page deck with photographs is a few MB
MAX_PAGES = 150
RENDER_WIDTH = 1280  # pixels: sharp on a laptop, a few hundred KB a slide
DECK_PDF = "deck.pdf"
DECK_JSON = "deck.json"


class DeckError(ValueError):
    """A deck refused, with the reason for the operator."""


@dataclass(frozen=True)
class Deck:
    pages: int
    width: int
    height: int
    filename: str
    size: int
    sha256: str
    uploaded_at: str  # ISO 8601, UTC
    render_seconds: float

    @classmethod
    def load(cls, folder: Path) -> Deck | None:
        """The deck kept in ``folder``, or None when there is none (or it is unreadable)."""
        try:
            return cls(**json.loads((folder / DECK_JSON).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def slide_name(number: int) -> str:
    """The image of slide ``number`` (1-based)."""
    return f"slide-{number:03d}.png"


def _safe_filename(name: str) -> str:
    kept = "".join(c for c in Path(name).name if c.isalnum() or c in " ._-")[:100].strip()
    return kept or DECK_PDF


def render_deck(
    data: bytes,
    folder: Path,
    filename: str,
    uploaded_at: datetime,
    *,
    max_pages: int = MAX_PAGES,
    width: int = RENDER_WIDTH,
) -> Deck:
    """Check ``data`` as a PDF, render every page into ``folder`` (replacing what was there).

    Raises ``DeckError`` for an empty or oversized file, one that is not a PDF,
    one PDFium cannot open (or that asks for a password), and one with too
    many pages; ``folder`` is then left as it was.
    """
    if not data:
        raise DeckError("the file is empty")
    if len(data) > MAX_BYTES:
        raise DeckError(f"the file is {len(data) / 2**20:.0f} MB; a deck may be at most "
                        f"{MAX_BYTES // 2**20} MB")  # fmt: skip
    if not data[:1024].lstrip().startswith(b"%PDF-"):
        raise DeckError("the file is not a PDF (it does not begin with %PDF-)")
    import pypdfium2 as pdfium  # loaded by the first upload, not by every web process start

    started = time.perf_counter()
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        raise DeckError(f"the PDF cannot be read ({error})") from None
    try:
        pages = len(document)
        if pages == 0:
            raise DeckError("the PDF has no pages")
        if pages > max_pages:
            raise DeckError(f"the PDF has {pages} pages; a deck may have at most {max_pages}")
        durable_dir(folder.parent)
        building = Path(tempfile.mkdtemp(prefix=".deck-", dir=folder.parent))
        try:
            size = (0, 0)
            for index in range(pages):
                page = document[index]
                try:
                    page_width, _ = page.get_size()
                    image = page.render(scale=width / max(page_width, 1.0)).to_pil()
                    if index == 0:
                        size = image.size
                    png = io.BytesIO()
                    image.save(png, "PNG")
                    write_atomic(building / slide_name(index + 1), png.getvalue())
                finally:
                    page.close()
            write_atomic(building / DECK_PDF, data)
            deck = Deck(
                pages=pages,
                width=size[0],
                height=size[1],
                filename=_safe_filename(filename),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                uploaded_at=uploaded_at.isoformat(),
                render_seconds=round(time.perf_counter() - started, 3),
            )
            write_atomic(building / DECK_JSON, json.dumps(asdict(deck)).encode())
            building.chmod(0o700)
            # Swap: the old deck goes only once the new one is whole.
            old = folder.with_name(folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if folder.exists():
                folder.rename(old)
            building.rename(folder)
            fsync_dir(folder.parent)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    finally:
        document.close()
    return deck
