"""Which limits a host enforces, and what the container is created with (pure: a fake
/sys/fs/cgroup tree in tmp_path; this host is cgroup v1, production hosts are v2)."""

from __future__ import annotations

from pathlib import Path

from podman.domain.containers_create import CreateMixin

from sandbox import cgroups, spec
from sandbox.base import EnforcedLimits
from sandbox.policy import SandboxPolicy

UID = 1234
POLICY = SandboxPolicy(memory_mb=256, pids=128, cpus=1.5)


def _v2_tree(root: Path, *, delegated: str | None, subtree: str = "") -> Path:
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    if delegated is not None:
        service = root / "user.slice" / f"user-{UID}.slice" / f"user@{UID}.service"
        service.mkdir(parents=True)
        (service / "cgroup.controllers").write_text(delegated + "\n")
        (service / "cgroup.subtree_control").write_text(subtree + "\n")
    return root


def _v1_tree(root: Path) -> Path:
    for name in ("memory", "pids", "cpu"):
        (root / name).mkdir(parents=True)
    return root


def test_v1_host_is_not_taken_for_v2(tmp_path: Path) -> None:
    root = _v1_tree(tmp_path / "cg")
    assert cgroups.v2_delegated(UID, root) is None
    # Plain directories, not mounted hierarchies: nothing can be enforced, none claimed.
    enforced = spec.host_limits(UID, root)
    assert (enforced.memory, enforced.pids, enforced.cpu, enforced.via) == (False, False, False, "")


def test_v2_controllers_delegated_to_the_sandbox_user_are_found(tmp_path: Path) -> None:
    root = _v2_tree(tmp_path / "cg", delegated="cpuset cpu io memory pids")
    assert cgroups.v2_delegated(UID, root) == frozenset({"cpuset", "cpu", "io", "memory", "pids"})
    enforced = spec.v2_enforced(cgroups.v2_delegated(UID, root) or frozenset(), uid=UID)
    assert (enforced.memory, enforced.pids, enforced.cpu, enforced.via) == (
        True,
        True,
        True,
        "cgroup-v2",
    )


def test_v2_without_cpu_delegation_never_claims_a_cpu_limit(tmp_path: Path) -> None:
    root = _v2_tree(tmp_path / "cg", delegated="memory pids")
    enforced = spec.host_limits(UID, root)
    assert (enforced.memory, enforced.pids, enforced.cpu) == (True, True, False)
    assert "cpu not delegated to uid 1234" in enforced.notes[0]


def test_v2_controller_enabled_in_subtree_control_counts_as_delegated(tmp_path: Path) -> None:
    root = _v2_tree(tmp_path / "cg", delegated="", subtree="memory")
    assert cgroups.v2_delegated(UID, root) == frozenset({"memory"})


def test_v2_without_a_user_manager_delegates_nothing(tmp_path: Path) -> None:
    root = _v2_tree(tmp_path / "cg", delegated=None)
    enforced = spec.host_limits(UID, root)
    assert (enforced.memory, enforced.pids, enforced.cpu) == (False, False, False)


def _kwargs(enforced: EnforcedLimits, cgroup_parent: str | None = None) -> dict[str, object]:
    return spec.create_kwargs(
        POLICY,
        name="appliance-task-x-abc123",
        mounts=[],
        labels={"appliance.sandbox": "1", "appliance.task": "x"},
        enforced=enforced,
        cgroup_parent=cgroup_parent,
    )


def test_every_container_is_locked_down_whatever_the_cgroup_version() -> None:
    for enforced in (
        EnforcedLimits(memory=True, pids=True, cpu=True, via="cgroup-v1"),
        EnforcedLimits(memory=True, pids=True, cpu=True, via="cgroup-v2"),
        EnforcedLimits(memory=False, pids=False, cpu=False),
    ):
        kwargs = _kwargs(enforced, "/appliance/task-x")
        assert kwargs["network_mode"] == "none"
        assert kwargs["cap_drop"] == ["ALL"]
        assert kwargs["no_new_privileges"] is True
        assert kwargs["read_only"] is True
        assert kwargs["auto_remove"] is True
        assert kwargs["command"] == ["sleep", str(POLICY.session_max_s)]
        assert {u["Name"] for u in kwargs["ulimits"]} == {  # type: ignore[attr-defined]
            "nproc",
            "fsize",
            "cpu",
            "nofile",
            "data",
        }


def test_v1_limits_go_through_the_task_cgroup_not_podman() -> None:
    kwargs = _kwargs(
        EnforcedLimits(memory=True, pids=True, cpu=True, via="cgroup-v1"), "/appliance/task-x"
    )
    assert kwargs["cgroup_parent"] == "/appliance/task-x"
    assert not {"mem_limit", "memswap_limit", "pids_limit", "cpu_quota"} & set(kwargs)


def test_v2_limits_reach_podmans_create_spec() -> None:
    enforced = EnforcedLimits(memory=True, pids=True, cpu=True, via="cgroup-v2")
    kwargs = _kwargs(enforced)
    assert "cgroup_parent" not in kwargs
    payload = CreateMixin._render_payload(dict(kwargs))
    limits = payload["resource_limits"]
    assert limits["memory"]["limit"] == 256 * 2**20
    assert limits["memory"]["swap"] == 256 * 2**20  # no swap beyond the memory limit
    assert limits["pids"]["limit"] == 128
    assert (limits["cpu"]["quota"], limits["cpu"]["period"]) == (150_000, 100_000)


def test_v2_passes_only_the_delegated_limits() -> None:
    kwargs = _kwargs(EnforcedLimits(memory=True, pids=True, cpu=False, via="cgroup-v2"))
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 256 * 2**20
    assert kwargs["pids_limit"] == 128
    assert "cpu_quota" not in kwargs
    none = _kwargs(EnforcedLimits(memory=False, pids=False, cpu=False))
    assert not {"mem_limit", "pids_limit", "cpu_quota", "cgroup_parent"} & set(none)


def test_v2_oom_kills_are_read_from_memory_events(tmp_path: Path) -> None:
    scope = tmp_path / "user.slice" / "libpod-abc.scope"
    scope.mkdir(parents=True)
    (scope / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    assert cgroups.v2_oom_kills("/user.slice/libpod-abc.scope", tmp_path) == 2
    assert cgroups.v2_oom_kills("/user.slice/gone.scope", tmp_path) is None
    assert cgroups.v2_oom_kills("", tmp_path) is None
