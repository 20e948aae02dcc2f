"""The bundled demo repository: a tiny Python package with one failing test, registered by
``appliance demo`` (``make run`` does it) so a new user can submit a task at once and
watch every phase, with the CPU model or a configured endpoint.

The files live in ``calc.json``; they are committed into a bare repository under
``<data dir>/demo/calc.git`` (plain git, so publishing pushes there and review happens in
the appliance).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from sqlmodel import select

from appliance.config import Settings
from appliance.store import repositories as repo_store
from appliance.store.db import Database
from appliance.store.models import Repository, RepositoryCreate

DEMO_NAME = "demo/calc"
DEMO_REQUEST = "average([1, 2, 3, 4]) should be 2.5 but returns 3.33; fix average()."


def demo_files() -> dict[str, str]:
    data: dict[str, str] = json.loads(
        resources.files(__package__).joinpath("calc.json").read_text(encoding="utf-8")
    )
    return data


def _git(*args: str, cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Appliance demo",
        "GIT_AUTHOR_EMAIL": "demo@localhost",
        "GIT_COMMITTER_NAME": "Appliance demo",
        "GIT_COMMITTER_EMAIL": "demo@localhost",
    }
    subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )


def make_demo_remote(data_dir: Path) -> Path:
    """The demo's bare repository (made once)."""
    bare = data_dir / "demo" / "calc.git"
    if (bare / "HEAD").is_file():
        return bare
    bare.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        work = Path(tmp)
        for path, text in demo_files().items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        _git("init", "-q", "-b", "main", cwd=work)
        _git("add", "-A", cwd=work)
        _git("commit", "-q", "-m", "calc: statistics helpers (with a bug)", cwd=work)
        _git("clone", "-q", "--bare", str(work), str(bare), cwd=work)
    return bare


def register_demo(settings: Settings, db: Database, *, actor: str) -> tuple[Repository, bool]:
    """Register the demo repository unless it is; (repository, created now?)."""
    bare = make_demo_remote(settings.data_dir)
    with db.write() as session:
        found = session.exec(select(Repository).where(Repository.name == DEMO_NAME)).first()
        if found is not None:
            return found, False
        repo = repo_store.create_repository(
            session,
            repo_in=RepositoryCreate(
                name=DEMO_NAME,
                clone_url=f"file://{bare}",
                default_branch="main",
                settings={"demo": True},
            ),
            actor=actor,
        )
        return repo, True
