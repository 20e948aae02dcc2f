"""Letting the sandbox user (the container's host uid) reach a task's worktree and the
dependency caches, by ACLs: the files keep their owner."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

from sandbox.errors import SandboxUnavailable

log = logging.getLogger(__name__)


def grant_access(worktree: Path, uid: int) -> None:
    """Let the container (host uid ``uid``) read and write the worktree, keeping its owner;
    the default ACL makes files created later writable by both sides."""
    me = os.geteuid()
    entries = f"u:{uid}:rwX,d:u:{uid}:rwX" + ("" if me == 0 else f",d:u:{me}:rwX")
    result = subprocess.run(
        ["setfacl", "-R", "-m", entries, str(worktree)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"cannot grant the sandbox user access to {worktree}: {result.stderr.strip()} "
            "(is the acl package installed and the filesystem mounted with ACLs?)"
        )
    allow_traverse(worktree, uid)


def allow_traverse(path: Path, uid: int) -> None:
    """Podman (as the sandbox user) must reach a mounted path: let it traverse (x only,
    no listing) any ancestor that others may not enter."""
    for parent in path.parents:
        if parent.stat().st_mode & stat.S_IXOTH:
            continue
        subprocess.run(
            ["setfacl", "-m", f"u:{uid}:x", str(parent)], check=False, capture_output=True
        )
        log.info("let the sandbox user traverse %s", parent)
