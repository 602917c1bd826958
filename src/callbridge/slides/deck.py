"""An event's deck: the uploaded PDF checked, rendered page by page to images, and kept.

The operator uploads the deck in the console; listeners see its pages as
images (a browser shows a PNG whatever it thinks of PDFs) and may download the
PDF from the event page. PDFium (``pypdfium2``, whose wheel carries it) reads
and renders the PDF, never in the web process: in a child process per upload
that is confined in memory and time (``sandbox``), which checks every page's
size before it renders any (``limits``). A file that is not a PDF, that PDFium
cannot read, that is too long, whose pages are too big, or that the child
cannot render within its limits is refused with the reason (``DeckError``).
Rendering happens in a fresh folder that replaces the old deck only once every
page is written, so a deck is either the old one or the new one, whole.

Files, under the data folder's ``decks/event-ID/``::

    deck.pdf          the upload, as the event page offers it
    deck.json         pages, width, height, the upload's name, size, SHA-256, when
    slide-001.png …   one image per page, ``RENDER_WIDTH`` pixels wide
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from callbridge.slides.limits import DEFAULT_LIMITS, RENDER_WIDTH, DeckError, PageLimits
from callbridge.slides.render import slide_name
from callbridge.slides.sandbox import RenderBudget, render_in_child
from callbridge.store.files import durable_dir, fsync_dir, fsync_file, write_atomic

__all__ = [
    "MAX_BYTES", "MAX_PAGES", "RENDER_WIDTH", "Deck", "DeckError", "render_deck", "slide_name"
]  # fmt: skip

MAX_BYTES = 50 * 1024 * 1024  # a 40-page deck with photographs is a few MB
MAX_PAGES = DEFAULT_LIMITS.max_pages
DECK_PDF = "deck.pdf"
DECK_JSON = "deck.json"


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


def _safe_filename(name: str) -> str:
    kept = "".join(c for c in Path(name).name if c.isalnum() or c in " ._-")[:100].strip()
    return kept or DECK_PDF


def render_deck(
    data: bytes,
    folder: Path,
    filename: str,
    uploaded_at: datetime,
    *,
    limits: PageLimits = DEFAULT_LIMITS,
    budget: RenderBudget | None = None,
) -> Deck:
    """Check ``data`` as a PDF, render every page into ``folder`` (replacing what was there).

    Raises ``DeckError`` for an empty or oversized file, one that is not a PDF,
    one PDFium cannot open (or that asks for a password), one with too many
    pages or a page over ``limits``, and one the renderer cannot finish within
    ``budget``; ``folder`` is then left as it was. Blocks for as long as the
    renderer runs (at most the budget's wall time): call it from a worker thread.
    """
    if not data:
        raise DeckError("the file is empty")
    if len(data) > MAX_BYTES:
        raise DeckError(f"the file is {len(data) / 2**20:.0f} MB; a deck may be at most "
                        f"{MAX_BYTES // 2**20} MB")  # fmt: skip
    if not data[:1024].lstrip().startswith(b"%PDF-"):
        raise DeckError("the file is not a PDF (it does not begin with %PDF-)")
    durable_dir(folder.parent)
    building = Path(tempfile.mkdtemp(prefix=".deck-", dir=folder.parent))
    try:
        write_atomic(building / DECK_PDF, data)
        rendered = render_in_child(building / DECK_PDF, building, limits, budget or RenderBudget())
        width_px, height_px = rendered.sizes[0]
        # The child wrote the pages; they are on disk before the folder is swapped in.
        for number in range(1, len(rendered.sizes) + 1):
            fsync_file(building / slide_name(number))
        deck = Deck(
            pages=len(rendered.sizes),
            width=width_px,
            height=height_px,
            filename=_safe_filename(filename),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            uploaded_at=uploaded_at.isoformat(),
            render_seconds=rendered.seconds,
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
    return deck
