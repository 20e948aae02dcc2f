"""The records every manifest parser produces: :class:`Dependency` and :class:`ScanNote`.

A :class:`Dependency` carries the version spec exactly as written and a
:class:`Location`: the character span of that spec in the file's text (decoded UTF-8,
line endings untouched) together with the text found there. A rewrite replaces only that
span and first checks that the text is still the same, so formatting, comments, quotes
and order elsewhere stay byte for byte, and an edit never lands on a file that changed
since it was scanned.

For a Python requirement the span covers the specifiers only (``>=2.28,<3`` in
``requests[socks]>=2.28,<3 ; python_version>"3.8"``); for npm it covers the range string
inside the quotes; for Go the version token of a ``require`` line; for Maven the text of
the ``<version>`` element, or of the ``<properties>`` entry a ``${name}`` version refers
to. A requirement without specifiers has an empty span just after its name (and
extras), where a pin would go.

Several Maven dependencies may take their version from one property: they share one
span (and name it in ``via``), so one edit moves all of them and the planner moves them
together or not at all.

Lines that are not dependencies the engine can bump (``-e .``, URLs, local paths, options,
includes) become :class:`ScanNote` records so the dry-run report can say why they were
left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Ecosystem = Literal["python", "npm", "go", "maven"]
ECOSYSTEMS: tuple[Ecosystem, ...] = ("python", "npm", "go", "maven")


@dataclass(frozen=True)
class Location:
    """Where a spec is written: ``text[start:end] == original`` in ``file``."""

    file: PurePosixPath  # relative to the worktree, POSIX separators
    start: int
    end: int
    original: str
    line: int  # 1-based, for messages


@dataclass(frozen=True)
class Dependency:
    ecosystem: Ecosystem
    name: str  # as written in the manifest
    # the index's name: PEP 503-normalised for Python, as-is for npm, the module path for
    # Go, groupId:artifactId for Maven
    key: str
    spec: str  # the version spec as written ("" when none)
    current: str | None  # the installed/pinned version, or the range's floor; None if unknown
    location: Location
    group: str  # "dependencies", "optional:dev", "group:test", "devDependencies", ...
    # Why the engine will not bump it although it is listed (peerDependencies, a
    # hash-pinned line, a range it cannot rewrite); None when it may.
    frozen_reason: str | None = None
    locked: str | None = None  # the version a lockfile records, when one does
    # Where the spec really lives when the entry only refers to it (``${jackson.version}``);
    # entries with the same ``via`` share a span and are bumped as one.
    via: str | None = None

    @property
    def file(self) -> PurePosixPath:
        return self.location.file


@dataclass(frozen=True)
class ScanNote:
    """A manifest line the engine saw and deliberately left alone."""

    file: PurePosixPath
    line: int
    text: str
    reason: str


@dataclass
class Scan:
    dependencies: list[Dependency]
    notes: list[ScanNote]

    def extend(self, other: Scan) -> None:
        self.dependencies.extend(other.dependencies)
        self.notes.extend(other.notes)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
