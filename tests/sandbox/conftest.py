"""Real rootless Podman. These tests fail, never skip, when Podman cannot run: the
error says what is missing (make test installs and builds everything)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.podman import PodmanSandbox, PodmanSession
from sandbox.policy import SandboxPolicy


@pytest.fixture(scope="session")
def podman_sandbox() -> Iterator[PodmanSandbox]:
    sandbox = PodmanSandbox()
    sandbox.cleanup_orphans()
    yield sandbox
    sandbox.close()


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    (path / "README.md").write_text("fixture\n")
    return path


@pytest.fixture
def policy() -> SandboxPolicy:
    return SandboxPolicy(memory_mb=256, pids=128, timeout_s=60, tmpfs_mb=32)


@pytest.fixture
def session(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> Iterator[PodmanSession]:
    with podman_sandbox.open(worktree, policy, task_id=f"test-{uuid.uuid4().hex[:8]}") as s:
        yield s
