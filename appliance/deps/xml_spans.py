"""Where the elements of an XML document are written, for span-precise edits.

:func:`parse_spans` returns the document's element tree with, for every element, the
character span of its content in the text as given (line endings untouched), so a
rewrite replaces the characters of one ``<version>`` and leaves the formatting, the
comments and the order of everything else as they were; re-serialising the XML would
not.

Repositories are untrusted, and XML has ways to make a parser read local files or
expand a few bytes into gigabytes (external entities, "billion laughs"). So a document
is first parsed with :mod:`defusedxml`, which refuses any DTD, and only then walked
with :mod:`xml.parsers.expat` for the offsets; that walk refuses a DTD as well, should
the first check ever change. A refused document raises :class:`UnsafeXml`, a malformed
one :class:`InvalidXml`.

Namespaces are dropped from tag names (a POM's ``{http://maven.apache.org/POM/4.0.0}``):
the element structure is what identifies a dependency.
"""

from __future__ import annotations

import bisect
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


class UnsafeXml(ValueError):
    """The document declares a DTD or entities; it is not read."""


class InvalidXml(ValueError):
    """The document is not well-formed XML."""


@dataclass
class XmlElement:
    tag: str  # local name, without namespace
    start: int  # offset of the "<" of the start tag
    line: int  # 1-based
    content_start: int = 0  # offsets of what lies between the start and end tag
    content_end: int = 0
    children: list[XmlElement] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)  # its own character data, decoded

    def child(self, tag: str) -> XmlElement | None:
        return next((c for c in self.children if c.tag == tag), None)

    def all(self, tag: str) -> Iterator[XmlElement]:
        return (c for c in self.children if c.tag == tag)

    def find(self, *path: str) -> XmlElement | None:
        """The first element down ``path`` (``find("build", "plugins")``)."""
        node: XmlElement | None = self
        for tag in path:
            node = node.child(tag) if node is not None else None
        return node

    @property
    def text(self) -> str:
        return "".join(self.chunks).strip()

    def text_span(self, source: str) -> tuple[int, int] | None:
        """The span of the element's trimmed text in ``source``, when the text is written
        plainly there: no child elements, comments, CDATA or character references."""
        raw = source[self.content_start : self.content_end]
        if self.children or raw.strip() != self.text:
            return None
        lead = len(raw) - len(raw.lstrip())
        start = self.content_start + lead
        return start, start + len(self.text)


def _refuse(*_: object) -> None:
    raise UnsafeXml("the document declares a DTD or entities")


def _start_tag_end(text: str, start: int) -> int:
    """The offset just past the ``>`` of the start tag at ``start`` (quotes respected)."""
    quote: str | None = None
    for i in range(start, len(text)):
        char = text[i]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == ">":
            return i + 1
    return len(text)


class _Offsets:
    """Byte offsets into the UTF-8 encoding (what expat reports) → offsets into the text."""

    def __init__(self, text: str) -> None:
        self._starts: list[int] | None = None
        if not text.isascii():
            self._starts = []
            position = 0
            for char in text:
                self._starts.append(position)
                position += len(char.encode("utf-8"))

    def char(self, byte: int) -> int:
        # expat reports offsets at character boundaries, so the match is exact
        return byte if self._starts is None else bisect.bisect_left(self._starts, byte)


def parse_spans(text: str) -> XmlElement:
    """The root element of ``text`` with content spans; raises :class:`UnsafeXml` or
    :class:`InvalidXml`."""
    try:
        fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXml(f"the document declares a DTD or entities ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise InvalidXml(str(exc)) from exc
    offsets = _Offsets(text)
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    stack: list[XmlElement] = []
    roots: list[XmlElement] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        at = offsets.char(parser.CurrentByteIndex)
        element = XmlElement(name.rsplit(" ", 1)[-1], at, text.count("\n", 0, at) + 1)
        element.content_start = element.content_end = _start_tag_end(text, at)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_name: str) -> None:
        # at the "</" of the end tag; for "<x/>" just past it, where the content began
        stack.pop().content_end = offsets.char(parser.CurrentByteIndex)

    def data(chunk: str) -> None:
        if stack:
            stack[-1].chunks.append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise InvalidXml(str(exc)) from exc
    return roots[0]
