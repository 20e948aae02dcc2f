"""The Ansible playbooks and roles pass ansible-lint (production profile) and
ansible-playbook's syntax check. The tools come with the dev extra; a missing one
is a failure, not a skip."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO_ROOT

ANSIBLE_DIR = REPO_ROOT / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOKS = ("site.yml", "upgrade.yml", "backup.yml", "restore.yml")

pytestmark = pytest.mark.slow


def _tool(name: str) -> Path:
    path = BIN / name
    assert path.is_file(), (
        f"{name} is not installed in {BIN}: install the dev extra "
        "(`.venv/bin/pip install -e '.[dev]'`, which brings ansible-core and ansible-lint)"
    )
    return path


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(a) for a in argv],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )


def test_every_playbook_passes_the_syntax_check() -> None:
    result = _run(_tool("ansible-playbook"), "--syntax-check", *PLAYBOOKS)
    assert result.returncode == 0, result.stdout + result.stderr
    for playbook in PLAYBOOKS:
        assert f"playbook: {playbook}" in result.stdout


def test_ansible_lint_production_profile_is_clean() -> None:
    result = _run(_tool("ansible-lint"), "--profile", "production", "--offline")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_start_stop_supervisor_is_idempotent(tmp_path: Path) -> None:
    """The start-stop-daemon script the appliance role installs where systemd is not
    PID 1: start twice runs one process; stop twice is quiet; status tells."""
    template = ANSIBLE_DIR / "roles/appliance/templates/appliance-service.sh.j2"
    fake_bin = tmp_path / "appliance"
    fake_bin.write_text("#!/bin/sh\nexec sleep 60\n")
    fake_bin.chmod(0o755)
    values = {
        "{{ ansible_managed }}": "test",
        "{{ appliance_pidfile }}": str(tmp_path / "appliance.pid"),
        "{{ appliance_config_file }}": str(tmp_path / "config.toml"),
        "{{ appliance_service_user }}": _current_user(),
        "{{ appliance_data_dir }}": str(tmp_path),
        "{{ appliance_log_file }}": str(tmp_path / "appliance.log"),
        "{{ appliance_bin }}": str(fake_bin),
        "{{ appliance_stop_timeout }}": "30",
    }
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    assert "{{" not in text
    script = tmp_path / "appliance-service"
    script.write_text(text)
    script.chmod(0o755)

    def ctl(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), action], capture_output=True, text=True, check=False, timeout=60
        )

    try:
        assert ctl("status").returncode != 0
        assert ctl("start").stdout.strip() == "started"
        pid = (tmp_path / "appliance.pid").read_text().strip()
        assert ctl("start").stdout.strip() == "already running"
        assert (tmp_path / "appliance.pid").read_text().strip() == pid
        assert ctl("status").returncode == 0
    finally:
        stopped = ctl("stop")
    assert stopped.stdout.strip() == "stopped"
    assert not Path(f"/proc/{pid}").exists()
    assert ctl("stop").stdout.strip() == "not running"
    assert ctl("status").returncode != 0


def _current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name
