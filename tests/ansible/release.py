"""Building this tree the way a release is built: the appliance wheel and a wheelhouse
with every dependency (the air-gapped install path), shared by the playbook run and the
Containerfile build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tests.servers import REPO_ROOT

BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    """This process's environment without the APPLIANCE_* the test fixtures set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "ANSIBLE_"))}
    clean.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    clean.update(extra)
    return clean


def pip(*args: str, cwd: Path = REPO_ROOT) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=540,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout}{result.stderr}"


def copy_sources(dest: Path) -> None:
    """The files the wheel is built from (the packages, README and pyproject.toml)."""
    pyproject = REPO_ROOT / "pyproject.toml"
    meta = tomllib.loads(pyproject.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        shutil.copytree(REPO_ROOT / package, dest / package, ignore=ignore)
    readme = meta["project"].get("readme")
    if isinstance(readme, str):
        shutil.copy2(REPO_ROOT / readme, dest / readme)
    shutil.copy2(pyproject, dest / "pyproject.toml")


@dataclass(frozen=True)
class Release:
    wheel: Path  # the appliance, built from this tree
    wheelhouse: Path  # every dependency as a wheel, the appliance's own included


def build_release(work: Path) -> Release:
    dist = work / "dist"
    pip("wheel", "--quiet", "--no-deps", "-w", str(dist), ".")
    (wheel,) = dist.glob("coding_agent_appliance-*.whl")
    wheelhouse = work / "wheelhouse"
    # torch pinned first, as the Makefile does (plain torch pulls CUDA); hatchling for
    # the Containerfile, which builds the wheel from source inside the image.
    pip("wheel", "--quiet", "-w", str(wheelhouse), "torch==2.13.0", "hatchling", str(wheel))
    return Release(wheel, wheelhouse)
