"""Reading rendered releases back: plain text of every format, HTML structure."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_BLOCKS = frozenset({"p", "h1", "h2", "li", "ul", "address", "header", "footer", "section"})


class PageReader(HTMLParser):
    """Collects the visible text, every start tag with its attributes, and nesting faults."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.faults: list[str] = []
        self.doctype: str | None = None
        self._skip = 0

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "title", "head"):
            self._skip += 1
        if tag == "br" or tag in _BLOCKS:
            self.text.append("\n")
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            self.faults.append(f"end tag for void element {tag}")
            return
        if not self.stack or self.stack[-1] != tag:
            self.faults.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("style", "title", "head"):
            self._skip -= 1
        if tag in _BLOCKS:
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def read_page(page: str) -> PageReader:
    reader = PageReader()
    reader.feed(page)
    reader.close()
    return reader


def html_text(page: str) -> str:
    """The words a reader sees on the page, one block a line."""
    return _tidy("".join(read_page(page).text))


_MD_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(<[^>]*>\)")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto|tel):[^>]*)>")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def markdown_text(markdown: str) -> str:
    """The words a Markdown renderer would show, one block or hard-broken line a line."""
    text = _MD_LINK.sub(r"\1", markdown)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = re.sub(r"^#+ ", "", text, flags=re.MULTILINE)
    text = text.replace("**", "")
    text = re.sub(r"\\$", "", text, flags=re.MULTILINE)
    return _tidy(_MD_ESCAPE.sub(r"\1", text))


def plain_text(text: str) -> str:
    return _tidy(text)


def _tidy(text: str) -> str:
    # One line per block, single spaces, no blank lines: formats compare alike.
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
