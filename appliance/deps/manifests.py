"""Finding a repository's manifests and reading all of them into one :class:`Scan`.

The worktree is walked without following symlinks (a repository is untrusted: a link
must not lead the engine to read or later rewrite files outside it), skipping vendored
and generated trees (``node_modules``, ``vendor``, virtualenvs, ``.git``, build output
such as Maven's ``target``, whose copies of ``pom.xml`` are not the project's) and Go's
``testdata`` (fixtures the go command ignores). Manifests found: ``requirements*.txt``
(plus what their ``-r``/``-c`` includes reach inside the repository), ``pyproject.toml``,
``package.json``, ``go.mod`` and ``pom.xml``. The registry maps each kind of file to its
reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from appliance.deps.go_mod import scan_go_mod
from appliance.deps.maven_pom import scan_pom
from appliance.deps.model import Scan
from appliance.deps.npm_manifest import scan_package_json
from appliance.deps.pyproject import scan_pyproject
from appliance.deps.requirements_txt import scan_requirements

SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        "node_modules",
        "vendor",
        "testdata",
        "target",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        "site-packages",
        "dist",
        "build",
        ".mypy_cache",
        ".pytest_cache",
    }
)

READERS: dict[str, Callable[[Path, Path], Scan]] = {
    "pyproject.toml": scan_pyproject,
    "package.json": scan_package_json,
    "go.mod": scan_go_mod,
    "pom.xml": scan_pom,
}


def _is_requirements(name: str) -> bool:
    return name.startswith("requirements") and name.endswith(".txt")


def find_manifests(worktree: Path) -> list[Path]:
    found: list[Path] = []
    for directory, dirs, files in os.walk(worktree, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink():
                continue
            if name in READERS or _is_requirements(name):
                found.append(path)
    return found


def scan_worktree(worktree: Path) -> Scan:
    """Every dependency and note of every manifest under ``worktree``."""
    scan = Scan([], [])
    manifests = find_manifests(worktree)
    scan.extend(scan_requirements(worktree, [p for p in manifests if _is_requirements(p.name)]))
    for path in manifests:
        reader = READERS.get(path.name)
        if reader is not None:
            scan.extend(reader(worktree, path))
    return scan
