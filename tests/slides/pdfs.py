"""Crafted PDFs, written object by object: odd page boxes and the bombs an attacker would upload."""

from __future__ import annotations

import io
import zlib

import pypdfium2 as pdfium


def pdf(pages: int, size: tuple[float, float] = (960, 540)) -> bytes:
    """A real PDF of ``pages`` blank pages, written by PDFium."""
    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(*size)
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


def write(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1; object 1 is the catalog), with its xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def stream(entries: bytes, data: bytes, *, flate: bool = False) -> bytes:
    if flate:
        data = zlib.compress(data, 9)
        entries += b" /Filter /FlateDecode"
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def _catalog(kids: list[int]) -> list[bytes]:
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)),
    ]


def pages(*boxes: bytes) -> bytes:
    """One page per entry, each with these box entries (``/MediaBox [0 0 1 14400]``, ...)."""
    kids = [3 + index for index in range(len(boxes))]
    objects = _catalog(kids)
    objects += [b"<< /Type /Page /Parent 2 0 R %s >>" % box for box in boxes]
    return write(objects)


def concatenation_bomb(repeats: int = 1500) -> bytes:
    """10 KB that asks for GBs: one page whose contents list one 1 MB stream ``repeats`` times.

    PDFium joins a page's content streams into one buffer before parsing it:
    1,500 repeats took 3 GB and 14 s in-process.
    """
    objects = _catalog([3])
    contents = b" ".join([b"4 0 R"] * repeats)
    objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540] /Contents [%s] >>"
                   % contents)  # fmt: skip
    objects.append(stream(b"", b" " * (1 << 20), flate=True))
    return write(objects)


def form_bomb(depth: int, fan: int = 10) -> bytes:
    """2 KB that draws one line ``fan ** depth`` times: a form drawing the next form ``fan`` times.

    Depth 5 costs seconds of processor time and ~200 MB; depth 9 took 24 GB.
    """
    objects = _catalog([3])
    objects.append(
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540]"
        b" /Resources << /XObject << /F 5 0 R >> >> /Contents 4 0 R >>"
    )
    objects.append(stream(b"", b"/F Do"))
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 960 540]"
    for _ in range(depth):
        inner = len(objects) + 2
        objects.append(stream(form + b" /Resources << /XObject << /F %d 0 R >> >>" % inner,
                              b"/F Do " * fan))  # fmt: skip
    objects.append(stream(form, b"0 0 m 900 500 l S"))
    return write(objects)
