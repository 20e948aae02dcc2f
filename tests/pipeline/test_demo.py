"""The bundled demo repository (``appliance repo demo``; ``make run`` registers it): a
plain-git repository with one failing test, registered once, that a task can fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.config import Settings
from appliance.demo import DEMO_NAME, register_demo
from appliance.store.db import Database
from tests.gitrepos import plain_git


def test_register_demo_creates_the_repository_once_with_its_failing_test(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    repo, created = register_demo(settings, db, actor="local:admin")
    assert created
    assert repo.name == DEMO_NAME
    assert repo.default_branch == "main"
    again, created_again = register_demo(settings, db, actor="local:admin")
    assert (again.id, created_again) == (repo.id, False)

    checkout = tmp_path / "demo"
    plain_git(tmp_path, "clone", "-q", repo.clone_url, str(checkout))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED tests/test_stats.py::test_average" in run.stdout
    assert "1 failed, 1 passed" in run.stdout
