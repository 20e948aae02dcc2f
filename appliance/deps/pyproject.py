"""``pyproject.toml``: PEP 621 dependencies, optional groups and PEP 735 groups.

Read with ``tomllib``; located with :mod:`appliance.deps.toml_spans`, so a rewrite edits
only the specifier characters inside one string literal. Groups are named
``dependencies``, ``optional:<extra>`` and ``group:<name>``. Entries the engine leaves
alone are reported: direct URL references, strings with escapes or in multi-line
quotes, ``{include-group = ...}`` tables (followed by the installer, not by us), and
``dynamic`` or Poetry-style dependencies, which live elsewhere.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from appliance.deps import pep440
from appliance.deps.errors import ManifestError
from appliance.deps.model import Dependency, Location, Scan, ScanNote, line_of
from appliance.deps.requirements_txt import read_text, relative
from appliance.deps.toml_spans import StringToken, string_arrays


def _groups(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, list[Any]]]:
    project = data.get("project", {})
    if isinstance(project.get("dependencies"), list):
        yield ("project", "dependencies"), "dependencies", project["dependencies"]
    for extra, items in (project.get("optional-dependencies") or {}).items():
        if isinstance(items, list):
            yield ("project", "optional-dependencies", extra), f"optional:{extra}", items
    for name, items in (data.get("dependency-groups") or {}).items():
        if isinstance(items, list):
            yield ("dependency-groups", name), f"group:{name}", items


def scan_pyproject(root: Path, path: Path) -> Scan:
    rel = relative(path, root)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{rel} is not valid TOML ({exc}); fix the file and retry") from exc
    scan = Scan([], [])
    if "dependencies" in data.get("project", {}).get("dynamic", []):
        scan.notes.append(ScanNote(rel, 1, "dynamic = [dependencies]", "dynamic: not bumped"))
    if "dependencies" in data.get("tool", {}).get("poetry", {}):
        scan.notes.append(
            ScanNote(rel, 1, "[tool.poetry.dependencies]", "Poetry tables: not supported yet")
        )
    try:
        arrays = string_arrays(text)
    except ValueError as exc:
        arrays = {}
        scan.notes.append(ScanNote(rel, 1, "", f"could not locate entries ({exc}): not bumped"))
    for key_path, group, items in _groups(data):
        tokens = arrays.get(key_path, [])
        if [t.value for t in tokens] != [i for i in items if isinstance(i, str)]:
            scan.notes.append(
                ScanNote(rel, 1, ".".join(key_path), "written in a form the engine cannot edit")
            )
            continue
        for item in items:
            if isinstance(item, dict):
                scan.notes.append(ScanNote(rel, 1, str(item), "include-group: not followed"))
        for token in tokens:
            _add(scan, rel, text, token, group)
    return scan


def _add(scan: Scan, rel: PurePosixPath, text: str, token: StringToken, group: str) -> None:
    line = line_of(text, token.start)
    body = token.raw[token.quote_len : -token.quote_len]
    if body != token.value or token.quote_len == 3:
        scan.notes.append(ScanNote(rel, line, token.value, "escaped or multi-line string: ignored"))
        return
    parts = pep440.split_requirement(token.value)
    if parts is None:
        reason = "URL or not a PEP 508 requirement: ignored"
        scan.notes.append(ScanNote(rel, line, token.value, reason))
        return
    start = token.start + token.quote_len + parts.spec_start
    end = token.start + token.quote_len + parts.spec_end
    spec = text[start:end]
    floor = pep440.floor_of(spec)
    scan.dependencies.append(
        Dependency(
            ecosystem="python",
            name=parts.name,
            key=canonicalize_name(parts.name),
            spec=spec,
            current=str(floor) if floor is not None else None,
            location=Location(rel, start, end, spec, line),
            group=group,
        )
    )
