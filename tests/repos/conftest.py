"""Real git repositories for the git layer's tests: an upstream working copy that commits
and pushes to a bare "remote", which the code under test mirrors.

The fixtures' own git calls (``plain_git``) ignore the host's configuration too, so a
test that plants an evil global config only affects the code under test and its control.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.repos.mirror import GitRepo, Mirrors
from appliance.repos.worktree import Worktrees
from tests.gitrepos import FileContent, Upstream, make_executable, make_upstream, write_files

INITIAL_FILES: dict[str, FileContent] = {
    "README.md": "# demo\n\nA small project.\n",
    "src/app.py": "def main():\n    return 'hello'\n",
    "src/util.py": "def helper(x):\n    return x * 2\n",
    "docs/guide.txt": "how to use it\n",
    "assets/logo.bin": bytes(range(256)) * 4 + b"\0\xff\0",
}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path)
    up.commit(INITIAL_FILES, "initial layout")
    (up.work / "etc-link").symlink_to("/etc")
    write_files(up.work, {"run.sh": "#!/bin/sh\necho run\n"})
    make_executable(up.work / "run.sh")
    up.commit_index("a link and a script")
    up.commit({"src/app.py": "def main():\n    return 'hello, world'\n"}, "greet the world")
    return up


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    return Mirrors(tmp_path / "var" / "mirrors")


@pytest.fixture
def worktrees(tmp_path: Path) -> Worktrees:
    return Worktrees(tmp_path / "var" / "worktrees")


@pytest.fixture
def mirror(mirrors: Mirrors, upstream: Upstream) -> GitRepo:
    return mirrors.ensure("demo", str(upstream.bare))
