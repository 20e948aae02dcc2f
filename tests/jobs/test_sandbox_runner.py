"""The jobs' commands run in the real sandbox: the worktree mounted, no network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.jobs.sandbox_runner import PodmanJobSandbox
from sandbox.podman import PodmanSandbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def podman() -> Iterator[PodmanSandbox]:
    sandbox = PodmanSandbox()
    yield sandbox
    sandbox.close()


async def test_a_command_sees_the_worktree_and_no_network(
    podman: PodmanSandbox, tmp_path: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    runner = PodmanJobSandbox(lambda: podman)
    seen = await runner.run(tmp_path, ["cat", "requirements.txt"], time_limit=60)
    assert seen.ok
    assert seen.output == "six==1.16.0"
    offline = await runner.run(
        tmp_path,
        ["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), 3)"],
        time_limit=60,
    )
    assert not offline.ok
    assert "Network is unreachable" in offline.output or "Errno" in offline.output


async def test_without_a_sandbox_the_job_is_told(tmp_path: Path) -> None:
    result = await PodmanJobSandbox(lambda: None).run(tmp_path, ["true"], time_limit=5)
    assert result.exit_code == 127
    assert "no sandbox" in result.output
