"""What the dependency job and ``appliance deps check`` share: a read-only copy of a
branch, the configured package indexes, and a repository's bump policy.

:func:`exported_tree` unpacks ``git archive`` of a commit into a temporary directory
(tar's ``data`` filter: no links out, no devices), so scanning never touches the
mirror or creates a branch.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pydantic import ValidationError

from appliance.config import Settings
from appliance.deps import (
    BumpPolicy,
    GoProxy,
    MavenRepository,
    NpmRegistry,
    PackageIndex,
    PythonIndex,
)
from appliance.deps.model import Ecosystem
from appliance.errors import InvalidInput
from appliance.repos.git import CHECKOUT_TIMEOUT
from appliance.repos.mirror import GitRepo
from appliance.store.models import Repository
from appliance.util.tarsafe import extract_all


@contextmanager
def exported_tree(mirror: GitRepo, ref: str) -> Iterator[Path]:
    commit = mirror.resolve(ref)
    with tempfile.TemporaryDirectory(prefix="appliance-tree-") as scratch:
        data = mirror.git("archive", "--format=tar", commit, timeout=CHECKOUT_TIMEOUT).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            extract_all(tar, Path(scratch))
        yield Path(scratch)


@contextmanager
def open_indexes(settings: Settings) -> Iterator[dict[Ecosystem, PackageIndex]]:
    """The package indexes configured under ``deps``; none configured: an empty dict
    (every dependency is then reported as "no package index configured")."""
    cfg = settings.deps
    indexes: dict[Ecosystem, PackageIndex] = {}
    with ExitStack() as stack:
        if cfg.python_index_url or cfg.python_json_url:
            python = PythonIndex(cfg.python_index_url or None, json_url=cfg.python_json_url or None)
            stack.callback(python.close)
            indexes["python"] = python
        if cfg.npm_registry_url:
            npm = NpmRegistry(cfg.npm_registry_url)
            stack.callback(npm.close)
            indexes["npm"] = npm
        if cfg.go_proxy_url:
            go = GoProxy(cfg.go_proxy_url)
            stack.callback(go.close)
            indexes["go"] = go
        if cfg.maven_repository_url:
            maven = MavenRepository(cfg.maven_repository_url)
            stack.callback(maven.close)
            indexes["maven"] = maven
        yield indexes


def policy_of(repo: Repository) -> BumpPolicy:
    """The repository's ``settings["deps_policy"]`` as a :class:`BumpPolicy`."""
    try:
        return BumpPolicy.model_validate(repo.settings.get("deps_policy") or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(
            f"settings.deps_policy of repository {repo.name!r} is invalid ({problems}); "
            "fix it with PATCH /api/v1/repositories/{id}",
            field="settings.deps_policy",
        ) from exc


def argv_for_tests(repo: Repository, settings: Settings) -> list[str] | None:
    """The command that runs the repository's tests: ``settings["test_command"]`` (a
    list, or a string split like a shell would), else ``deps.test_command``."""
    import shlex

    value = repo.settings.get("test_command") or settings.deps.test_command
    if not value:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value))
