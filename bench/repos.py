"""Index a directory for a benchmark: a git work tree at its HEAD, or any directory as is.

A plain directory (a package from site-packages, say) is committed into a private git
repository in the cache (``--work-tree`` pointed at it, so nothing is copied and the
directory is not touched); a git work tree (or a linked worktree) has its repository
mirrored and its HEAD commit indexed. Either way the appliance's own mirror and index code
does the rest, as in production.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from appliance.errors import RepoError
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


def common_git_dir(repo_dir: Path) -> Path | None:
    """The repository a git work tree (or a linked worktree) belongs to; None for any other
    directory."""
    if not (repo_dir / ".git").exists():
        return None
    common = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo_dir)
    return Path(common).resolve()


def cache_key(repo_dir: Path) -> str:
    """One cache per repository: the worktrees of one repository (``history_cases.py`` makes
    one per case) share a mirror and an index, which moves from commit to commit
    incrementally; any other directory has its own."""
    base = common_git_dir(repo_dir) or repo_dir.resolve()
    return hashlib.sha256(str(base).encode()).hexdigest()[:16]


def source_repo(repo_dir: Path, cache: Path) -> tuple[str, str]:
    """(url to mirror, commit to index) for ``repo_dir``."""
    repo_dir = repo_dir.resolve()
    repository = common_git_dir(repo_dir)
    if repository is not None:
        return str(repository), git("rev-parse", "HEAD", cwd=repo_dir)
    store = cache / "source.git"
    if not store.exists():
        git("init", "-q", "--bare", str(store))
    common = ["--git-dir", str(store), "--work-tree", str(repo_dir)]
    git(*common, "add", "-A", ".", cwd=repo_dir)
    status = git(*common, "status", "--porcelain", cwd=repo_dir)
    has_head = (
        subprocess.run(
            ["git", "--git-dir", str(store), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if status or not has_head:
        git(*common, "commit", "-q", "--allow-empty", "-m", "snapshot", cwd=repo_dir)
    return str(store), git("--git-dir", str(store), "rev-parse", "HEAD")


def mirror_repo(repo_dir: Path, cache: Path) -> tuple[GitRepo, str]:
    """Mirror ``repo_dir``'s repository into ``cache``: (the mirror, the commit to index)."""
    cache.mkdir(parents=True, exist_ok=True)
    url, commit = source_repo(repo_dir, cache)
    mirror = Mirrors(cache / "mirrors").ensure("bench", url)
    try:
        mirror.resolve(commit)
    except RepoError:  # a worktree's detached commit that no branch or tag reaches
        git("--git-dir", str(mirror.path), "fetch", "-q", str(repo_dir.resolve()), "HEAD")
    return mirror, commit


def open_repo(
    repo_dir: Path,
    cache: Path,
    *,
    vectors: VectorStore | None = None,
    embedder: Embedder | None = None,
) -> tuple[GitRepo, str, RepoIndex]:
    """Mirror ``repo_dir`` into ``cache`` and open (not update) its index."""
    mirror, commit = mirror_repo(repo_dir, cache)
    index = RepoIndex("bench", cache / "index", vectors=vectors, embedder=embedder)
    return mirror, commit, index
