"""A real run of the playbooks against this machine: connection local, as root, under
/opt/appliance-test with its own data dir, port, service user and pidfile supervisor.

One module-scoped install (site.yml) is shared by the tests, which run in order:
install -> second run changes nothing -> upgrade to a newer build -> a failing upgrade
rolls back -> backup.yml / restore.yml. The wheels are built from this tree (the newer
ones from a copy with a bumped version; the failing one also carries a migration that
raises) and installed with their dependencies from a wheelhouse built once per module
(the air-gapped path of the appliance role).

What this host's other tests rely on is left alone: the podman role only verifies the
sandbox user, its subids, the cgroups and the containers config; the sandbox images are
the existing ones; the service never sweeps sandboxes (cleanup_on_start = false). At the
end the service (the only process started here) is stopped and /opt/appliance-test and
the service user are removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.version import Version

from tests.ansible.release import BIN, Release, copy_sources, env, pip
from tests.servers import REPO_ROOT, free_port

ANSIBLE_DIR = REPO_ROOT / "ansible"
INVENTORY = Path(__file__).parent / "fixtures" / "inventory"
PREFIX = Path("/opt/appliance-test")
SERVICE_USER = "appliance-test"
CONFIG = PREFIX / "etc" / "config.toml"
DATABASE = PREFIX / "data" / "appliance.db"
DIST = "coding-agent-appliance"
# Two test runs on one machine would share PREFIX: the second waits for the first.
LOCK = Path("/tmp/appliance-ansible-test.lock")
TERMINAL = {"done", "failed", "cancelled", "rejected"}
# The release venvs are made with the role's default Python, the host's own
# /usr/bin/python3 (3.11.2 on Debian 12, whose tarfile lacks the extraction filters:
# `appliance restore` checks every member itself there, see appliance/util/tarsafe.py).

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


# --- helpers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recap:
    returncode: int
    output: str
    ok: int
    changed: int
    failed: int

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    @property
    def tail(self) -> str:
        return self.output[-8000:]

    def changed_tasks(self) -> list[str]:
        """The names of the tasks that reported a change."""
        names: list[str] = []
        task = ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:") and (not names or names[-1] != task):
                names.append(task)
        return names


_RECAP = re.compile(
    r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M
)


def _playbook(playbook: str, vars_file: Path, **extra_vars: str) -> Recap:
    tool = BIN / "ansible-playbook"
    assert tool.is_file(), (
        f"ansible-playbook is not installed in {BIN}: install the dev extra "
        "(`.venv/bin/pip install -e '.[dev]'`, which brings ansible-core)"
    )
    argv = [str(tool), "-i", str(INVENTORY), "-e", f"@{vars_file}"]
    for key, value in extra_vars.items():
        argv += ["-e", f"{key}={value}"]
    result = subprocess.run(
        [*argv, playbook],
        cwd=ANSIBLE_DIR,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=540,
    )
    output = result.stdout + result.stderr
    match = _RECAP.search(output)
    assert match is not None, f"no play recap from {playbook}:\n{output[-6000:]}"
    ok, changed, failed = (int(g) for g in match.groups())
    return Recap(result.returncode, output, ok, changed, failed)


def _appliance(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The installed CLI (the release `current` points at), with the installed config."""
    result = subprocess.run(
        [str(PREFIX / "current" / "bin" / "appliance"), *args],
        env=env(APPLIANCE_CONFIG=str(CONFIG)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, (
            f"appliance {' '.join(args)}:\n{result.stdout}{result.stderr}"
        )
    return result


def _installed_version() -> str:
    python = PREFIX / "current" / "bin" / "python"
    code = f"import importlib.metadata as m; print(m.version({DIST!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _current_release() -> str:
    return (PREFIX / "current").resolve().name


def _readyz(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)


@dataclass(frozen=True)
class Snapshot:
    tasks: list[tuple[str, str, str]]  # id, prompt, status
    events: list[tuple[str, int, str]]  # task id, seq, kind
    audit: list[str]  # record hashes, oldest first


def _snapshot() -> Snapshot:
    """Tasks, events and audit hashes as read from the installed database (read-only)."""
    conn = sqlite3.connect(f"file:{DATABASE}?mode=ro", uri=True)
    try:
        tasks = [
            (str(i), str(p), str(s))
            for i, p, s in conn.execute("SELECT id, prompt, status FROM task ORDER BY id")
        ]
        events = [
            (str(t), int(n), str(k))
            for t, n, k in conn.execute("SELECT task_id, seq, kind FROM taskevent ORDER BY 1, 2")
        ]
        audit = [r[0] for r in conn.execute("SELECT hash FROM audit_record ORDER BY seq")]
    finally:
        conn.close()
    return Snapshot(tasks, events, audit)


def _assert_intact(before: Snapshot, after: Snapshot) -> None:
    assert after.tasks == before.tasks
    assert after.events == before.events
    assert after.audit[: len(before.audit)] == before.audit, "audit records were changed or lost"
    verified = _appliance("audit", "verify")
    assert "audit chain intact" in verified.stdout


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _stop_service() -> None:
    """Stop the test service (the only process these tests start), if it runs."""
    script = PREFIX / "bin" / "appliance-service"
    if script.is_file():
        subprocess.run([str(script), "stop"], capture_output=True, check=False, timeout=90)


# --- the builds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Builds:
    base: str
    newer: str
    broken: str
    wheels: Path
    wheelhouse: Path

    def wheel(self, version: str) -> Path:
        return self.wheels / f"coding_agent_appliance-{version}-py3-none-any.whl"


_BROKEN_MIGRATION = '''"""a migration that raises: the upgrade test's forced failure

Revision ID: {revision}
Revises: {down}
"""

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    raise RuntimeError("forced failure in migration {revision}")


def downgrade() -> None:
    pass
'''


def _copy_with_version(dest: Path, version: str) -> Path:
    """The files the wheel is built from, with another version in pyproject.toml."""
    copy_sources(dest)
    pyproject = (dest / "pyproject.toml").read_text()
    line = f'version = "{tomllib.loads(pyproject)["project"]["version"]}"'
    assert line in pyproject
    (dest / "pyproject.toml").write_text(pyproject.replace(line, f'version = "{version}"', 1))
    return dest


def _head_revision(tree: Path) -> str:
    versions = tree / "appliance" / "store" / "migrations" / "versions"
    revisions, downs = set(), set()
    for script in versions.glob("*.py"):
        text = script.read_text()
        rev = re.search(r'^revision = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision = "([^"]+)"', text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    (head,) = revisions - downs
    return head


@pytest.fixture(scope="module")
def builds(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """This tree's wheel (the session's build, with the wheelhouse of its dependencies),
    and two more: a newer version, and one whose new migration raises."""
    work = tmp_path_factory.mktemp("ansible-builds")
    wheels = work / "dist"
    wheels.mkdir()
    base = Version(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"])
    newer = f"{base.major}.{base.minor}.{base.micro + 1}"
    broken = f"{base.major}.{base.minor}.{base.micro + 2}"
    shutil.copy2(release.wheel, wheels)
    pip(
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        str(wheels),
        ".",
        cwd=_copy_with_version(work / "newer", newer),
    )
    tree = _copy_with_version(work / "broken", broken)
    head = _head_revision(tree)
    migration = tree / "appliance" / "store" / "migrations" / "versions" / "9999_forced_failure.py"
    migration.write_text(_BROKEN_MIGRATION.format(revision="9999", down=head))
    pip("wheel", "--quiet", "--no-deps", "-w", str(wheels), ".", cwd=tree)
    builds = Builds(str(base), newer, broken, wheels, release.wheelhouse)
    for version in (builds.base, builds.newer, builds.broken):
        assert builds.wheel(version).is_file()
    return builds


# --- the install --------------------------------------------------------------------


@dataclass(frozen=True)
class Install:
    port: int
    vars_file: Path
    first_run: Recap
    builds: Builds


@pytest.fixture(scope="module")
def installed(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    assert os.geteuid() == 0, "the real Ansible run installs a service: run the tests as root"
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _install(builds, tmp_path_factory)


def _install(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    if PREFIX.exists():  # left by an interrupted run
        _stop_service()
        shutil.rmtree(PREFIX)
    user_existed = (
        subprocess.run(
            ["getent", "passwd", SERVICE_USER], capture_output=True, check=False
        ).returncode
        == 0
    )
    port = 18080 if _port_is_free(18080) else free_port()
    vars_file = tmp_path_factory.mktemp("ansible-vars") / "vars.json"
    vars_file.write_text(
        json.dumps(
            {
                "appliance_release": builds.base,
                "appliance_wheel": str(builds.wheel(builds.base)),
                "appliance_wheelhouse": str(builds.wheelhouse),
                "appliance_port": port,
                "appliance_secret_key": os.urandom(32).hex(),
            }
        )
    )
    try:
        first = _playbook("site.yml", vars_file)
        assert first.succeeded, first.tail
        yield Install(port, vars_file, first, builds)
    finally:
        _stop_service()
        shutil.rmtree(PREFIX, ignore_errors=True)
        if not user_existed:
            subprocess.run(["userdel", SERVICE_USER], capture_output=True, check=False)


@dataclass(frozen=True)
class Seeded:
    token: str
    repo: str


@pytest.fixture(scope="module")
def seeded(installed: Install) -> Seeded:
    """Tasks made through the installed CLI and API, left to finish (they fail at once:
    their repository cannot be cloned), so nothing changes them afterwards."""
    _appliance("user", "create", "tester", "--role", "admin", "--no-password")
    token = _appliance("token", "create", "tester").stdout.strip()
    _appliance("repo", "add", "demo/one", "/nonexistent/demo.git")
    seeded = Seeded(token, "demo/one")
    for prompt in ("add a --verbose flag", "fix the crash in parse()"):
        _submit(installed, seeded, prompt)
    return seeded


def _submit(installed: Install, seeded: Seeded, prompt: str) -> str:
    server = f"http://127.0.0.1:{installed.port}"
    task_id = _appliance(
        "task", "submit", "--server", server, "--token", seeded.token, "--repo", seeded.repo, prompt
    ).stdout.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = httpx.get(
            f"{server}/api/v1/tasks/{task_id}",
            headers={"Authorization": f"Bearer {seeded.token}"},
            timeout=5,
        ).json()
        if task["status"] in TERMINAL:
            return task_id
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} did not finish in 60 s: {task}")


# --- the tests ----------------------------------------------------------------------


def test_site_installs_a_serving_appliance_that_passes_doctor(installed: Install) -> None:
    run = installed.first_run
    assert _current_release() == installed.builds.base
    assert _installed_version() == installed.builds.base
    assert _readyz(installed.port).json()["status"] == "ready"
    doctor = _appliance("doctor", "--json", check=False)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert report["ok"]
    checks = {c["name"]: c["status"] for c in report["checks"]}
    for name in ("data_dir", "database", "podman", "sandbox_images", "sandbox_limits"):
        assert checks[name] == "ok", report
    if shutil.which("nvidia-smi") is None:  # no GPU here: the GPU roles were skipped
        assert not re.search(r"^(ok|changed): .*\n?", _section(run.output, "nvidia :"), re.M)
        assert not re.search(r"^(ok|changed): ", _section(run.output, "models :"), re.M)
    assert not re.search(r"^(ok|changed): ", _section(run.output, "proxy :"), re.M)


def _section(output: str, role: str) -> str:
    """The result lines of the tasks of one role."""
    lines: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("TASK ["):
            inside = line.startswith(f"TASK [{role}")
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def test_a_second_site_run_changes_nothing(installed: Install) -> None:
    again = _playbook("site.yml", installed.vars_file)
    assert again.succeeded, again.tail
    assert again.changed == 0, f"changed on the second run: {again.changed_tasks()}"
    assert _readyz(installed.port).status_code == 200


def test_upgrade_to_a_newer_build_keeps_the_data(installed: Install, seeded: Seeded) -> None:
    """This install takes its dependencies from the package index this machine's pip is
    configured for (the connected-host path); the others use the wheelhouse."""
    before = _snapshot()
    assert len(before.tasks) >= 2
    builds = installed.builds
    run = _playbook(
        "upgrade.yml",
        installed.vars_file,
        appliance_release=builds.newer,
        appliance_wheel=str(builds.wheel(builds.newer)),
        appliance_pip_source="index",
    )
    assert run.succeeded, run.tail
    assert _current_release() == builds.newer
    assert _installed_version() == builds.newer
    assert (PREFIX / "releases" / builds.base / "bin" / "appliance").is_file()  # kept for later
    assert _readyz(installed.port).json()["status"] == "ready"
    _assert_intact(before, _snapshot())
    assert list((PREFIX / "backups").glob("appliance-backup-*.tar.gz"))


def test_a_failing_upgrade_rolls_back_to_the_release_and_data_before(
    installed: Install, seeded: Seeded
) -> None:
    release, version = _current_release(), _installed_version()
    before = _snapshot()
    assert before.tasks
    builds = installed.builds
    run = _playbook(
        "upgrade.yml",
        installed.vars_file,
        appliance_release=builds.broken,
        appliance_wheel=str(builds.wheel(builds.broken)),
    )
    assert not run.succeeded, run.tail
    assert "rescued=1" in run.output
    assert f"rolled back to {release}" in run.output, run.tail
    assert "forced failure in migration 9999" in run.output
    assert _current_release() == release
    assert _installed_version() == version
    assert not (PREFIX / "releases" / builds.broken).exists()
    assert _readyz(installed.port).json()["status"] == "ready"
    _assert_intact(before, _snapshot())


def test_backup_and_restore_playbooks_round_trip(
    installed: Install, seeded: Seeded, tmp_path: Path
) -> None:
    before = _snapshot()
    backup = _playbook("backup.yml", installed.vars_file, backup_fetch_dir=str(tmp_path))
    assert backup.returncode == 0, backup.tail
    (archive,) = re.findall(r"backup written to (\S+\.tar\.gz)", backup.output)
    assert (tmp_path / "localhost" / Path(archive).name).is_file()  # fetched

    _submit(installed, seeded, "a task made after the backup")
    assert len(_snapshot().tasks) == len(before.tasks) + 1

    restore = _playbook("restore.yml", installed.vars_file, backup_archive=archive)
    assert restore.succeeded, restore.tail
    assert "audit chain intact" in restore.output
    assert _readyz(installed.port).json()["status"] == "ready"
    after = _snapshot()
    assert after.tasks == before.tasks
    assert after.events == before.events
    assert after.audit[: len(before.audit)] == before.audit
    _appliance("audit", "verify")
