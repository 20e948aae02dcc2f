"""Where the strings of TOML arrays are written: a small scanner for span-precise edits.

``tomllib`` reads TOML but forgets positions, and a round-trip writer reformats. So
:func:`string_arrays` scans the text once, following table headers (``[a.b]``,
``[[a]]``) and dotted or quoted keys, and for every ``key = [ ... ]`` assignment records
the key path and the exact span of each string element (basic, literal and multi-line
strings; nested arrays, inline tables and other values are skipped over). Each element's
value is decoded by ``tomllib`` itself, so escapes mean what TOML says.

The caller compares the decoded values with ``tomllib``'s parse of the whole file and
trusts the spans only when they agree; any disagreement means the scanner misread the
file, and the entries are reported instead of edited.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class StringToken:
    start: int  # span of the whole literal, quotes included
    end: int
    raw: str
    value: str

    @property
    def quote_len(self) -> int:
        return 3 if self.raw.startswith(('"""', "'''")) else 1


def _string_end(text: str, pos: int) -> int:
    for quote in ('"""', "'''"):
        if text.startswith(quote, pos):
            i = pos + 3
            while i < len(text):
                if quote == '"""' and text[i] == "\\":
                    i += 2
                    continue
                if text.startswith(quote, i):
                    i += 3
                    while i < len(text) and text[i] == quote[0]:  # up to 2 quotes in content
                        i += 1
                    return i
                i += 1
            raise ValueError("unterminated multi-line string")
    quote = text[pos]
    i = pos + 1
    while i < len(text) and text[i] != "\n":
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise ValueError("unterminated string")


def _skip_blank(text: str, pos: int, *, newlines: bool) -> int:
    while pos < len(text):
        char = text[pos]
        if char == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        elif char in " \t\r" or (newlines and char == "\n"):
            pos += 1
        else:
            break
    return pos


def _value_end(text: str, pos: int) -> int:
    char = text[pos] if pos < len(text) else ""
    if char in "\"'":
        return _string_end(text, pos)
    if char in "[{":
        closing = "]" if char == "[" else "}"
        pos += 1
        while True:
            pos = _skip_blank(text, pos, newlines=True)
            if pos >= len(text):
                raise ValueError("unterminated array or table")
            if text[pos] == closing:
                return pos + 1
            if text[pos] in ",=":
                pos += 1
                continue
            pos = _value_end(text, pos)
    match = re.compile(r"[^\s,\]}#=]+").match(text, pos)
    return match.end() if match else pos + 1


def _keys(text: str, pos: int, stop: str) -> tuple[tuple[str, ...], int]:
    parts: list[str] = []
    while True:
        pos = _skip_blank(text, pos, newlines=False)
        if pos < len(text) and text[pos] in "\"'":
            end = _string_end(text, pos)
            parts.append(str(tomllib.loads("k = " + text[pos:end])["k"]))
            pos = end
        else:
            match = _BARE_KEY.match(text, pos)
            if match is None:
                raise ValueError(f"unexpected character at offset {pos}")
            parts.append(match.group())
            pos = match.end()
        pos = _skip_blank(text, pos, newlines=False)
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        if not text.startswith(stop, pos):
            raise ValueError(f"expected {stop!r} at offset {pos}")
        return tuple(parts), pos + len(stop)


def _array_strings(text: str, pos: int) -> tuple[list[StringToken], int]:
    tokens: list[StringToken] = []
    pos += 1  # the "["
    while True:
        pos = _skip_blank(text, pos, newlines=True)
        if pos >= len(text):
            raise ValueError("unterminated array")
        char = text[pos]
        if char == "]":
            return tokens, pos + 1
        if char == ",":
            pos += 1
            continue
        end = _value_end(text, pos)
        if char in "\"'":
            raw = text[pos:end]
            tokens.append(StringToken(pos, end, raw, str(tomllib.loads("v = " + raw)["v"])))
        pos = end


def string_arrays(text: str) -> dict[tuple[str, ...], list[StringToken]]:
    """Key path → string elements, for every array assigned in ``text``.

    Raises ValueError when the text is not the TOML this scanner understands."""
    found: dict[tuple[str, ...], list[StringToken]] = {}
    table: tuple[str, ...] = ()
    pos = 0
    while True:
        pos = _skip_blank(text, pos, newlines=True)
        if pos >= len(text):
            return found
        if text.startswith("[[", pos):
            table, pos = _keys(text, pos + 2, "]]")
        elif text[pos] == "[":
            table, pos = _keys(text, pos + 1, "]")
        else:
            key, pos = _keys(text, pos, "=")
            pos = _skip_blank(text, pos, newlines=False)
            if pos < len(text) and text[pos] == "[":
                found[table + key], pos = _array_strings(text, pos)
            else:
                pos = _value_end(text, pos)
