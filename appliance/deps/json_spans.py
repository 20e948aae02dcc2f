"""Where the string values of a JSON document are written, for span-precise edits.

:func:`string_values` walks the text with a small recursive-descent scanner and maps
the key path of every string value inside objects (``("dependencies", "react")``) to
the span of its literal, quotes included. Keys and values are decoded with ``json``
itself. Rewriting one span keeps the file's indentation, key order and final newline,
which a ``json.dumps`` round trip would not. The caller parses the file with ``json``
first, so the text given here is known to be valid JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_SCALAR = re.compile(r"-?[0-9][0-9eE.+-]*|true|false|null")
_WS = re.compile(r"[ \t\r\n]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


@dataclass(frozen=True)
class JsonString:
    start: int
    end: int
    raw: str
    value: str


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.found: dict[tuple[str, ...], JsonString] = {}

    def ws(self, pos: int) -> int:
        match = _WS.match(self.text, pos)
        return match.end() if match else pos

    def string(self, pos: int) -> tuple[JsonString, int]:
        match = _STRING.match(self.text, pos)
        if match is None:
            raise ValueError(f"expected a string at offset {pos}")
        raw = match.group()
        return JsonString(pos, match.end(), raw, str(json.loads(raw))), match.end()

    def value(self, pos: int, path: tuple[str, ...]) -> int:
        pos = self.ws(pos)
        char = self.text[pos]
        if char == "{":
            pos = self.ws(pos + 1)
            while self.text[pos] != "}":
                key, pos = self.string(pos)
                pos = self.ws(pos)
                pos = self.value(pos + 1, (*path, key.value))  # past the ":"
                pos = self.ws(pos)
                if self.text[pos] == ",":
                    pos = self.ws(pos + 1)
            return pos + 1
        if char == "[":
            pos = self.ws(pos + 1)
            index = 0
            while self.text[pos] != "]":
                pos = self.ws(self.value(pos, (*path, str(index))))
                index += 1
                if self.text[pos] == ",":
                    pos = self.ws(pos + 1)
            return pos + 1
        if char == '"':
            token, end = self.string(pos)
            self.found[path] = token
            return end
        match = _SCALAR.match(self.text, pos)
        if match is None:
            raise ValueError(f"unexpected character at offset {pos}")
        return match.end()


def string_values(text: str) -> dict[tuple[str, ...], JsonString]:
    scanner = _Scanner(text)
    scanner.value(0, ())
    return scanner.found
