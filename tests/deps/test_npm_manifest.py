"""package.json with package-lock.json: what is read, and byte-exact rewrites."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.deps import BumpPolicy, NpmRegistry, apply_group, lockfile_command, plan
from appliance.deps.manifests import scan_worktree
from tests.deps.conftest import NOW

PACKAGE_JSON = """{
  "name": "web",
  "version": "1.0.0",
  "dependencies": {
    "react": "^18.2.0",
    "lodash": "~4.17.20",
    "local-lib": "file:../lib",
    "left-pad": "1.1.0",
    "@types/node": ">=20.1.0 <21"
  },
  "devDependencies": {
    "ws-thing": "workspace:*",
    "from-git": "github:user/repo"
  },
  "peerDependencies": {
    "react": "^18.0.0"
  }
}"""

LOCK = {
    "name": "web",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "web"},
        "node_modules/react": {"version": "18.2.0"},
        "node_modules/lodash": {"version": "4.17.21"},
        "node_modules/left-pad": {"version": "1.1.0"},
        "node_modules/@types/node": {"version": "20.1.0"},
        "node_modules/react/node_modules/loose-envify": {"version": "1.4.0"},
    },
}


def _repo(root: Path) -> Path:
    root.mkdir()
    (root / "package.json").write_text(PACKAGE_JSON)
    (root / "package-lock.json").write_text(json.dumps(LOCK, indent=2))
    return root


def test_sections_lock_versions_and_ignored_specs(tmp_path: Path) -> None:
    scan = scan_worktree(_repo(tmp_path / "web"))
    deps = {(d.group, d.name): d for d in scan.dependencies}
    assert sorted(deps) == [
        ("dependencies", "@types/node"),
        ("dependencies", "left-pad"),
        ("dependencies", "lodash"),
        ("dependencies", "react"),
        ("peerDependencies", "react"),
    ]
    assert deps[("dependencies", "lodash")].current == "4.17.21"  # from the lockfile
    assert deps[("dependencies", "lodash")].spec == "~4.17.20"
    assert deps[("peerDependencies", "react")].frozen_reason is not None
    ignored = {n.text for n in scan.notes}
    assert ignored == {
        '"local-lib": "file:../lib"',
        '"ws-thing": "workspace:*"',
        '"from-git": "github:user/repo"',
    }


def test_bump_keeps_the_json_formatting(tmp_path: Path, npm_registry: NpmRegistry) -> None:
    repo = _repo(tmp_path / "web")
    policy = BumpPolicy(ignore=("@types/node@22",))
    result = plan(scan_worktree(repo).dependencies, npm_registry, policy, NOW)
    assert [g.key for g in result.groups] == ["npm-non-major"]
    group = result.groups[0]
    assert group.title == "Bump 3 non-major npm dependencies"
    assert {b.dep.name: b.to_version for b in group.bumps} == {
        "react": "18.3.1",  # 18.3.0 is deprecated, 19.0.0-rc.1 a pre-release
        "left-pad": "1.3.0",
        "@types/node": "20.14.9",  # 22.0.0 is ignored by @types/node@22
    }
    assert apply_group(repo, group) == [repo / "package.json"]
    expected = (
        PACKAGE_JSON.replace('"^18.2.0"', '"^18.3.1"')
        .replace('"1.1.0"', '"1.3.0"')
        .replace('">=20.1.0 <21"', '">=20.14.9 <21"')
    )
    assert (repo / "package.json").read_text() == expected
    skipped = {s.dep.name: s.kind for s in result.skipped if s.dep}
    assert skipped == {"lodash": "up_to_date", "react": "frozen"}
    assert lockfile_command(repo, "npm") == [
        "npm",
        "install",
        "--package-lock-only",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
    ]


def test_widen_changes_only_the_lockfile_when_the_range_admits(
    tmp_path: Path, npm_registry: NpmRegistry
) -> None:
    repo = _repo(tmp_path / "web")
    policy = BumpPolicy(range_strategy="widen")
    result = plan(scan_worktree(repo).dependencies, npm_registry, policy, NOW)
    bumps = {b.dep.name: b for g in result.groups for b in g.bumps}
    assert bumps["react"].lock_only  # ^18.2.0 admits 18.3.1; the lock says 18.2.0
    assert bumps["@types/node"].new_spec == ">=20.1.0 <23"
    assert bumps["left-pad"].new_spec == "1.3.0"  # an exact version can only be replaced
    for group in result.groups:
        apply_group(repo, group)
    text = (repo / "package.json").read_text()
    assert '"react": "^18.2.0"' in text
    command = lockfile_command(repo, "npm", update=["react"])
    assert command is not None
    assert command[:2] == ["npm", "update"]
    assert command[-1] == "react"
