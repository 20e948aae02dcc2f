"""Reading unified diffs (as ``git diff`` prints them) with the maintained ``unidiff`` parser.

Two views of one diff:

* :func:`diff_stats` — one :class:`FileStat` per file (added/removed line counts, binary,
  status), for the review page and the merge-request body;
* :func:`added_lines` — the lines a diff adds, with their new-file line numbers, for the
  secret scan.

Paths are given as in the repository (``src/app.py``), without git's ``a/``/``b/`` prefixes and
with git's C-style quoting (``"sp\\303\\244ce.txt"``) undone. A parse failure raises
:class:`~appliance.review.errors.DiffUnreadable` whose message and cause never quote the diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from appliance.review.errors import DiffUnreadable

FileStatus = Literal["added", "modified", "deleted", "renamed"]

_DEV_NULL = "/dev/null"
_UNREADABLE = (
    "the text could not be read as a unified diff (as `git diff` prints it); "
    "pass `git diff` output unaltered, or an empty string for no change"
)
_OCTAL = re.compile(r"\\([0-7]{3})")
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\t": "\t", "\\n": "\n", "\\a": "\a", "\\b": "\b"}
_ESCAPES |= {"\\f": "\f", "\\r": "\r", "\\v": "\v"}


@dataclass(frozen=True)
class FileStat:
    """What a diff does to one file."""

    path: str
    """The file's path after the change (before it, for a deleted file)."""
    added: int
    removed: int
    binary: bool
    status: FileStatus
    old_path: str | None = None
    """The path before a rename; None otherwise."""


@dataclass(frozen=True)
class AddedLine:
    number: int
    """1-based line number in the new version of the file."""
    text: str
    """The line without its ``+`` marker and line ending."""


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of a path (``core.quotePath``): octal bytes are UTF-8."""
    if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
        return name
    body = name[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        octal = _OCTAL.match(body, i)
        if octal:
            out.append(int(octal.group(1), 8))
            i = octal.end()
        elif body[i] == "\\" and body[i : i + 2] in _ESCAPES:
            out += _ESCAPES[body[i : i + 2]].encode()
            i += 2
        else:
            out += body[i].encode()
            i += 1
    return out.decode("utf-8", errors="replace")


def _strip_prefix(name: str) -> str:
    name = _unquote(name.rstrip("\t"))
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


def _paths(patched: PatchedFile) -> tuple[str, str]:
    """(old path, new path); the /dev/null side takes the other side's path."""
    source = patched.source_file or ""
    target = patched.target_file or ""
    old = "" if source == _DEV_NULL else _strip_prefix(source)
    new = "" if target == _DEV_NULL else _strip_prefix(target)
    return old or new, new or old


def _status(patched: PatchedFile) -> FileStatus:
    if patched.is_added_file:
        return "added"
    if patched.is_removed_file:
        return "deleted"
    if patched.is_rename:
        return "renamed"
    return "modified"


def parse(diff_text: str) -> PatchSet:
    """Parse a unified diff; raise DiffUnreadable (never quoting it) when it is not one.

    Text with no file header at all is refused too: a scanner handed the wrong text must not
    report it clean.
    """
    try:
        patch = PatchSet(diff_text)
    except UnidiffParseError:
        # `from None`: unidiff's message quotes the offending line, which may be a secret.
        raise DiffUnreadable(_UNREADABLE) from None
    if diff_text.strip() and not patch:
        raise DiffUnreadable(_UNREADABLE)  # text, but not one file header in it
    return patch


def diff_stats(diff_text: str) -> list[FileStat]:
    """One FileStat per file the diff touches, in the diff's order."""
    stats = []
    for patched in parse(diff_text):
        old, new = _paths(patched)
        status = _status(patched)
        stats.append(
            FileStat(
                path=old if status == "deleted" else new,
                added=patched.added,
                removed=patched.removed,
                binary=bool(patched.is_binary_file),
                status=status,
                old_path=old if status == "renamed" else None,
            )
        )
    return stats


def added_lines(diff_text: str) -> Iterator[tuple[str, list[AddedLine]]]:
    """(new path, the lines the diff adds to it) for every text file with added lines."""
    for patched in parse(diff_text):
        if patched.is_binary_file or patched.is_removed_file:
            continue
        _, new = _paths(patched)
        lines = [
            AddedLine(line.target_line_no, line.value.rstrip("\r\n"))
            for hunk in patched
            for line in hunk
            if line.is_added and line.target_line_no is not None
        ]
        if lines:
            yield new, lines
