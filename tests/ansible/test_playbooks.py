"""The Ansible playbooks and roles pass ansible-lint (production profile) and
ansible-playbook's syntax check. The tools come with the dev extra; a missing one
is a failure, not a skip."""

from __future__ import annotations

import json
import os
import pwd
import shutil
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


def _render(tmp_path: Path, template: str, dest: str, **overrides: str) -> str:
    """Render one of the appliance role's templates with Ansible itself (the role's
    defaults, plus ``overrides``) and return the text."""
    defaults = ANSIBLE_DIR / "roles/appliance/defaults/main.yml"
    playbook = tmp_path / "render.yml"
    target = tmp_path / dest
    playbook.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        f"  vars_files: [{defaults}]\n"
        "  tasks:\n"
        "    - name: Render\n"
        "      ansible.builtin.template:\n"
        f"        src: {ANSIBLE_DIR / 'roles/appliance/templates' / template}\n"
        f"        dest: {target}\n"
        "        mode: '0644'\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**overrides, "ansible_python_interpreter": sys.executable}))
    result = _run(_tool("ansible-playbook"), "-i", "localhost,", "-e", f"@{extra}", str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    return target.read_text()


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit the role installs where systemd is PID 1, checked by systemd itself (this
    test machine has no systemd as PID 1, so the service path is proven this far)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: `apt-get install systemd` (make test does)"
    text = _render(
        tmp_path,
        "appliance.service.j2",
        "appliance.service",
        appliance_bin=str(BIN / "appliance"),
        appliance_data_dir=str(tmp_path),
    )
    assert f"ExecStart={BIN / 'appliance'} serve" in text
    assert "Environment=APPLIANCE_CONFIG=/etc/appliance/config.toml" in text
    unit = tmp_path / "appliance.service"
    verified = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Unknown keys are only warnings to systemd: any output at all is a failure here.
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""

    broken = unit.read_text().replace("RestartSec=", "RestartSecs=")
    unit.write_text(broken)
    caught = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert "Unknown key 'RestartSecs'" in caught.stderr  # the check can fail
