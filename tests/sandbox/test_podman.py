"""Escape and abuse attempts against a real rootless Podman sandbox: each asserts the
sandbox held and the host stayed usable."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import load_settings
from sandbox import cgroups
from sandbox.errors import PolicyError, SandboxError, SessionClosed
from sandbox.podman import TASK_LABEL, PodmanSandbox, PodmanSession
from sandbox.policy import SandboxPolicy, Ulimits
from tests.graphs import scripted_graph
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.slow


def _host_still_usable() -> None:
    assert subprocess.run(["true"], check=False, timeout=10).returncode == 0


def test_commands_run_with_exit_code_and_both_streams(session: PodmanSession) -> None:
    seen: list[tuple[str, bytes]] = []
    result = session.run(
        "echo out; echo err >&2; exit 3", on_output=lambda s, b: seen.append((s, b))
    )
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert ("stdout", b"out\n") in seen
    assert ("stderr", b"err\n") in seen
    assert not result.timed_out
    assert not result.oom_killed


def test_worktree_is_mounted_read_write_at_workspace(
    session: PodmanSession, worktree: Path
) -> None:
    result = session.run("cat README.md && echo made > new.txt")
    assert result.stdout == "fixture\n"
    assert (worktree / "new.txt").read_text() == "made\n"


def test_egress_to_an_outside_address_fails(session: PodmanSession) -> None:
    result = session.run(
        ["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)"]
    )
    assert result.exit_code != 0
    assert "Network is unreachable" in result.stderr


def test_service_on_host_loopback_is_unreachable(session: PodmanSession) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(2)

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"
        result = session.run(["python3", "-c", code])
    finally:
        thread.join()
        server.close()
    assert result.exit_code != 0
    assert "Connection refused" in result.stderr
    assert accepted == []


def test_dns_fails(session: PodmanSession) -> None:
    result = session.run(
        ["python3", "-c", "import socket; socket.getaddrinfo('deb.debian.org', 80)"]
    )
    assert result.exit_code != 0
    assert "name resolution" in result.stderr or "Name or service not known" in result.stderr


def test_only_loopback_interface_exists(session: PodmanSession) -> None:
    result = session.run("ls /sys/class/net")
    assert result.stdout.split() == ["lo"]


def test_writes_to_the_image_root_fail(session: PodmanSession) -> None:
    for target in ("/etc/evil", "/usr/bin/evil", "/evil"):
        result = session.run(f"echo x > {target}")
        assert result.exit_code != 0
        assert "Read-only file system" in result.stderr


def test_files_outside_the_mounts_are_invisible(session: PodmanSession, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("s3cret")
    result = session.run(f"cat {secret} ; ls /root ; cat /etc/shadow | grep -c root")
    assert "s3cret" not in result.stdout
    assert "No such file" in result.stderr
    # The container's /etc is the image's, not the host's.
    assert "appliance-sandbox" not in session.run("cat /etc/passwd").stdout


def test_setuid_binary_cannot_raise_privileges(session: PodmanSession) -> None:
    prepare = session.run("cp /usr/bin/id /workspace/suid-id && chmod 4755 /workspace/suid-id")
    assert prepare.exit_code == 0, prepare.stderr
    result = session.run(["/workspace/suid-id", "-u"], user="65534")
    assert result.stdout.strip() == "65534"
    status = session.run("grep -E 'NoNewPrivs|CapEff' /proc/self/status").stdout
    assert "NoNewPrivs:\t1" in status
    assert "CapEff:\t0000000000000000" in status


def test_fork_bomb_is_contained(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    session = podman_sandbox.open(worktree, policy, task_id="forkbomb-test")
    pids = cgroups.ROOT / "pids" / cgroups.PARENT / cgroups.task_dir_name("forkbomb-test")
    try:
        result = session.run(["bash", "-c", ":(){ :|:& };: ; sleep 3"], timeout=6)
        assert "retry: Resource temporarily unavailable" in result.stderr or result.exit_code != 0
        assert int((pids / "pids.current").read_text()) <= policy.pids
        assert int((pids / "pids.max").read_text()) == policy.pids
        _host_still_usable()
    finally:
        session.close()
    assert not pids.exists()  # every process of the bomb is gone with the sandbox
    _host_still_usable()


def test_memory_bomb_is_killed_and_reported(session: PodmanSession) -> None:
    result = session.run(["python3", "-c", "blocks = [b'x' * 2**20 for _ in range(1024)]"])
    assert result.exit_code == 137
    assert result.oom_killed
    assert session.run("echo still here").stdout == "still here\n"
    _host_still_usable()


def test_filling_tmp_stops_at_the_tmpfs_size(session: PodmanSession) -> None:
    result = session.run("dd if=/dev/zero of=/tmp/fill bs=1M count=200")
    assert result.exit_code != 0
    assert "No space left on device" in result.stderr
    size = int(session.run("stat -c %s /tmp/fill").stdout)
    assert size <= 32 * 2**20


def test_filling_the_worktree_stops_at_the_file_size_limit(
    podman_sandbox: PodmanSandbox, worktree: Path
) -> None:
    policy = SandboxPolicy(memory_mb=256, pids=128, ulimits=Ulimits(fsize_mb=16))
    with podman_sandbox.open(worktree, policy, task_id="fsize-test") as s:
        result = s.run("dd if=/dev/zero of=/workspace/big bs=1M count=100")
    assert result.exit_code != 0
    assert (worktree / "big").stat().st_size <= 16 * 2**20


def test_infinite_loop_is_killed_at_the_timeout_and_container_is_gone(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    session = podman_sandbox.open(worktree, policy, task_id="loop-test")
    try:
        started = time.monotonic()
        result = session.run("while :; do :; done", timeout=2)
        assert result.timed_out
        assert 2 <= time.monotonic() - started < 6
        assert session.run("echo next").stdout == "next\n"  # the session is still usable
    finally:
        session.close()
    assert not podman_sandbox.client.containers.exists(session.container_id)
    assert not (
        cgroups.ROOT / "memory" / cgroups.PARENT / cgroups.task_dir_name("loop-test")
    ).exists()
    with pytest.raises(SessionClosed):
        session.run("true")


def test_output_flood_is_truncated_with_host_memory_bounded(session: PodmanSession) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    streamed = 0

    def count(_stream: str, chunk: bytes) -> None:
        nonlocal streamed
        streamed += len(chunk)

    result = session.run("head -c 100000000 /dev/zero | tr '\\0' a", on_output=count)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.stdout) < 2**20 + 200
    assert "bytes of output dropped" in result.stdout
    assert "98,951,424" in result.stdout  # 100,000,000 - 1 MiB kept
    assert streamed < 2**20 + 200
    assert grown_mb < 64


def test_network_other_than_none_is_refused(podman_sandbox: PodmanSandbox, worktree: Path) -> None:
    with pytest.raises(PolicyError, match="network 'host' is not allowed"):
        podman_sandbox.open(worktree, SandboxPolicy(network="host"), task_id="net-test")


def test_environment_outside_the_allow_list_is_refused(session: PodmanSession) -> None:
    with pytest.raises(PolicyError, match="AWS_SECRET_ACCESS_KEY"):
        session.run("env", env={"AWS_SECRET_ACCESS_KEY": "x"})
    result = session.run("echo $LANG", env={"LANG": "C.UTF-8"})
    assert result.stdout == "C.UTF-8\n"


def test_killed_appliance_leaves_no_container_after_next_start(
    podman_sandbox: PodmanSandbox, worktree: Path, tmp_path: Path
) -> None:
    script = tmp_path / "victim.py"
    script.write_text(
        "import sys, pathlib\n"
        "from sandbox.podman import PodmanSandbox\n"
        "from sandbox.policy import SandboxPolicy\n"
        "s = PodmanSandbox().open(pathlib.Path(sys.argv[1]), "
        "SandboxPolicy(memory_mb=256, pids=128), task_id='victim')\n"
        "print(s.container_id, flush=True)\n"
        "s.run('sleep 120')\n"
    )
    with subprocess.Popen(
        [sys.executable, str(script), str(worktree)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    ) as victim:
        assert victim.stdout is not None
        container_id = victim.stdout.readline().strip()
        time.sleep(0.5)
        victim.kill()
        victim.wait(timeout=10)
    assert podman_sandbox.client.containers.exists(container_id)

    # The next start of the appliance sweeps it away.
    app = create_app(load_settings(sandbox={"cleanup_on_start": True}), graph=scripted_graph())
    with TestClient(app):
        pass
    assert not podman_sandbox.client.containers.exists(container_id)
    assert "task-victim" not in cgroups.leftover_tasks()


def test_limits_are_really_enforced_on_this_host(podman_sandbox: PodmanSandbox) -> None:
    enforced = podman_sandbox.enforced_limits()
    assert (enforced.memory, enforced.pids, enforced.cpu) == (True, True, True), enforced.notes


def _containers_of(sandbox: PodmanSandbox, task_id: str) -> list[object]:
    return list(
        sandbox.client.containers.list(all=True, filters={"label": f"{TASK_LABEL}={task_id}"})
    )


def test_commands_run_in_a_user_namespace(session: PodmanSession) -> None:
    result = session.run("cat /proc/self/uid_map")
    assert result.exit_code == 0, result.stderr
    mappings = [line.split() for line in result.stdout.splitlines()]
    assert mappings
    assert ["0", "0", "4294967295"] not in mappings  # not the host's identity mapping
    # Root inside is the sandbox user outside, never host root.
    assert all(host != "0" for _inside, host, _count in mappings)


def test_an_error_inside_the_with_block_still_removes_the_container(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    seen: list[int] = []

    def fail_inside() -> None:
        with podman_sandbox.open(worktree, policy, task_id="raise-test") as s:
            assert s.run("true").exit_code == 0
            seen.append(len(_containers_of(podman_sandbox, "raise-test")))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert seen == [1]
    assert _containers_of(podman_sandbox, "raise-test") == []
    assert "task-raise-test" not in cgroups.leftover_tasks()


def test_command_that_stops_its_timeout_is_ended_by_removing_the_container(
    podman_sandbox: PodmanSandbox, worktree: Path, policy: SandboxPolicy
) -> None:
    session = podman_sandbox.open(worktree, policy, task_id="watchdog-test")
    try:
        # Stopping the in-container `timeout` (the exec's main process) keeps the exec
        # open past its limit: the host-side watchdog must remove the whole container.
        result = session.run("kill -STOP $PPID; sleep 300", timeout=1)
        assert result.timed_out
        assert _containers_of(podman_sandbox, "watchdog-test") == []
        with pytest.raises(SessionClosed):
            session.run("true")
    finally:
        session.close()
    assert "task-watchdog-test" not in cgroups.leftover_tasks()
    _host_still_usable()


def test_background_work_of_a_timed_out_command_is_killed(session: PodmanSession) -> None:
    # A new session escapes the process group that the timeout kills.
    result = session.run("setsid sh -c 'while :; do :; done' & wait", timeout=1)
    assert result.timed_out
    left = session.run("grep -l 'whil[e]' /proc/[0-9]*/cmdline")
    assert left.stdout == ""
    assert session.run("echo next").stdout == "next\n"


def test_container_that_cannot_start_is_removed_with_a_clear_error(
    podman_sandbox: PodmanSandbox, worktree: Path
) -> None:
    # An rlimit above the hard limit cannot be set by a rootless runtime: create works,
    # start fails.
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    assert hard != resource.RLIM_INFINITY, "this check needs a finite nproc hard limit"
    policy = SandboxPolicy(memory_mb=256, pids=128, ulimits=Ulimits(nproc=hard * 4))
    with pytest.raises(SandboxError, match="was created but did not start; it was removed"):
        podman_sandbox.open(worktree, policy, task_id="nostart-test")
    assert _containers_of(podman_sandbox, "nostart-test") == []
    assert "task-nostart-test" not in cgroups.leftover_tasks()
