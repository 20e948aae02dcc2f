"""``package.json`` (with ``package-lock.json``): npm dependencies with exact spans.

Sections read: ``dependencies``, ``devDependencies``, ``optionalDependencies`` (bumped)
and ``peerDependencies`` (listed, frozen: a peer range is a promise to the package's
users and is widened by people, not nightly). Ranges that are not registry semver —
``workspace:``, ``file:``, ``link:``, ``npm:`` aliases, git and http URLs, GitHub
``user/repo`` shorthands, dist-tags such as ``latest`` — are reported and left alone.

The current version is what ``package-lock.json`` next to the manifest records
(lockfileVersion 2/3: ``packages["node_modules/<name>"].version``; version 1:
``dependencies[<name>].version``), else the range's floor. The span covers the range
inside the quotes, so a rewrite keeps the file's formatting byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.deps.errors import ManifestError
from appliance.deps.json_spans import string_values
from appliance.deps.model import Dependency, Location, Scan, ScanNote, line_of
from appliance.deps.requirements_txt import read_text, relative
from appliance.deps.semver import floor_of, parse_range

SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_FOREIGN = ("workspace:", "file:", "link:", "npm:", "git", "http:", "https:", "github:", "portal:")


def _load(path: Path, rel: str) -> tuple[str, Any]:
    text = read_text(path)
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{rel} is not valid JSON ({exc}); fix the file and retry") from exc


def locked_versions(lockfile: Path, rel: str) -> dict[str, str]:
    """Top-level installed versions from a package-lock.json (v1, v2 or v3)."""
    _, data = _load(lockfile, rel)
    versions: dict[str, str] = {}
    if not isinstance(data, dict):
        return versions
    for key, entry in (data.get("packages") or {}).items():
        if key.startswith("node_modules/") and isinstance(entry, dict):
            name = key.removeprefix("node_modules/")
            if "/node_modules/" not in name and isinstance(entry.get("version"), str):
                versions[name] = entry["version"]
    if not versions:
        for name, entry in (data.get("dependencies") or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                versions[name] = entry["version"]
    return versions


def scan_package_json(root: Path, path: Path) -> Scan:
    rel = relative(path, root)
    text, data = _load(path, str(rel))
    if not isinstance(data, dict):
        raise ManifestError(f"{rel} is not a JSON object; fix the file and retry")
    lock_path = path.parent / "package-lock.json"
    locked = (
        locked_versions(lock_path, str(relative(lock_path, root))) if lock_path.is_file() else {}
    )
    spans = string_values(text)
    scan = Scan([], [])
    for section in SECTIONS:
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, spec in entries.items():
            token = spans.get((section, name))
            if token is None or not isinstance(spec, str):
                scan.notes.append(ScanNote(rel, 1, f"{name}: {spec!r}", "not a string: ignored"))
                continue
            line = line_of(text, token.start)
            if spec.startswith(_FOREIGN) or "/" in spec or parse_range(spec) is None:
                reason = "not a registry semver range (tag, alias, path or URL): ignored"
                scan.notes.append(ScanNote(rel, line, f'"{name}": "{spec}"', reason))
                continue
            if token.raw[1:-1] != spec:
                scan.notes.append(ScanNote(rel, line, name, "escaped string: ignored"))
                continue
            floor = floor_of(spec)
            scan.dependencies.append(
                Dependency(
                    ecosystem="npm",
                    name=name,
                    key=name,
                    spec=spec,
                    current=locked.get(name) or (str(floor) if floor else None),
                    location=Location(rel, token.start + 1, token.end - 1, spec, line),
                    group=section,
                    frozen_reason="peer dependency: widened by hand, not bumped"
                    if section == "peerDependencies"
                    else None,
                    locked=locked.get(name),
                )
            )
    return scan
