"""Logos: told apart by their bytes, held to their size, an SVG rebuilt or refused with why."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from callbridge.brand.logo import MAX_BYTES, PNG, SVG, LogoRefused, check_logo

NS = 'xmlns="http://www.w3.org/2000/svg"'


def png(width: int = 200, height: int = 60) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (31, 58, 95)).save(out, "PNG")
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR claiming ``width``×``height`` (nothing decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


GOOD_SVG = (
    '<?xml version="1.0"?>\n<!-- exported -->\n'
    f'<svg {NS} xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
    'viewBox="0 0 240 64" inkscape:version="1.3">'
    "<metadata><rdf/></metadata>"
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#1f3a5f"/></linearGradient></defs>'
    "<style>.mark{fill:url(#g)}</style>"
    '<rect class="mark" width="64" height="64" rx="8"/>'
    '<use xlink:href="#g"/>'
    '<text x="76" y="44" font-size="32" font-family="sans-serif">Acme</text></svg>'
).encode()


def test_a_png_is_kept_as_sent_with_its_size() -> None:
    data = png()
    logo = check_logo(data)
    assert (logo.media_type, logo.width, logo.height, logo.data) == (PNG, 200, 60, data)
    assert len(logo.digest) == 16


def test_a_good_svg_is_rebuilt_without_what_it_does_not_need() -> None:
    logo = check_logo(GOOD_SVG)
    text = logo.data.decode()
    assert logo.media_type == SVG and (logo.width, logo.height) == (240, 64)
    assert text.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in text
    for gone in ("metadata", "rdf", "inkscape", "exported", "<?xml"):
        assert gone not in text
    for kept in ("fill:url(#g)", 'xlink:href="#g"', ">Acme</text>", "linearGradient"):
        assert kept in text
    assert check_logo(logo.data).data == logo.data  # rebuilt once, stable after


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "is empty"),
        (b"GIF89a" + bytes(100), "neither a PNG nor an SVG"),
        (b"\xff\xd8\xff\xe0" + bytes(100), "neither a PNG nor an SVG"),
        (b"%PDF-1.7", "neither a PNG nor an SVG"),
        (png_header(2001, 100) + bytes(64), "2001×100 pixels; a logo is at most 2000×2000"),
        (png_header(200, 60) + b"garbage", "damaged PNG"),
        (b"\x89PNG\r\n\x1a\n", "not a whole PNG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES), "a logo is at most 512 KB"),
        (f"<svg {NS}><script>alert(1)</script></svg>".encode(), "holds a script"),
        (f'<svg {NS} viewBox="0 0 1 1" onload="alert(1)"/>'.encode(), "event attribute (onload"),
        (f'<svg {NS}><rect ONCLICK="x"/></svg>'.encode(), "event attribute"),
        (
            f'<svg {NS}><foreignObject><p xmlns="http://www.w3.org/1999/xhtml"/></foreignObject>'
            "</svg>".encode(),
            "foreignObject",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1"><image href="https://evil.example/x.png"/></svg>'.encode(),
            "image",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1" xmlns:x="http://www.w3.org/1999/xlink">'
            '<use x:href="https://evil.example/s.svg#a"/></svg>'.encode(),
            "refers outside the file",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1"><rect style="fill:url(https://evil.example/t)"/></svg>'
            "".encode(),
            "refers outside the file",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1"><style>@import "https://evil.example/a.css";</style>'
            "</svg>".encode(),
            "refers outside the file",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1"><a href="javascript:alert(1)"><rect/></a></svg>'.encode(),
            "a link",
        ),
        (
            f'<svg {NS} viewBox="0 0 1 1"><set attributeName="href" to="javascript:x"/></svg>'
            "".encode(),
            "an animation",
        ),
        (
            b'<!DOCTYPE svg [<!ENTITY lol "lol">]><svg xmlns="http://www.w3.org/2000/svg"/>',
            "DOCTYPE",
        ),
        (b'<svg viewBox="0 0 1 1"/>', "not an SVG image"),
        (f"<svg {NS}><rect/></svg>".encode(), "has no size"),
        (f"<svg {NS}><rect></svg>".encode(), "not well-formed"),
        (
            f'<svg {NS} viewBox="0 0 10 10">'.encode() + b"<g>" * 5001 + b"</g>" * 5001 + b"</svg>",
            "nests elements over 64 deep",
        ),
        (f'<svg {NS} viewBox="0 0 10 10">'.encode() + b"<g/>" * 5001 + b"</svg>", "5000 elements"),
    ],
)
def test_what_is_refused_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(LogoRefused) as refused:
        check_logo(data)
    assert reason in str(refused.value)


def test_a_huge_vector_is_brought_down_to_the_limit() -> None:
    logo = check_logo(f'<svg {NS} width="8000" height="2000"><rect/></svg>'.encode())
    assert (logo.width, logo.height) == (2000, 500)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_logo_or_a_refusal(data: bytes) -> None:
    for sample in (data, b"<svg " + data, b"\x89PNG\r\n\x1a\n" + data):
        with contextlib.suppress(LogoRefused):
            check_logo(sample)
