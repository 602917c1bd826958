"""The renderer: the child process that opens a deck with PDFium and writes one PNG a page.

``sandbox.render_in_child`` starts one per upload (not one per page) and
gives it the job as its one argument (JSON). Before it reads a byte of the
PDF it limits itself: address space and data (``RLIMIT_AS``/``RLIMIT_DATA``),
processor time (``RLIMIT_CPU``: SIGXCPU, then SIGKILL a second later), the
size of any file it writes, no core file; and it dies with the process that
started it. A PDF that gets past the page checks, decompresses into
gigabytes or draws a form inside a form a million times — or a PDFium bug —
then ends this process, never the web app.

It reads every page's size first (PDFium's: CropBox within MediaBox, turned
by /Rotate) and refuses the deck by ``limits.check_pages`` before rendering
any page. What it says goes to stdout, one JSON object a line:
``{"page": N}`` before page N is rendered (so the parent can name the page a
limit stopped), then ``{"done": [[w, h], ...]}`` or ``{"refused": "..."}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from callbridge.children import die_with_parent
from callbridge.slides.limits import DeckError, PageLimits, check_count, check_pages

# The exit status of a renderer that Python itself found out of memory
# (PDFium's own allocator aborts instead: SIGABRT).
MEMORY_EXIT = 3
RENDER_NICE = 5  # added to the web app's


def slide_name(number: int) -> str:
    """The image of slide ``number`` (1-based)."""
    return f"slide-{number:03d}.png"


def _say(**message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def peak_kib(pid: int | str = "self") -> int:
    """A process's peak resident memory (VmHWM), KiB; 0 once it is gone.

    Not ``ru_maxrss``: a child's counts the parent's size when it forked, which
    in a long-lived web process (or a test worker) is far larger than the child.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def confine(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Put this process's limits on; called before anything untrusted is read."""
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        resource.setrlimit(limit, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Batch work: behind the web app (nice 5, so 10) and far behind the media plane.
    os.nice(RENDER_NICE)
    # Linux: killed with the web process rather than left running to its limits.
    with contextlib.suppress(OSError, AttributeError):
        die_with_parent(signal.SIGKILL)


def render(pdf: Path, out: Path, limits: PageLimits) -> list[tuple[int, int]]:
    """Check every page's size, then render each into ``out``; the images' sizes, in order."""
    import pypdfium2 as pdfium  # in the child only, and only once it is confined

    try:
        document = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError as error:
        raise DeckError(f"the PDF cannot be read ({error})") from None
    try:
        check_count(len(document), limits)
        sizes = []
        for index in range(len(document)):
            try:
                sizes.append(document.get_page_size(index))
            except pdfium.PdfiumError:
                raise DeckError(f"page {index + 1} cannot be read") from None
        rendered = check_pages(sizes, limits)
        for number, ((width_pt, _), (width_px, height_px)) in enumerate(
            zip(sizes, rendered, strict=True), 1
        ):
            _say(page=number)
            page = document[number - 1]
            try:
                image = page.render(scale=width_px / width_pt).to_pil()
            finally:
                page.close()
            # The scale makes the size; this only guards against a renderer that disagrees.
            if image.width > width_px + 1 or image.height > height_px + 1:
                raise DeckError(f"page {number} rendered {image.width} × {image.height} px")
            image.save(out / slide_name(number), "PNG")
        return [(w, h) for w, h in rendered]
    finally:
        document.close()


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    confine(job["memory_bytes"], job["cpu_seconds"], job["file_bytes"])
    try:
        sizes = render(Path(job["pdf"]), Path(job["out"]), PageLimits(**job["limits"]))
    except DeckError as refusal:
        _say(refused=str(refusal))
    except MemoryError:
        return MEMORY_EXIT
    else:
        _say(done=sizes, peak_kib=peak_kib())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
