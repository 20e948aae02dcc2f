"""The dependency-bump engine of the nightly maintenance: find bumps, apply them to files.

Pipeline (pure engine; scheduling, PRs and repairs live elsewhere)::

    scan_worktree(worktree)            manifests → Dependency records with exact spans
    plan(deps, indexes, policy, now)   index versions + BumpPolicy → BumpGroups (+ skips)
    apply_group(worktree, group)       span edits, byte-exact elsewhere
    lockfile_command(worktree, eco)    what the sandbox runs to refresh the lockfile
    check(worktree, policy, indexes)   the dry-run report behind ``appliance deps check``

Modules: ``model`` (records), ``requirements_txt`` / ``pyproject`` / ``npm_manifest`` /
``go_mod`` / ``maven_pom`` (readers; ``toml_spans``, ``json_spans`` and ``xml_spans``
locate text), ``pep440`` / ``semver`` / ``npm_ranges`` / ``go_versions`` /
``maven_versions`` / ``versions`` (version rules), ``index`` / ``pypi`` /
``npm_registry`` / ``goproxy`` / ``maven_repository`` (mirror clients), ``policy``,
``plan``, ``render``, ``apply``, ``check``, ``errors``.
"""

from appliance.deps.apply import apply_group, lockfile_command
from appliance.deps.check import check
from appliance.deps.goproxy import GoProxy
from appliance.deps.index import PackageIndex, PackageInfo, Release
from appliance.deps.manifests import scan_worktree
from appliance.deps.maven_repository import MavenRepository
from appliance.deps.model import Dependency, Location, Scan, ScanNote
from appliance.deps.npm_registry import NpmRegistry
from appliance.deps.plan import Bump, BumpGroup, Plan, Skip, plan, plan_bumps
from appliance.deps.policy import BumpPolicy
from appliance.deps.pypi import PythonIndex

__all__ = [
    "Bump",
    "BumpGroup",
    "BumpPolicy",
    "Dependency",
    "GoProxy",
    "Location",
    "MavenRepository",
    "NpmRegistry",
    "PackageIndex",
    "PackageInfo",
    "Plan",
    "PythonIndex",
    "Release",
    "Scan",
    "ScanNote",
    "Skip",
    "apply_group",
    "check",
    "lockfile_command",
    "plan",
    "plan_bumps",
    "scan_worktree",
]
