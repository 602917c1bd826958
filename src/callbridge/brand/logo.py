"""A company's logo as uploaded: checked, and for an SVG, rebuilt from what is safe in it.

A logo is a PNG or an SVG, told apart by its first bytes (never by its file
name or the type the browser claims), at most ``MAX_BYTES`` long and
``MAX_SIDE`` pixels on a side. A PNG's size is read from its header, then
Pillow checks the whole file decodes. An SVG is parsed without a DOCTYPE
(so no entity can be declared: no "billion laughs", no external entity)
and refused, with what was found, if it holds anything active or anything
from elsewhere: a script, an event attribute (``onload``), a
``foreignObject``, a link, an animation that could set one, an embedded or
linked image, a reference outside the file (``href`` or ``url(...)`` not
starting with ``#``, a stylesheet ``@import``). What passes is rebuilt
element by element from an allow-list (editor metadata and other namespaces
are dropped) and serialised again, so what we serve is what we checked.
The server sends an SVG with its own ``Content-Security-Policy:
default-src 'none'`` as well (``web.brand``). Pure: no web, no store.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.parsers import expat

from PIL import Image

MAX_BYTES = 512 * 1024
MAX_SIDE = 2000
MAX_ELEMENTS = 5000
MAX_DEPTH = 64  # the rebuild recurses; real logos nest a handful of groups
PNG = "image/png"
SVG = "image/svg+xml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

# Drawing elements kept as they are; any other SVG element (metadata, switch, …) is
# dropped with what it holds, any element refused below stops the upload.
ALLOWED = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc", "style",
        "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "textPath",
        "linearGradient", "radialGradient", "stop", "pattern", "clipPath", "mask",
        "filter", "feGaussianBlur", "feOffset", "feBlend", "feColorMatrix",
        "feFlood", "feComposite", "feMerge", "feMergeNode",
    }
)  # fmt: skip
REFUSED = {
    "script": "a script",
    "foreignObject": "a foreignObject (HTML inside the SVG)",
    "a": "a link",
    "image": "an embedded or linked image (upload the logo as a PNG instead)",
    "feImage": "an embedded or linked image",
    "animate": "an animation",
    "set": "an animation",
    "animateMotion": "an animation",
    "animateTransform": "an animation",
    "iframe": "an iframe",
    "embed": "an embedded object",
    "object": "an embedded object",
    "handler": "an event handler",
    "listener": "an event handler",
}
_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*$")


class LogoRefused(ValueError):
    """The upload is not a logo we serve; the message says why, for the form's field."""


@dataclass(frozen=True)
class Logo:
    """A checked logo: the bytes to serve, their type, their size in pixels, their digest."""

    media_type: str
    data: bytes
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]

    @property
    def extension(self) -> str:
        return "svg" if self.media_type == SVG else "png"


def check_logo(data: bytes) -> Logo:
    """The logo in ``data``, rebuilt if it is an SVG; ``LogoRefused`` with the reason if not."""
    if not data:
        raise LogoRefused("is empty: choose a PNG or SVG file")
    if len(data) > MAX_BYTES:
        raise LogoRefused(f"is {len(data) // 1024} KB; a logo is at most {MAX_BYTES // 1024} KB")
    if data.startswith(PNG_MAGIC):
        return _png(data)
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype")):
        return sanitise_svg(data)
    raise LogoRefused("is neither a PNG nor an SVG image (whatever its name says)")


def _png(data: bytes) -> Logo:
    # The IHDR chunk comes first: length 13, "IHDR", width, height (big-endian).
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise LogoRefused("is not a whole PNG image (no header)")
    width, height = struct.unpack(">II", data[16:24])
    _fits(width, height)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises many kinds for a broken file
        raise LogoRefused(f"is a damaged PNG image ({type(exc).__name__})") from None
    return Logo(PNG, data, width, height)


def _fits(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise LogoRefused("has no width or height")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise LogoRefused(f"is {width}×{height} pixels; a logo is at most {MAX_SIDE}×{MAX_SIDE}")


def _refuse_doctype(data: bytes) -> None:
    parser = expat.ParserCreate()

    def doctype(*_: object) -> None:
        raise LogoRefused("declares a DOCTYPE or entities, which a logo does not need")

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise LogoRefused(f"is not well-formed SVG ({exc})") from None


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _outside(value: str) -> bool:
    """True if ``value`` (an href or a url(...) target) points outside the file."""
    return not value.strip().startswith("#")


def _check_text(value: str, where: str) -> None:
    lowered = value.lower()
    if "javascript:" in lowered or "@import" in lowered:
        raise LogoRefused(f"refers outside the file ({where})")
    for target in _URL.findall(value):
        if _outside(target):
            raise LogoRefused(f"refers outside the file (url({target[:60]}) in {where})")


def _clean(element: ET.Element, count: list[int], depth: int = 0) -> ET.Element | None:
    count[0] += 1
    if count[0] > MAX_ELEMENTS:
        raise LogoRefused(f"has over {MAX_ELEMENTS} elements; simplify it or upload a PNG")
    if depth > MAX_DEPTH:
        raise LogoRefused(f"nests elements over {MAX_DEPTH} deep; simplify it or upload a PNG")
    ns, local = _split(element.tag)
    if ns == SVG_NS and local in REFUSED:
        raise LogoRefused(f"holds {REFUSED[local]} (<{local}>); a logo may hold only drawing")
    if ns not in ("", SVG_NS) and local in REFUSED:
        raise LogoRefused(f"holds {REFUSED[local]} (<{local}>); a logo may hold only drawing")
    if ns != SVG_NS or local not in ALLOWED:
        return None  # editor metadata, RDF, other namespaces: not needed to draw it
    clean = ET.Element(local)  # written back in the SVG namespace, set once on the root
    for name, value in element.attrib.items():
        a_ns, a_local = _split(name)
        if a_local.lower().startswith("on"):
            raise LogoRefused(f"has an event attribute ({a_local}=…), which could run a script")
        if a_local == "href" and a_ns in ("", XLINK_NS):
            if _outside(value):
                raise LogoRefused(f"refers outside the file (href {value[:60]!r})")
        elif a_ns not in ("", XML_NS):
            continue  # inkscape:label and the like
        _check_text(value, f"the {a_local} attribute")
        clean.set(name, value)
    if element.text and element.text.strip():
        if local == "style":
            _check_text(element.text, "a <style>")
        clean.text = element.text
    for child in element:
        kept = _clean(child, count, depth + 1)
        if kept is not None:
            kept.tail = child.tail if child.tail and child.tail.strip() else None
            clean.append(kept)
    return clean


def _side(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.match(value)
    return float(match.group(1)) if match else None


def _size(root: ET.Element) -> tuple[int, int]:
    width, height = _side(root.get("width")), _side(root.get("height"))
    box = (root.get("viewBox") or "").replace(",", " ").split()
    if (width is None or height is None) and len(box) == 4:
        try:
            width, height = float(box[2]), float(box[3])
        except ValueError:
            width = height = None
    if width is None or height is None:
        raise LogoRefused("has no size: give the <svg> a viewBox (or a width and height)")
    # A vector logo scales; its size only sets the shape, so a large one is brought down.
    scale = max(width, height) / MAX_SIDE if max(width, height) > MAX_SIDE else 1.0
    w, h = max(1, round(width / scale)), max(1, round(height / scale))
    _fits(w, h)
    return w, h


def sanitise_svg(data: bytes) -> Logo:
    """The SVG rebuilt from its allowed parts; ``LogoRefused`` naming what was refused."""
    _refuse_doctype(data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise LogoRefused(f"is not well-formed SVG ({exc})") from None
    if root.tag != f"{{{SVG_NS}}}svg":  # also an SVG without its namespace: not an image
        raise LogoRefused("is XML but not an SVG image (its root is not an SVG <svg>)")
    clean = _clean(root, [0])
    assert clean is not None  # the root is an allowed <svg>
    width, height = _size(clean)
    clean.set("xmlns", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    body = ET.tostring(clean, encoding="unicode")
    return Logo(SVG, body.encode("utf-8"), width, height)
