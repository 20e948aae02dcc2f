"""Maven versions, ordered as Maven itself orders them (its version order specification).

A version is cut into items at ``.`` and ``-`` and where digits meet letters (``1.0rc1``
→ ``1 . 0 - rc - 1``); a ``-`` (or such a transition) opens a sub-list. Numbers compare
as numbers; words (*qualifiers*, case-insensitive) compare by rank::

    alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp < others

where ``a1``/``b1``/``m1`` (one letter followed by a digit) mean alpha/beta/milestone and
unknown words come after ``sp``, alphabetically. Trailing "null" items (``0``, a release
word, an empty sub-list) are dropped, so ``1`` = ``1.0`` = ``1.0.0`` = ``1-ga``. When one
version runs out, it is padded with nulls: a number beats a word, a word loses to a
sub-list, so ``1-alpha`` < ``1`` < ``1-sp`` < ``1-1`` < ``1.1``.

For the planner, a version is a *pre-release* when one of its words ranks below a
release (alpha … snapshot: ``2.0.0-M1``, ``5.0.0.CR1``); its *release* numbers are the
leading dotted numbers (``33.2.1-jre`` → 33.2.1), and a version without a leading number
(``Hoxton.SR12`` release trains) is not parsed at all. Its *variant* is the list of
unknown words (``jre``, ``android``): Guava and others publish one version in several
variants, and a bump must stay on the one the project uses.
"""

from __future__ import annotations

import re
from itertools import zip_longest
from typing import Union

Item = Union[int, str, "list[Item]"]

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE_RANK = str(_QUALIFIERS.index(""))
_LEADING = re.compile(r"^\d+(?:\.\d+)*")


def _word(text: str, followed_by_digit: bool) -> str:
    if followed_by_digit and text in _SHORT:
        text = _SHORT[text]
    return _ALIASES.get(text, text)


def _rank(word: str) -> str:
    if word in _QUALIFIERS:
        return str(_QUALIFIERS.index(word))
    return f"{len(_QUALIFIERS)}-{word}"


def _is_null(item: Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return _rank(item) == _RELEASE_RANK
    return not item


def _normalize(items: list[Item]) -> None:
    """Drop trailing nulls; a non-null number or word stops it, a sub-list does not."""
    for i in range(len(items) - 1, -1, -1):
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


def _token(text: str, digits: bool) -> Item:
    return int(text) if digits else _word(text, followed_by_digit=False)


def parse_items(version: str) -> list[Item]:
    """The item tree of ``version`` (numbers, words and sub-lists)."""
    text = version.lower()
    root: list[Item] = []
    current = root
    lists = [root]
    digits = False
    start = 0

    def open_list() -> None:
        nonlocal current
        sub: list[Item] = []
        current.append(sub)
        current = sub
        lists.append(sub)

    for i, char in enumerate(text):
        if char in ".-":
            current.append(0 if i == start else _token(text[start:i], digits))
            start = i + 1
            if char == "-":
                open_list()
        elif char.isdigit():
            if not digits and i > start:  # letters, then a digit: "rc1"
                current.append(_word(text[start:i], followed_by_digit=True))
                start = i
                open_list()
            digits = True
        else:
            if digits and i > start:  # digits, then a letter: "1rc"
                current.append(int(text[start:i]))
                start = i
                open_list()
            digits = False
    if len(text) > start:
        current.append(_token(text[start:], digits))
    for items in reversed(lists):
        _normalize(items)
    return root


def compare(a: Item | None, b: Item | None) -> int:
    """-1, 0 or 1 as ``a`` orders before, with or after ``b`` (None: padding)."""
    if a is None:
        return 0 if b is None else -compare(b, None)
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1  # a number beats a word and a sub-list
    if isinstance(a, str):
        if isinstance(b, int | list):
            return -1
        left, right = _rank(a), _rank("" if b is None else b)
        return (left > right) - (left < right)
    if b is None:
        return next((r for r in (compare(x, None) for x in a) if r), 0)
    if isinstance(b, int):
        return -1
    if isinstance(b, str):
        return 1
    for x, y in zip_longest(a, b):
        result = compare(x, y)
        if result:
            return result
    return 0


def _words(items: list[Item]) -> list[str]:
    found: list[str] = []
    for item in items:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            found.extend(_words(item))
    return found


class MavenVersion:
    """One version as written, with Maven's order."""

    __slots__ = ("items", "release", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.items = parse_items(text)
        leading = _LEADING.match(text)
        self.release = tuple(int(n) for n in leading.group().split(".")) if leading else ()

    @classmethod
    def parse(cls, text: str) -> MavenVersion | None:
        """None for what the engine does not treat as a version: empty, with spaces, a
        range or property, or without a leading number."""
        text = text.strip()
        if not _LEADING.match(text) or re.search(r"[\s\[\](),${}]", text):
            return None
        return cls(text)

    @property
    def is_prerelease(self) -> bool:
        return any(_rank(w) < _RELEASE_RANK for w in _words(self.items))

    @property
    def is_snapshot(self) -> bool:
        return self.text.upper().endswith("-SNAPSHOT")

    @property
    def variant(self) -> tuple[str, ...]:
        """The unknown words (``("jre",)`` for ``33.2.1-jre``)."""
        return tuple(w for w in _words(self.items) if w not in _QUALIFIERS)

    def _cmp(self, other: MavenVersion) -> int:
        return compare(self.items, other.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenVersion) and self._cmp(other) == 0

    def __hash__(self) -> int:
        return hash(repr(self.items))

    def __lt__(self, other: MavenVersion) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: MavenVersion) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: MavenVersion) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: MavenVersion) -> bool:
        return self._cmp(other) >= 0

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"MavenVersion({self.text!r})"
