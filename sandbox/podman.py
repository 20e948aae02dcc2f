"""Sandboxes as rootless Podman containers, driven through podman-py.

One container per task: no network, all capabilities dropped, no new privileges, a
read-only image root, a sized tmpfs at /tmp, the worktree at /workspace, rlimits, and
memory/pids/CPU limits: through a per-task cgroup on a cgroup-v1 host, through Podman's
own limits on the controllers a cgroup-v2 host delegates (:mod:`sandbox.spec`). The
container's main process is ``sleep <session_max_s>`` and it is created with --rm, so
even a container whose appliance died removes itself in the end; start-up removes
orphans at once (:meth:`PodmanSandbox.cleanup_orphans`). The API service is supervised:
when it stops answering, it is started again and the call retried once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from podman import PodmanClient
from podman.api import stream_frames
from podman.domain.containers import Container
from podman.errors import APIError, NotFound, PodmanError

from sandbox import cgroups, spec
from sandbox.access import allow_traverse, grant_access
from sandbox.base import WORKSPACE, EnforcedLimits, OutputCallback, RunResult, Stream
from sandbox.deps import NPM_CACHE_MOUNT, WHEELHOUSE_MOUNT
from sandbox.errors import (
    PolicyError,
    SandboxError,
    SandboxUnavailable,
    SessionClosed,
    service_fault,
)
from sandbox.output import CappedBuffer
from sandbox.policy import SandboxPolicy
from sandbox.service import PodmanService, SandboxUser

log = logging.getLogger(__name__)

LABEL = "appliance.sandbox"
TASK_LABEL = "appliance.task"
T = TypeVar("T")
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


def connection_lost(exc: BaseException) -> bool:
    """Whether podman-py failed to reach the service at all (nothing was done there)."""
    if isinstance(exc, APIError) and exc.response is None:
        cause = exc.__cause__
        return isinstance(cause, (OSError, APIError)) or "Unable to make connection" in str(exc)
    return False


def _close_failed_socket(exc: BaseException) -> None:
    """podman-py leaves the socket of a failed connect open (a ResourceWarning later):
    close it; it is a local of a frame in the tracebacks of the error's chain."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            break
        tb = seen.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, socket.socket):
                    value.close()
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__


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

    def _reset_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    def call(self, what: str, fn: Callable[[PodmanClient], T]) -> T:
        """``fn(client)`` with podman's errors translated. When the service does not
        answer (it died since it was started), start it again and retry once: only calls
        that did not reach it are retried, so nothing is done twice."""
        with map_podman_errors(what):
            try:
                return fn(self.client)
            except APIError as exc:
                if not connection_lost(exc):
                    raise
                _close_failed_socket(exc)
                log.warning("the Podman API service did not answer (%s): restarting it", str(exc))
            self._reset_client()
            return fn(self.client)

    def enforced_limits(self) -> EnforcedLimits:
        return spec.host_limits(self.user.uid)

    def image_exists(self, image: str) -> bool:
        return self.call("checking the image", lambda c: bool(c.images.exists(image)))

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
        if enforced.via == spec.V1:
            cgroup_parent = cgroups.prepare(
                task_id,
                cgroups.Limits(
                    memory_bytes=policy.memory_mb * 2**20, pids=policy.pids, cpus=policy.cpus
                ),
                uid=self.user.uid,
                gid=self.user.gid,
            )
        name = f"appliance-{cgroups.task_dir_name(task_id)}-{secrets.token_hex(3)}"
        kwargs = spec.create_kwargs(
            policy,
            name=name,
            mounts=mounts,
            labels={LABEL: "1", TASK_LABEL: task_id},
            enforced=enforced,
            cgroup_parent=cgroup_parent,
        )
        try:
            try:
                container = self._create_and_start(kwargs, name)
            except SandboxError as exc:
                if not service_fault(exc):
                    raise
                # Seen on a long-running service: it answers, but every start fails
                # ("write child: broken pipe"). The failed container is gone already.
                log.warning("the Podman service failed to start %s (%s): restarting it and "
                            "trying once more", name, exc.message)  # fmt: skip
                self._reset_client()
                with map_podman_errors("restarting the Podman API service"):
                    self.service.restart()
                container = self._create_and_start(kwargs, name)
        except BaseException:
            if cgroup_parent:
                with contextlib.suppress(OSError):
                    cgroups.remove(task_id)
            raise
        cgroup_path = ""
        if enforced.via == spec.V2 and enforced.memory:
            with contextlib.suppress(SandboxError):
                state = self.call(
                    "inspecting the sandbox",
                    lambda c: c.api.get(f"/containers/{container.id}/json").json(),
                )
                cgroup_path = str(state.get("State", {}).get("CgroupPath") or "")
        log.info("sandbox %s opened for task %s", name, task_id)
        return PodmanSession(
            self, container, policy, task_id=task_id, enforced=enforced, cgroup_path=cgroup_path
        )

    def _create_and_start(self, kwargs: dict[str, Any], name: str) -> Container:
        container = self.call(
            "creating the sandbox container", lambda c: c.containers.create(**kwargs)
        )
        self._start(container, name)
        return container

    def _start(self, container: Container, name: str) -> None:
        """Start a created container; one that does not start is removed at once."""
        try:
            self.call(
                "starting the sandbox container",
                lambda c: c.api.post(f"/containers/{container.id}/start").raise_for_status(),
            )
        except BaseException as exc:
            with contextlib.suppress(SandboxError):
                self.call("removing the container", lambda c: _force_remove(c, container.id or ""))
            if isinstance(exc, SandboxError):
                raise SandboxError(
                    f"the sandbox container {name} was created but did not start; it was "
                    f"removed ({exc.message})"
                ) from exc
            raise

    def cleanup_orphans(self) -> int:
        """Remove every sandbox container and task cgroup left behind (call at start-up)."""
        removed = 0
        containers = self.call(
            "listing sandbox containers",
            lambda c: c.containers.list(all=True, filters={"label": f"{LABEL}=1"}),
        )
        with map_podman_errors("removing orphaned sandbox containers"):
            for container in containers:
                _force_remove(self.client, container.id or "")
                removed += 1
        for name in cgroups.leftover_tasks():
            with contextlib.suppress(OSError):
                cgroups.remove_dir(name)
        if removed:
            log.warning("removed %d orphaned sandbox container(s)", removed)
        return removed

    def close(self) -> None:
        self._reset_client()


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
        cgroup_path: str = "",
    ) -> None:
        self._sandbox = sandbox
        self._container = container
        self.policy = policy
        self.task_id = task_id
        self.enforced = enforced
        self.container_id = container.id or ""
        self.cgroup_path = cgroup_path  # cgroup v2: where memory.events counts OOM kills
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
        ooms_before = self._oom_kills()
        started = time.monotonic()
        fired = threading.Event()

        def watchdog() -> None:  # the in-container timeout failed to end the command
            fired.set()
            log.warning("task %s: command outlived its timeout; removing the sandbox", self.task_id)
            self._kill()

        timer = threading.Timer(limit + _WATCHDOG_GRACE_S, watchdog)
        timer.daemon = True
        exec_id = self._create_exec(body)
        with map_podman_errors("running a command in the sandbox"):
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
                if fired.is_set():  # the stream ends as the removal starts: let it finish
                    timer.join(timeout=60)
                if stream is not None:  # a frame reader may stop short of EOF: free the socket
                    stream.close()
            exit_code = -1 if fired.is_set() else self._exit_code(exec_id)
        duration = time.monotonic() - started
        timed_out = fired.is_set() or (exit_code in (137, -1) and duration >= limit - 0.05)
        if timed_out and not fired.is_set():
            self._reap()
        ooms_after = self._oom_kills()
        if ooms_before is not None and ooms_after is not None:
            oom = ooms_after > ooms_before
        else:  # a limit the kernel enforces but whose events cannot be read: SIGKILL says it
            oom = self.enforced.memory and exit_code == 137 and not timed_out
        return RunResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=duration,
            timed_out=timed_out,
            truncated=out.truncated or err.truncated,
            oom_killed=oom,
        )

    def _reap(self) -> None:
        """Kill what a timed-out command left running in the background (processes that
        left its process group): everything but the container's main process, so that
        nothing keeps burning the session's CPU or holding its files."""
        with contextlib.suppress(SandboxError):
            self.run("kill -KILL -1 2>/dev/null; true", timeout=10)

    @property
    def closed(self) -> bool:
        """True once the session is closed or its container was removed."""
        return self._closed

    def _create_exec(self, body: dict[str, Any]) -> str:
        def create(client: PodmanClient) -> str:
            response = client.api.post(
                f"/containers/{self.container_id}/exec", data=json.dumps(body)
            )
            response.raise_for_status()
            return str(response.json()["Id"])

        try:
            return self._sandbox.call("running a command in the sandbox", create)
        except SandboxError as exc:
            cause = exc.__cause__
            if isinstance(cause, APIError) and cause.status_code in (404, 409):
                # removed behind our back, or stopped: it outlived session_max_s
                self._closed = True
                raise SessionClosed(
                    f"the sandbox container of task {self.task_id} is gone (it lives at most "
                    f"{self.policy.session_max_s} s); open a new session"
                ) from exc
            raise

    def _oom_kills(self) -> int | None:
        """OOM kills counted so far, or None where the host does not say."""
        if not self.enforced.memory:
            return 0
        if self.enforced.via == spec.V2:
            return cgroups.v2_oom_kills(self.cgroup_path)
        return cgroups.oom_kills(self.task_id)

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
            if self.enforced.via == spec.V1:
                with contextlib.suppress(OSError):
                    cgroups.remove(self.task_id)
            log.info("sandbox for task %s closed", self.task_id)
