"""Dependencies are fetched on the host (wheels only) and installed offline inside."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.deps import (
    npm_packages,
    prepare_npm_cache,
    prepare_wheelhouse,
    python_requirements,
)
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


def test_npm_packages_come_from_the_lockfile(tmp_path: Path) -> None:
    (tmp_path / "package-lock.json").write_text(
        '{"lockfileVersion": 3, "packages": {"": {"name": "app"},'
        ' "node_modules/is-number": {"version": "7.0.0"},'
        ' "node_modules/a/node_modules/@scope/b": {"version": "1.2.3"},'
        ' "node_modules/local": {"link": true}}}'
    )
    assert npm_packages(tmp_path) == ["@scope/b@1.2.3", "is-number@7.0.0"]


@pytest.mark.slow
def test_npm_cache_is_filled_on_the_host_and_installs_offline_in_the_sandbox(
    podman_sandbox: PodmanSandbox, worktree: Path, tmp_path: Path
) -> None:
    (worktree / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}'
    )
    (worktree / "package-lock.json").write_text(
        '{"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,'
        ' "packages": {"": {"name": "app", "version": "1.0.0",'
        ' "dependencies": {"is-number": "7.0.0"}},'
        ' "node_modules/is-number": {"version": "7.0.0",'
        ' "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",'
        ' "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741'
        '+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng=="}}}'
    )
    cache = prepare_npm_cache(worktree, tmp_path / "npm-cache")
    assert cache.packages == ("is-number@7.0.0",)
    node = SandboxPolicy(image="localhost/appliance-sandbox-node:1", memory_mb=512, pids=256)
    with podman_sandbox.open(worktree, node, task_id="npm-on", npm_cache=cache.path) as s:
        installed = s.run("npm ci --ignore-scripts")
        assert installed.exit_code == 0, installed.stderr
        used = s.run(["node", "-e", "console.log(require('is-number')(5))"])
        assert used.stdout == "true\n"
