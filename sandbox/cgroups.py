"""Per-task cgroups on cgroup-v1 hosts, where rootless Podman ignores --memory,
--pids-limit and --cpus.

Root prepares ``/sys/fs/cgroup/<controller>/appliance/<task>`` in every mounted v1
hierarchy (runc needs the parent in all of them), writes the limits, and hands the
directories (not the limit files) to the sandbox user; the container is created with
``cgroup_parent=/appliance/<task>`` and its processes land below it. The container
sees cgroupfs read-only, so it cannot raise its own limits.

On a pure cgroup-v2 host nothing is prepared here: :func:`v2_delegated` finds the
controllers delegated to the sandbox user, and Podman enforces those limits itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "appliance"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    pids: int
    cpus: float


def task_dir_name(task_id: str) -> str:
    return "task-" + _SAFE.sub("_", task_id)[:100]


def v1_controllers(root: Path = ROOT) -> list[str]:
    """The mounted v1 hierarchies (empty on a pure cgroup-v2 host)."""
    if not root.is_dir() or (root / "cgroup.controllers").exists():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and entry.name != "unified" and os.path.ismount(entry)
    )


def can_manage(root: Path = ROOT) -> tuple[bool, str]:
    """Whether this process can prepare per-task cgroups, and why not."""
    controllers = v1_controllers(root)
    if not controllers:
        return False, "not a cgroup-v1 host (per-task cgroups are prepared only on v1)"
    missing = {"memory", "pids", "cpu", "cpuset"} - set(controllers)
    if missing:
        return False, f"cgroup controllers not mounted: {', '.join(sorted(missing))}"
    for name in controllers:
        path = root / name
        if not os.access(path, os.W_OK):
            return False, f"{path} is not writable (the privileged install step prepares it)"
    return True, "per-task cgroups under " + str(root / "<controller>" / PARENT)


def prepare(task_id: str, limits: Limits, *, uid: int, gid: int, root: Path = ROOT) -> str:
    """Create the task's cgroups with their limits; return the cgroup_parent to pass."""
    rel = Path(PARENT) / task_dir_name(task_id)
    controllers = v1_controllers(root)
    for name in controllers:
        (root / name / rel).mkdir(parents=True, exist_ok=True)
    for level in (Path(PARENT), rel):  # runc fails on an empty cpuset in the parent
        for leaf in ("cpuset.cpus", "cpuset.mems"):
            target = root / "cpuset" / level / leaf
            if not target.read_text().strip():
                target.write_text((root / "cpuset" / leaf).read_text())
    _write(root / "memory" / rel / "memory.limit_in_bytes", limits.memory_bytes)
    # No swap beyond the memory limit, where the kernel accounts swap.
    memsw = root / "memory" / rel / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        _write(memsw, limits.memory_bytes)
    _write(root / "pids" / rel / "pids.max", limits.pids)
    period = 100_000
    _write(root / "cpu" / rel / "cpu.cfs_period_us", period)
    _write(root / "cpu" / rel / "cpu.cfs_quota_us", max(1000, int(limits.cpus * period)))
    for name in controllers:
        os.chown(root / name / rel, uid, gid)  # the directory only; limit files stay root's
    return "/" + str(rel)


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))


def oom_kills(task_id: str, root: Path = ROOT) -> int:
    """OOM kills in the task's containers so far (podman does not report them on v1)."""
    base = root / "memory" / PARENT / task_dir_name(task_id)
    total = 0
    for control in base.glob("*/memory.oom_control"):
        with contextlib.suppress(OSError, ValueError):
            fields = dict(line.split() for line in control.read_text().splitlines())
            total += int(fields.get("oom_kill", 0))
    return total


def remove(task_id: str, *, root: Path = ROOT, timeout: float = 5.0) -> None:
    """Kill what is left in the task's cgroups (conmon lingers ~1 s) and remove them."""
    _remove_rel(Path(PARENT) / task_dir_name(task_id), root=root, timeout=timeout)


def leftover_tasks(root: Path = ROOT) -> list[str]:
    """Task cgroup directory names under the appliance parent (for orphan cleanup)."""
    parent = root / "memory" / PARENT
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and p.name.startswith("task-"))


def remove_dir(name: str, *, root: Path = ROOT) -> None:
    _remove_rel(Path(PARENT) / name, root=root, timeout=5.0)


def _remove_rel(rel: Path, *, root: Path, timeout: float) -> None:
    controllers = v1_controllers(root)
    for name in controllers:
        base = root / name / rel
        for procs in base.glob("**/cgroup.procs"):
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for name in controllers:
        base = root / name / rel
        if not base.is_dir():
            continue
        children = sorted((p for p in base.glob("**/") if p != base), key=lambda p: -len(p.parts))
        for directory in [*children, base]:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


# --- cgroup v2 ------------------------------------------------------------------------


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def v2_delegated(uid: int, root: Path = ROOT) -> frozenset[str] | None:
    """On a pure cgroup-v2 host, the controllers delegated to ``uid``'s systemd user
    manager, the ones rootless Podman can enforce limits with; None on a v1 or hybrid host.

    A controller is delegated when the root offers it and it is listed in the user
    manager's ``cgroup.controllers`` (or already enabled in its ``cgroup.subtree_control``).
    Without a user manager (no ``user@<uid>.service`` cgroup) nothing is delegated."""
    offered = root / "cgroup.controllers"
    if not offered.is_file():
        return None
    service = root / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service"
    if not service.is_dir():
        return frozenset()
    in_service = _words(service / "cgroup.controllers") | _words(service / "cgroup.subtree_control")
    return frozenset(_words(offered) & in_service)


def v2_oom_kills(cgroup_path: str, root: Path = ROOT) -> int | None:
    """``oom_kill`` of a v2 cgroup's ``memory.events`` (None when it cannot be read)."""
    if not cgroup_path:
        return None
    events = root / cgroup_path.lstrip("/") / "memory.events"
    try:
        fields = dict(line.split() for line in events.read_text().splitlines() if line.strip())
        return int(fields.get("oom_kill", 0))
    except (OSError, ValueError):
        return None
