"""Dependencies without network: the host fetches, the sandbox installs offline.

The host side resolves and downloads a repository's Python dependencies from the
configured package mirror (pip's own configuration: index-url, certificates) into a
per-repository wheelhouse. Only wheels are fetched (``--only-binary=:all:``), so no
package's build or install script ever runs on the host. The wheelhouse is mounted
read-only at ``/deps/wheelhouse`` in the sandbox, where the image's ``/etc/pip.conf``
makes ``pip install`` use it and nothing else. Caches are reused across tasks: a
second preparation with the same requirements downloads nothing new.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import SandboxError

WHEELHOUSE_MOUNT = "/deps/wheelhouse"
NPM_CACHE_MOUNT = "/deps/npm-cache"
# The sandbox images' interpreter (Debian 12) and platform.
TARGET_PYTHON = "3.11"
TARGET_PLATFORMS = ("manylinux_2_36_x86_64", "manylinux2014_x86_64", "linux_x86_64")


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    requirements: tuple[str, ...]
    downloaded: int


def python_requirements(worktree: Path) -> list[str]:
    """Requirement strings from requirements*.txt and pyproject.toml (PEP 621, with
    optional groups). Options, includes and editable/local paths are left out."""
    found: list[str] = []
    for path in sorted(worktree.glob("requirements*.txt")):
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith(("-", ".", "/")) and "://" not in line:
                found.append(line)
    pyproject = worktree / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except tomllib.TOMLDecodeError as exc:
            raise SandboxError(f"pyproject.toml is not valid TOML: {exc}") from exc
        found.extend(str(d) for d in project.get("dependencies", []))
        for group in project.get("optional-dependencies", {}).values():
            found.extend(str(d) for d in group)
    return sorted(set(found))


def cache_dir_for(cache_root: Path, repository: str, kind: str = "wheelhouse") -> Path:
    """The per-repository cache of one ``kind`` ("wheelhouse" or "npm-cache")."""
    digest = hashlib.sha256(repository.encode()).hexdigest()[:16]
    return cache_root / kind / digest


def prepare_wheelhouse(
    worktree: Path,
    cache: Path,
    *,
    pip: tuple[str, ...] = (sys.executable, "-m", "pip"),
    index_url: str = "",
) -> Wheelhouse:
    """Download wheels for the worktree's Python requirements into ``cache``, from
    ``index_url`` when given (else pip's configured index)."""
    requirements = python_requirements(worktree)
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    before = {p.name for p in cache.glob("*.whl")}
    if requirements:
        platforms = [arg for p in TARGET_PLATFORMS for arg in ("--platform", p)]
        result = subprocess.run(
            [
                *pip,
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--python-version",
                TARGET_PYTHON,
                "--implementation",
                "cp",
                *platforms,
                "--dest",
                str(cache),
                *(("--index-url", index_url) if index_url else ()),
                *requirements,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if result.returncode != 0:
            raise SandboxError(
                "could not fetch the dependencies from the package mirror (only wheels are "
                f"fetched; a package without a wheel must be added to the mirror):\n"
                f"{result.stderr.strip()[-2000:]}"
            )
    for wheel in cache.glob("*.whl"):
        wheel.chmod(0o644)
    after = {p.name for p in cache.glob("*.whl")}
    return Wheelhouse(cache, tuple(requirements), len(after - before))


@dataclass(frozen=True)
class NpmCache:
    path: Path
    packages: tuple[str, ...]


def npm_packages(worktree: Path) -> list[str]:
    """``name@version`` of every registry package in package-lock.json (v2/v3)."""
    lock = worktree / "package-lock.json"
    if not lock.is_file():
        return []
    try:
        data = json.loads(lock.read_text())
    except json.JSONDecodeError as exc:
        raise SandboxError(f"package-lock.json is not valid JSON: {exc}") from exc
    found: set[str] = set()
    for key, entry in data.get("packages", {}).items():
        if not key or entry.get("link") or "version" not in entry:
            continue
        name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
        found.add(f"{name}@{entry['version']}")
    return sorted(found)


def prepare_npm_cache(
    worktree: Path, cache: Path, *, npm: tuple[str, ...] = ("npm",), registry: str = ""
) -> NpmCache:
    """Fill an npm cache with the lockfile's packages from ``registry`` when given (else
    npm's configured one). ``npm cache add`` only downloads: no install script runs on
    the host."""
    packages = npm_packages(worktree)
    cache.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(packages), 100):
        result = subprocess.run(
            [
                *npm,
                "cache",
                "add",
                *packages[start : start + 100],
                "--cache",
                str(cache),
                "--ignore-scripts",
                "--logs-max=0",
                *((f"--registry={registry}",) if registry else ()),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"could not fetch npm packages from the registry: {result.stderr.strip()[-2000:]}"
            )
    subprocess.run(["chmod", "-R", "a+rX", str(cache)], check=False)
    return NpmCache(cache, tuple(packages))
