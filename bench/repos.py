"""Index a directory for a benchmark: a git work tree at its HEAD, or any directory as is.

A plain directory (a package from site-packages, say) is committed into a private git
repository in the cache (``--work-tree`` pointed at it, so nothing is copied and the
directory is not touched); a git work tree is mirrored from its HEAD commit. Either way the
appliance's own mirror and index code does the rest, as in production.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from appliance.index.indexer import RepoIndex
from appliance.index.types import Embedder
from appliance.index.vectors import VectorStore
from appliance.repos.mirror import GitRepo, Mirrors

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **_GIT_ENV}
    result = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:3])} failed: {result.stderr.strip()[:500]}")
    return result.stdout.strip()


def cache_key(repo_dir: Path) -> str:
    return hashlib.sha256(str(repo_dir.resolve()).encode()).hexdigest()[:16]


def source_repo(repo_dir: Path, cache: Path) -> tuple[str, str]:
    """(url to mirror, commit to index) for ``repo_dir``."""
    repo_dir = repo_dir.resolve()
    if (repo_dir / ".git").exists():
        return str(repo_dir), git("rev-parse", "HEAD", cwd=repo_dir)
    store = cache / "source.git"
    if not store.exists():
        git("init", "-q", "--bare", str(store))
    common = ["--git-dir", str(store), "--work-tree", str(repo_dir)]
    git(*common, "add", "-A", ".")
    status = git(*common, "status", "--porcelain")
    has_head = (
        subprocess.run(
            ["git", "--git-dir", str(store), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if status or not has_head:
        git(*common, "commit", "-q", "--allow-empty", "-m", "snapshot")
    return str(store), git("--git-dir", str(store), "rev-parse", "HEAD")


def open_repo(
    repo_dir: Path,
    cache: Path,
    *,
    vectors: VectorStore | None = None,
    embedder: Embedder | None = None,
) -> tuple[GitRepo, str, RepoIndex]:
    """Mirror ``repo_dir`` into ``cache`` and open (not update) its index."""
    cache.mkdir(parents=True, exist_ok=True)
    url, commit = source_repo(repo_dir, cache)
    mirror = Mirrors(cache / "mirrors").ensure("bench", url)
    index = RepoIndex("bench", cache / "index", vectors=vectors, embedder=embedder)
    return mirror, commit, index
