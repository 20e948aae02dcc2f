"""Real git repositories for tests: an upstream working copy that commits and pushes to a
bare "remote", which the code under test mirrors.

``plain_git`` ignores the host's configuration too, so a test that plants an evil global
config only affects the code under test and its control.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FileContent = str | bytes | None  # None deletes the path


def plain_git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, input_text: str | None = None
) -> str:
    """git for building fixtures: isolated from the host's config unless ``env`` says."""
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Upstream Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Upstream Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "LC_ALL": "C",
    }
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        input=input_text.encode() if input_text is not None else None,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {args} failed: {result.stderr.decode()}")
    return result.stdout.decode().strip()


def write_files(root: Path, files: Mapping[str, FileContent]) -> None:
    for name, content in files.items():
        path = root / name
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def make_executable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def hook_script(marker: Path) -> str:
    return f"#!/bin/sh\necho \"$0\" >> '{marker}'\n"


@dataclass
class Upstream:
    """``work`` commits and pushes to ``bare``, the remote the mirrors clone."""

    work: Path
    bare: Path

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: Mapping[str, FileContent], message: str) -> str:
        write_files(self.work, files)
        return self.commit_index(message)

    def commit_index(self, message: str) -> str:
        plain_git(self.work, "add", "--all")
        plain_git(self.work, "commit", "--quiet", "-m", message)
        plain_git(self.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        return plain_git(self.work, "rev-parse", "HEAD")


def make_upstream(tmp_path: Path, name: str = "upstream") -> Upstream:
    bare = tmp_path / f"{name}.git"
    work = tmp_path / f"{name}-work"
    plain_git(tmp_path, "init", "--quiet", "--bare", str(bare))
    plain_git(tmp_path, "clone", "--quiet", str(bare), str(work))
    return Upstream(work, bare)
