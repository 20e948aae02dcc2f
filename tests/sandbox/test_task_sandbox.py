"""The pipeline's TaskSandbox on real rootless Podman: one container per task across its
commands, dependencies fetched from the mirror before the first open, and a Podman API
service that died being started again."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from appliance.pipeline.execution import DepsSource, TaskSandbox
from sandbox.podman import TASK_LABEL, PodmanSandbox
from sandbox.policy import SandboxPolicy
from sandbox.service import PodmanService, SandboxUser

pytestmark = pytest.mark.slow

MIRROR = "file:///opt/pypi/simple"


def _containers_of(sandbox: PodmanSandbox, task_id: str) -> list[str]:
    found = sandbox.client.containers.list(all=True, filters={"label": f"{TASK_LABEL}={task_id}"})
    return [c.id or "" for c in found]


def test_one_container_serves_every_call_of_the_task_until_close(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    (worktree / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    seen: list[bytes] = []
    box = TaskSandbox(
        podman_sandbox,
        worktree,
        "ts-one",
        policy,
        test_command="python3 -m pytest -q -p no:cacheprovider",
        on_output=lambda _stream, chunk: seen.append(chunk),
    )
    try:
        first = box.run("echo kept > /tmp/marker && hostname")
        assert first.exit_code == 0, first.stderr
        again = box.run("cat /tmp/marker && hostname")
        assert again.stdout == "kept\n" + first.stdout  # same container: its /tmp survived
        tests = box.tests()
        assert tests.ok, tests.result.stdout
        assert box.run("hostname").stdout == first.stdout
        assert len(_containers_of(podman_sandbox, "ts-one")) == 1
        assert b"1 passed" in b"".join(seen)  # live output reached the callback
    finally:
        box.close()
    assert _containers_of(podman_sandbox, "ts-one") == []
    box.close()  # twice is harmless


def test_a_container_that_died_is_replaced_on_the_next_call(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    box = TaskSandbox(podman_sandbox, worktree, "ts-reopen", policy)
    try:
        before = box.run("hostname").stdout
        for container_id in _containers_of(podman_sandbox, "ts-reopen"):
            podman_sandbox.client.containers.get(container_id).remove(force=True)
        after = box.run("echo again && hostname")
        assert after.exit_code == 0, after.stderr
        assert after.stdout.startswith("again\n")
        assert after.stdout != "again\n" + before  # a new container
    finally:
        box.close()
    assert _containers_of(podman_sandbox, "ts-reopen") == []


def test_a_task_sandbox_dropped_without_close_removes_its_container(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    box = TaskSandbox(podman_sandbox, worktree, "ts-dropped", policy)
    assert box.run("true").exit_code == 0
    assert len(_containers_of(podman_sandbox, "ts-dropped")) == 1
    del box
    gc.collect()
    assert _containers_of(podman_sandbox, "ts-dropped") == []


def test_dependencies_come_from_the_mirror_and_are_reused_by_the_next_task(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy, tmp_path: Path
) -> None:
    (worktree / "requirements.txt").write_text("six\n")
    deps = DepsSource(tmp_path / "deps", "calc", python_index_url=MIRROR)
    box = TaskSandbox(podman_sandbox, worktree, "ts-deps", policy, deps=deps)
    try:
        installed = box.run("pip install --target /tmp/site -r requirements.txt")
        assert installed.exit_code == 0, installed.stderr
        assert box.deps_note == ""
    finally:
        box.close()
    assert list((tmp_path / "deps" / "wheelhouse").glob("*/six-*.whl"))

    # The next task of the repository reuses the cache: it installs with the mirror down.
    down = DepsSource(tmp_path / "deps", "calc", python_index_url="file:///nonexistent/simple")
    nxt = TaskSandbox(podman_sandbox, worktree, "ts-deps-2", policy, deps=down)
    try:
        again = nxt.run("pip install --target /tmp/site -r requirements.txt")
        assert again.exit_code == 0, again.stderr
        assert nxt.deps_note == ""
    finally:
        nxt.close()


def test_dependencies_that_cannot_be_fetched_are_a_note_not_a_crash(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy, tmp_path: Path
) -> None:
    (worktree / "requirements.txt").write_text("no-such-package-appliance-test==9.9.9\n")
    streamed: list[bytes] = []
    box = TaskSandbox(
        podman_sandbox,
        worktree,
        "ts-deps-fail",
        policy,
        on_output=lambda _s, chunk: streamed.append(chunk),
        deps=DepsSource(tmp_path / "deps", "calc", python_index_url=MIRROR),
    )
    try:
        result = box.run("echo ran")
        later = box.run("echo again")
    finally:
        box.close()
    assert (result.exit_code, result.stdout) == (0, "ran\n")
    assert later.stderr == ""  # said once, not on every command
    assert "Python dependencies were not fetched" in box.deps_note
    assert "Python dependencies were not fetched" in result.stderr
    assert b"Python dependencies were not fetched" in b"".join(streamed)


class _ServiceThatDied(PodmanService):
    """The supervisor's view of an API service that has died since it was started: its
    socket is gone until ``ensure_running`` starts it again (here: the real one)."""

    def __init__(self, user: SandboxUser, dead_socket: Path) -> None:
        super().__init__(user)
        self._real_url = self.url
        self.url = f"unix://{dead_socket}"
        self.starts = 0

    def ensure_running(self, timeout: float = 15.0) -> None:
        self.starts += 1
        if self.starts > 1:
            super().ensure_running(timeout)
            self.url = self._real_url


def test_a_dead_podman_service_is_started_again_and_the_call_retried(
    podman_sandbox: PodmanSandbox, tmp_path: Path
) -> None:
    service = _ServiceThatDied(podman_sandbox.user, tmp_path / "gone.sock")
    sandbox = PodmanSandbox(user=podman_sandbox.user, service=service)
    try:
        assert sandbox.image_exists(SandboxPolicy().image)
        assert service.starts == 2
    finally:
        sandbox.close()
