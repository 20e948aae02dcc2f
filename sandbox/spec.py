"""What a sandbox container is created with: a pure function of the policy and of what
the host enforces, so that the cgroup-v1 and cgroup-v2 variants can be checked without
Podman.

On a cgroup-v1 host rootless Podman ignores --memory/--pids-limit/--cpus; there the
limits live in a per-task cgroup (:mod:`sandbox.cgroups`) passed as ``cgroup_parent``.
On a cgroup-v2 host the controllers delegated to the sandbox user's systemd manager are
enforced by Podman itself, so the limits go into the create call, and only those.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox import cgroups
from sandbox.base import WORKSPACE, EnforcedLimits
from sandbox.policy import SandboxPolicy

V1 = "cgroup-v1"
V2 = "cgroup-v2"
CPU_PERIOD_US = 100_000
# Git inside the container refuses a worktree owned by another uid without this.
BASE_ENV = {
    "HOME": "/tmp",  # noqa: S108 - the container's own tmpfs
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "PIP_NO_INDEX": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def host_limits(uid: int, root: Path = cgroups.ROOT) -> EnforcedLimits:
    """What this host enforces for the sandbox user ``uid``: Podman's own limits on the
    controllers a cgroup-v2 host delegates to it, else per-task v1 cgroups where this
    process can prepare them, else nothing."""
    delegated = cgroups.v2_delegated(uid, root)
    if delegated is not None:
        return v2_enforced(delegated, uid=uid)
    ok, why = cgroups.can_manage(root)
    return EnforcedLimits(memory=ok, pids=ok, cpu=ok, notes=(why,), via=V1 if ok else "")


def v2_enforced(delegated: frozenset[str], *, uid: int) -> EnforcedLimits:
    """What rootless Podman enforces on a cgroup-v2 host with these controllers delegated
    to the sandbox user (never more than that)."""
    missing = sorted({"memory", "pids", "cpu"} - delegated)
    if missing:
        note = (
            f"cgroup v2: controller(s) {', '.join(missing)} not delegated to uid {uid} "
            "(systemd: Delegate=memory pids cpu in user@.service)"
        )
    else:
        note = f"cgroup v2: memory, pids and cpu delegated to uid {uid}"
    return EnforcedLimits(
        memory="memory" in delegated,
        pids="pids" in delegated,
        cpu="cpu" in delegated,
        notes=(note,),
        via=V2,
    )


def create_kwargs(
    policy: SandboxPolicy,
    *,
    name: str,
    mounts: list[dict[str, Any]],
    labels: Mapping[str, str],
    enforced: EnforcedLimits,
    cgroup_parent: str | None = None,
) -> dict[str, Any]:
    """The podman-py ``containers.create`` arguments for one task's container."""
    u = policy.ulimits
    kwargs: dict[str, Any] = {
        "image": policy.image,
        "name": name,
        "command": ["sleep", str(policy.session_max_s)],
        "auto_remove": True,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "no_new_privileges": True,
        "read_only": True,
        "mounts": mounts,
        "ulimits": [
            {"Name": "nproc", "Soft": u.nproc, "Hard": u.nproc},
            {"Name": "fsize", "Soft": u.fsize_mb * 2**20, "Hard": u.fsize_mb * 2**20},
            {"Name": "cpu", "Soft": u.cpu_s, "Hard": u.cpu_s},
            {"Name": "nofile", "Soft": u.nofile, "Hard": u.nofile},
            {"Name": "data", "Soft": u.data_mb * 2**20, "Hard": u.data_mb * 2**20},
        ],
        "stop_timeout": 0,
        "working_dir": WORKSPACE,
        "environment": dict(BASE_ENV),
        "labels": dict(labels),
    }
    if enforced.via == V1 and cgroup_parent is not None:
        kwargs["cgroup_parent"] = cgroup_parent
    elif enforced.via == V2:
        if enforced.memory:  # no swap beyond the memory limit
            kwargs["mem_limit"] = kwargs["memswap_limit"] = policy.memory_mb * 2**20
        if enforced.pids:
            kwargs["pids_limit"] = policy.pids
        if enforced.cpu:  # podman-py ignores nano_cpus: a CFS quota says the same
            kwargs["cpu_period"] = CPU_PERIOD_US
            kwargs["cpu_quota"] = max(1000, int(policy.cpus * CPU_PERIOD_US))
    return kwargs
