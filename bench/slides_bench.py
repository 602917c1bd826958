"""How long a deck takes to render: Chromium prints an N-page deck, PDFium renders it.

Each slide has a title, a paragraph, a table of figures and a chart-like gradient
block, as an earnings deck does. Prints the render time per deck and per page
(median of --repeats) and how to reproduce it:

    .venv/bin/python bench/slides_bench.py --pages 40 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.chromium import launch  # noqa: E402

from callbridge.slides.deck import render_deck  # noqa: E402

SLIDE = (
    '<section style="page-break-after: always; height: 92vh; font-family: sans-serif">'
    "<h1>Q3 2026 results: slide {n}</h1>"
    "<p>Revenue grew 12% to $42 million; gross margin 61.4%; EPS $0.31 per share.</p>"
    '<table border="1">{rows}</table>'
    '<div style="height: 30vh; background: linear-gradient(90deg, #0b5, #05b)"></div>'
    "</section>"
)


def deck(pages: int) -> bytes:
    rows = "".join(f"<tr><td>Segment {i}</td><td>${i * 3}.{i} million</td></tr>" for i in range(8))
    html = "".join(SLIDE.format(n=n, rows=rows) for n in range(1, pages + 1))
    with launch() as browser:
        page = browser.new_page()
        page.set_content(html)
        data: bytes = page.pdf(format="A4", landscape=True)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = deck(args.pages)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            started = time.perf_counter()
            rendered = render_deck(data, Path(tmp) / "event-1", "deck.pdf", datetime.now(UTC))
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    print(
        f"{rendered.pages}-page deck ({len(data) / 1024:.0f} KB PDF): rendered in {seconds:.2f} s "
        f"(median of {args.repeats}), {1000 * seconds / rendered.pages:.0f} ms a page, "
        f"{rendered.width}x{rendered.height} PNG"
    )
    print(
        f"reproduce: .venv/bin/python bench/slides_bench.py --pages {args.pages} "
        f"--repeats {args.repeats}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
