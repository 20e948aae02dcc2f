"""``requirements*.txt``: pip's requirement files, read line by line with exact spans.

Each physical line is one entry (a line continued with ``\\`` is reported and left
alone). A comment starts at ``#`` at the start of the line or after whitespace. What a
line holds decides what happens:

* a requirement (``pkg==1.0``, ``pkg[extra]>=1,<2 ; python_version < "3.12"``): a
  :class:`Dependency` whose span covers the specifiers only; its current version is the
  pin, or the floor of the range. A line with ``--hash`` options is listed but frozen:
  a bump would invalidate the hashes (regenerate them with ``pip-compile``).
* ``-r``/``-c`` includes: followed when the target is a file inside the repository,
  reported (not followed) when it points outside or does not exist;
* ``-e``, URLs, ``name @ url`` references and local paths: reported, never touched;
* other options (``--index-url`` ...): reported.

The group is the file name without ``.txt`` (``requirements-dev``); files reached
through ``-c`` are ``constraints:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from appliance.deps import pep440
from appliance.deps.model import Dependency, Location, Scan, ScanNote

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=?\s*)(\S+)\s*$")
_LOCAL = re.compile(r"^(\.{1,2}/|/|~|file:)|\.(whl|zip|tar\.gz|tgz)$")


def relative(path: Path, root: Path) -> PurePosixPath:
    return PurePosixPath(path.resolve().relative_to(root.resolve()).as_posix())


def read_text(path: Path) -> str:
    """The file's text with its line endings as they are (no newline translation)."""
    return path.read_bytes().decode("utf-8")


def scan_requirements(root: Path, paths: Sequence[Path]) -> Scan:
    """Dependencies and notes of requirements files, following includes inside ``root``;
    a file reached twice (listed and included) is read once."""
    seen: set[Path] = set()
    scan = Scan([], [])
    for path in paths:
        _scan_file(root, path, None, seen, scan)
    return scan


def _scan_file(root: Path, path: Path, group: str | None, seen: set[Path], scan: Scan) -> None:
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    rel = relative(path, root)
    text = read_text(path)
    group = group or path.name.removesuffix(".txt")
    offset = 0
    lines = text.splitlines(keepends=True)
    for number, raw in enumerate(lines, start=1):
        start = offset
        offset += len(raw)
        body = raw.rstrip("\r\n")
        content = _COMMENT.sub("", body).rstrip()
        if not content.strip():
            continue
        stripped = content.strip()

        def note(reason: str, number: int = number, stripped: str = stripped) -> None:
            scan.notes.append(ScanNote(rel, number, stripped, reason))

        continued = number > 1 and lines[number - 2].rstrip("\r\n").endswith("\\")
        if content.endswith("\\") or continued:
            note("line continuation: not rewritten (join the lines to let the engine bump it)")
            continue
        include = _INCLUDE.match(stripped)
        if include:
            _follow(root, path, include.group(1), include.group(2), group, seen, scan, note)
            continue
        if stripped.startswith(("-e", "--editable")):
            note("editable install: ignored")
            continue
        if stripped.startswith("-"):
            note("pip option: ignored")
            continue
        if "://" in stripped or _LOCAL.search(stripped.split(";")[0].strip()):
            note("URL or local path: ignored")
            continue
        requirement, _, options = content.partition(" --")
        hashed = "hash" in options
        lead = len(requirement) - len(requirement.lstrip())
        parts = pep440.split_requirement(requirement.strip())
        if parts is None:
            note("not a PEP 508 requirement (or a direct URL reference): ignored")
            continue
        spec_start = start + lead + parts.spec_start
        spec_end = start + lead + parts.spec_end
        spec = text[spec_start:spec_end]
        floor = pep440.floor_of(spec)
        scan.dependencies.append(
            Dependency(
                ecosystem="python",
                name=parts.name,
                key=canonicalize_name(parts.name),
                spec=spec,
                current=str(floor) if floor is not None else None,
                location=Location(rel, spec_start, spec_end, spec, number),
                group=group,
                frozen_reason="hash-pinned: regenerate the file with pip-compile --generate-hashes"
                if hashed
                else None,
            )
        )


def _follow(
    root: Path,
    path: Path,
    option: str,
    target: str,
    group: str,
    seen: set[Path],
    scan: Scan,
    note: Callable[[str], None],
) -> None:
    included = (path.parent / target).resolve()
    if "://" in target or not included.is_relative_to(root.resolve()):
        note(f"include of {target}: outside the repository, not followed")
        return
    if not included.is_file():
        note(f"include of {target}: no such file in the repository")
        return
    constraint = option in ("-c", "--constraint")
    name = included.name.removesuffix(".txt")
    note(f"include of {target}: followed")
    _scan_file(root, included, f"constraints:{name}" if constraint else None, seen, scan)
