"""Dependencies are fetched on the host (wheels only) and installed offline inside."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.deps import prepare_wheelhouse, python_requirements
from sandbox.errors import SandboxError
from sandbox.podman import PodmanSandbox
from sandbox.policy import SandboxPolicy


def test_requirements_are_read_from_requirements_files_and_pyproject(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "six==1.16.0  # pinned\n-r other.txt\n-e .\nhttps://evil.example/x.whl\n\n"
    )
    (tmp_path / "requirements-dev.txt").write_text("pytest>=7\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["attrs>=22"]\n'
        '[project.optional-dependencies]\ndocs = ["sphinx"]\n'
    )
    assert python_requirements(tmp_path) == ["attrs>=22", "pytest>=7", "six==1.16.0", "sphinx"]


def test_broken_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(SandboxError, match="not valid TOML"):
        python_requirements(tmp_path)


@pytest.mark.slow
def test_wheelhouse_is_fetched_once_and_installs_offline_in_the_sandbox(
    podman_sandbox: PodmanSandbox, worktree: Path, tmp_path: Path, policy: SandboxPolicy
) -> None:
    (worktree / "requirements.txt").write_text("six==1.16.0\n")
    cache = tmp_path / "cache" / "wheelhouse"
    first = prepare_wheelhouse(worktree, cache)
    assert first.downloaded == 1
    assert [p.name for p in cache.glob("six-*.whl")] == ["six-1.16.0-py2.py3-none-any.whl"]
    assert prepare_wheelhouse(worktree, cache).downloaded == 0  # reused

    with podman_sandbox.open(worktree, policy, task_id="deps-on", wheelhouse=cache) as s:
        installed = s.run("pip install --target /tmp/site -r requirements.txt")
        assert installed.exit_code == 0, installed.stderr
        assert (
            s.run(["python3", "-c", "import six; print(six.__version__)"], cwd="/tmp/site").stdout
            == "1.16.0\n"
        )
        assert s.run("touch /deps/wheelhouse/evil").exit_code != 0  # mounted read-only

    with podman_sandbox.open(worktree, policy, task_id="deps-off") as s:
        offline = s.run("pip install --target /tmp/site six==1.16.0")
    assert offline.exit_code != 0  # no wheelhouse, no network: nothing to install from


@pytest.mark.slow
def test_package_missing_from_the_mirror_is_a_clear_error(worktree: Path, tmp_path: Path) -> None:
    (worktree / "requirements.txt").write_text("no-such-package-appliance-test==9.9.9\n")
    with pytest.raises(SandboxError, match="could not fetch the dependencies"):
        prepare_wheelhouse(worktree, tmp_path / "wh")
