"""Sandboxes as rootless Podman containers, driven through podman-py.

One container per task: no network, all capabilities dropped, no new privileges, a
read-only image root, a sized tmpfs at /tmp, the worktree at /workspace, rlimits, and
memory/pids/CPU limits through a per-task cgroup where the host needs one (v1). The
container's main process is ``sleep <session_max_s>`` and it is created with --rm, so
even a container whose appliance died removes itself in the end; start-up removes
orphans at once (:meth:`PodmanSandbox.cleanup_orphans`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from podman import PodmanClient
from podman.api import stream_frames
from podman.domain.containers import Container
from podman.errors import APIError, NotFound, PodmanError

from sandbox import cgroups
from sandbox.base import WORKSPACE, EnforcedLimits, OutputCallback, RunResult, Stream
from sandbox.deps import NPM_CACHE_MOUNT, WHEELHOUSE_MOUNT
from sandbox.errors import PolicyError, SandboxError, SandboxUnavailable, SessionClosed
from sandbox.output import CappedBuffer
from sandbox.policy import SandboxPolicy
from sandbox.service import PodmanService, SandboxUser

log = logging.getLogger(__name__)

LABEL = "appliance.sandbox"
TASK_LABEL = "appliance.task"
# Git inside the container refuses a worktree owned by another uid without this.
_BASE_ENV = {
    "HOME": "/tmp",  # noqa: S108 - the container's own tmpfs
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "PIP_NO_INDEX": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# Grace after a command's timeout before the host side kills the whole container.
_WATCHDOG_GRACE_S = 5.0


@contextlib.contextmanager
def map_podman_errors(what: str) -> Iterator[None]:
    """Translate podman-py's errors at the boundary."""
    try:
        yield
    except SandboxError:
        raise
    except NotFound as exc:
        raise SandboxError(f"{what}: not found ({exc})") from exc
    except (APIError, PodmanError) as exc:
        raise SandboxError(f"{what}: podman said: {exc}") from exc
    except OSError as exc:
        raise SandboxUnavailable(f"{what}: cannot reach the Podman service ({exc})") from exc


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


class PodmanSandbox:
    """The :class:`sandbox.base.Sandbox` implementation."""

    def __init__(
        self, *, user: SandboxUser | None = None, service: PodmanService | None = None
    ) -> None:
        self.user = user or SandboxUser.lookup()
        self.service = service or PodmanService(self.user)
        self._client: PodmanClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> PodmanClient:
        with self._lock:
            if self._client is None:
                self.service.ensure_running()
                self._client = PodmanClient(base_url=self.service.url, timeout=60)
            return self._client

    def enforced_limits(self) -> EnforcedLimits:
        ok, why = cgroups.can_manage()
        return EnforcedLimits(memory=ok, pids=ok, cpu=ok, notes=(why,))

    def image_exists(self, image: str) -> bool:
        with map_podman_errors("checking the image"):
            return bool(self.client.images.exists(image))

    def open(
        self,
        worktree: Path,
        policy: SandboxPolicy,
        *,
        task_id: str,
        wheelhouse: Path | None = None,
        npm_cache: Path | None = None,
    ) -> PodmanSession:
        """Start the task's container. ``wheelhouse`` and ``npm_cache`` (filled by
        :mod:`sandbox.deps`) are mounted read-only under /deps for offline installs."""
        policy.check_network()
        worktree = worktree.resolve()
        if not worktree.is_dir():
            raise SandboxError(f"worktree {worktree} is not a directory")
        enforced = self.enforced_limits()
        if policy.require_limits and not (enforced.memory and enforced.pids and enforced.cpu):
            raise SandboxUnavailable(
                "this host cannot enforce the sandbox's memory/pids/CPU limits "
                f"({'; '.join(enforced.notes)}); run the appliance's privileged install step, "
                "or set require_limits=false to run without them"
            )
        if not self.image_exists(policy.image):
            raise SandboxUnavailable(
                f"sandbox image {policy.image} is not built: run "
                "`appliance sandbox build-image python` (make test does it)"
            )
        grant_access(worktree, self.user.uid)
        mounts: list[dict[str, Any]] = [
            {"type": "tmpfs", "source": "tmpfs", "target": "/tmp", "size": f"{policy.tmpfs_mb}m"},  # noqa: S108
            {"type": "bind", "source": str(worktree), "target": WORKSPACE},
        ]
        for cache, target in ((wheelhouse, WHEELHOUSE_MOUNT), (npm_cache, NPM_CACHE_MOUNT)):
            if cache is None:
                continue
            allow_traverse(cache / "x", self.user.uid)
            mounts.append(
                {
                    "type": "bind",
                    "source": str(cache.resolve()),
                    "target": target,
                    "read_only": True,
                }
            )
        cgroup_parent = None
        if enforced.memory:
            cgroup_parent = cgroups.prepare(
                task_id,
                cgroups.Limits(
                    memory_bytes=policy.memory_mb * 2**20, pids=policy.pids, cpus=policy.cpus
                ),
                uid=self.user.uid,
                gid=self.user.gid,
            )
        name = f"appliance-{cgroups.task_dir_name(task_id)}-{secrets.token_hex(3)}"
        u = policy.ulimits
        try:
            with map_podman_errors("creating the sandbox container"):
                container = self.client.containers.create(
                    image=policy.image,
                    name=name,
                    command=["sleep", str(policy.session_max_s)],
                    auto_remove=True,
                    network_mode="none",
                    cap_drop=["ALL"],
                    no_new_privileges=True,
                    read_only=True,
                    mounts=mounts,
                    ulimits=[
                        {"Name": "nproc", "Soft": u.nproc, "Hard": u.nproc},
                        {"Name": "fsize", "Soft": u.fsize_mb * 2**20, "Hard": u.fsize_mb * 2**20},
                        {"Name": "cpu", "Soft": u.cpu_s, "Hard": u.cpu_s},
                        {"Name": "nofile", "Soft": u.nofile, "Hard": u.nofile},
                        {"Name": "data", "Soft": u.data_mb * 2**20, "Hard": u.data_mb * 2**20},
                    ],
                    cgroup_parent=cgroup_parent,
                    stop_timeout=0,
                    working_dir=WORKSPACE,
                    environment=_BASE_ENV,
                    labels={LABEL: "1", TASK_LABEL: task_id},
                )
                container.start()
        except BaseException:
            if cgroup_parent:
                cgroups.remove(task_id)
            raise
        log.info("sandbox %s opened for task %s", name, task_id)
        return PodmanSession(self, container, policy, task_id=task_id, enforced=enforced)

    def cleanup_orphans(self) -> int:
        """Remove every sandbox container and task cgroup left behind (call at start-up)."""
        removed = 0
        with map_podman_errors("listing sandbox containers"):
            for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
                _force_remove(self.client, container.id or "")
                removed += 1
        for name in cgroups.leftover_tasks():
            with contextlib.suppress(OSError):
                cgroups.remove_dir(name)
        if removed:
            log.warning("removed %d orphaned sandbox container(s)", removed)
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None


def _force_remove(client: PodmanClient, container_id: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.api.delete(f"/containers/{container_id}", params={"force": True, "timeout": 0})


class PodmanSession:
    """One task's container; ``close()`` always removes it (also after errors)."""

    def __init__(
        self,
        sandbox: PodmanSandbox,
        container: Container,
        policy: SandboxPolicy,
        *,
        task_id: str,
        enforced: EnforcedLimits,
    ) -> None:
        self._sandbox = sandbox
        self._container = container
        self.policy = policy
        self.task_id = task_id
        self.enforced = enforced
        self.container_id = container.id or ""
        self._closed = False
        self._removed = False

    def __enter__(self) -> PodmanSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _argv(self, cmd: Sequence[str] | str, timeout: float) -> list[str]:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise SandboxError("empty command")
        # The kill inside the container takes the command's whole process group.
        return ["timeout", "-s", "KILL", f"{timeout:.3f}s", *argv]

    def _env(self, env: Mapping[str, str] | None) -> list[str]:
        env = dict(env or {})
        refused = sorted(k for k in env if k not in self.policy.env_allow)
        if refused:
            raise PolicyError(
                f"environment variable(s) {', '.join(refused)} are not in the sandbox's "
                f"allow-list ({', '.join(self.policy.env_allow)})"
            )
        return [f"{k}={v}" for k, v in env.items()]

    def run(
        self,
        cmd: Sequence[str] | str,
        *,
        cwd: str = WORKSPACE,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        user: str | None = None,
    ) -> RunResult:
        if self._closed:
            raise SessionClosed(f"the sandbox of task {self.task_id} is closed")
        limit = self.policy.command_timeout(timeout)
        body: dict[str, Any] = {
            "Cmd": self._argv(cmd, limit),
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": False,
            "Tty": False,
            "WorkingDir": cwd,
            "Env": self._env(env),
        }
        if user is not None:
            body["User"] = user
        api = self._sandbox.client.api
        out = CappedBuffer(self.policy.output_cap_bytes)
        err = CappedBuffer(self.policy.output_cap_bytes)
        ooms_before = cgroups.oom_kills(self.task_id) if self.enforced.memory else 0
        started = time.monotonic()
        fired = threading.Event()

        def watchdog() -> None:  # the in-container timeout failed to end the command
            fired.set()
            log.warning("task %s: command outlived its timeout; removing the sandbox", self.task_id)
            self._kill()

        timer = threading.Timer(limit + _WATCHDOG_GRACE_S, watchdog)
        timer.daemon = True
        with map_podman_errors("running a command in the sandbox"):
            response = api.post(f"/containers/{self.container_id}/exec", data=json.dumps(body))
            response.raise_for_status()
            exec_id = response.json()["Id"]
            timer.start()
            stream = None
            try:
                stream = api.post(
                    f"/exec/{exec_id}/start",
                    data=json.dumps({"Detach": False, "Tty": False}),
                    stream=True,
                )
                stream.raise_for_status()
                for chunk_out, chunk_err in stream_frames(stream, demux=True):
                    if isinstance(chunk_out, bytes) and chunk_out:
                        self._feed("stdout", chunk_out, out, on_output)
                    if isinstance(chunk_err, bytes) and chunk_err:
                        self._feed("stderr", chunk_err, err, on_output)
            except (APIError, OSError, ValueError):
                if not fired.is_set():
                    raise
            finally:
                timer.cancel()
                if stream is not None:  # a frame reader may stop short of EOF: free the socket
                    stream.close()
            exit_code = -1 if fired.is_set() else self._exit_code(exec_id)
        duration = time.monotonic() - started
        timed_out = fired.is_set() or (exit_code in (137, -1) and duration >= limit - 0.05)
        oom = self.enforced.memory and cgroups.oom_kills(self.task_id) > ooms_before
        return RunResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=duration,
            timed_out=timed_out,
            truncated=out.truncated or err.truncated,
            oom_killed=oom,
        )

    @staticmethod
    def _feed(
        stream: Stream, chunk: bytes, buffer: CappedBuffer, on_output: OutputCallback | None
    ) -> None:
        before = buffer.total
        buffer.write(chunk)
        if on_output is None:
            return
        if buffer.total <= buffer.cap:
            on_output(stream, chunk)
        elif before < buffer.cap:  # crossed the cap with this chunk: say so, once
            on_output(stream, chunk[: buffer.cap - before])
            on_output(stream, b"\n[... output over the cap is not streamed ...]\n")

    def _exit_code(self, exec_id: str) -> int:
        api = self._sandbox.client.api
        for _ in range(500):
            info = api.get(f"/exec/{exec_id}/json").json()
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.01)
        return -1

    def _kill(self) -> None:
        _force_remove(self._sandbox.client, self.container_id)
        self._closed = True

    def close(self) -> None:
        if self._removed:
            return
        self._closed = True
        self._removed = True
        try:
            _force_remove(self._sandbox.client, self.container_id)
        finally:
            if self.enforced.memory:
                with contextlib.suppress(OSError):
                    cgroups.remove(self.task_id)
            log.info("sandbox for task %s closed", self.task_id)
