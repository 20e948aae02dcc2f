"""The appliance's Podman API service: restarted when it answers but fails its work."""

from __future__ import annotations

from pathlib import Path

from sandbox.errors import SandboxError, service_fault
from sandbox.podman import PodmanSandbox
from sandbox.policy import SandboxPolicy
from sandbox.service import PodmanService, SandboxUser


def test_a_failed_start_from_the_service_is_a_service_fault_and_request_errors_are_not() -> None:
    broken = SandboxError(
        "the sandbox container appliance-task-x-0bd18a was created but did not start; it was "
        "removed (starting the sandbox container: podman said: 500 Server Error: Internal "
        "Server Error (write child: broken pipe))"
    )
    assert service_fault(broken)
    assert not service_fault(SandboxError("creating the sandbox container: 404 no such image"))
    assert not service_fault(SandboxError("500 Server Error while listing containers"))


def test_restart_replaces_the_running_service_whoever_started_it() -> None:
    service = PodmanService(SandboxUser.lookup())
    service.ensure_running()
    before = service.service_pids()
    assert before, "no process serves the socket"
    service.restart()
    assert service.ping()
    after = service.service_pids()
    assert after
    assert not set(before) & set(after)
    assert not [pid for pid in before if Path(f"/proc/{pid}").exists()]


def test_sandboxes_work_after_a_restart(tmp_path: Path) -> None:
    worktree = tmp_path
    sandbox = PodmanSandbox()
    try:
        sandbox.service.restart()
        with sandbox.open(worktree, SandboxPolicy(), task_id="restart-check") as session:
            result = session.run(["true"])
        assert result.exit_code == 0
    finally:
        sandbox.close()
