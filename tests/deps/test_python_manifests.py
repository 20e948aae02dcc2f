"""requirements*.txt and pyproject.toml: what is read, and byte-exact rewrites."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from appliance.deps import BumpPolicy, PythonIndex, apply_group, plan, scan_worktree
from appliance.deps.errors import ManifestError, RewriteConflict
from appliance.deps.plan import BumpGroup
from tests.deps.conftest import NOW

REQUIREMENTS = """\
# Runtime dependencies
--index-url https://mirror.example/simple
-r requirements-base.txt
-r ../outside.txt
requests[socks]>=2.31,<3 ; python_version >= "3.8"  # HTTP client
flask==2.3.3
attrs ~= 23.1
-e ./libs/local
git+https://example.com/x.git#egg=x
./wheels/thing-1.0-py3-none-any.whl
httpx==0.26.0 --hash=sha256:0000
"""

PYPROJECT = """\
[build-system]
requires = ["hatchling"]

[project]
name = "demo"
version = "1.0"
# runtime
dependencies = [
    "requests>=2.31.0",  # keep me
    'flask (>=2.3,<3)',
    "attrs",
    "httpx[http2]>=0.26; python_version>='3.9'",
]

[project.optional-dependencies]
dev = ["pytest>=7.4", "pydantic-core==2.18.0"]
"docs" = [
  "mkdocs @ https://example.com/mkdocs.zip",
]

[dependency-groups]
test = ["pytest~=7.4", {include-group = "lint"}]
lint = []

[tool.other]
dependencies = ["requests==1.0"]  # not a manifest section
"""


def _repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_requirements_lines_are_classified(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path / "repo",
        {"requirements.txt": REQUIREMENTS, "requirements-base.txt": "pytest==7.4.4\r\n"},
    )
    scan = scan_worktree(repo)
    deps = {d.name: d for d in scan.dependencies}
    assert sorted(deps) == ["attrs", "flask", "httpx", "pytest", "requests"]
    assert deps["requests"].spec == ">=2.31,<3"
    assert deps["requests"].current == "2.31"
    assert deps["flask"].current == "2.3.3"
    assert deps["attrs"].spec == "~= 23.1"
    assert deps["pytest"].group == "requirements-base"
    assert deps["pytest"].location.line == 1
    assert deps["httpx"].frozen_reason is not None
    assert "hash" in deps["httpx"].frozen_reason
    reasons = {n.text: n.reason for n in scan.notes}
    assert "outside the repository" in reasons["-r ../outside.txt"]
    assert "followed" in reasons["-r requirements-base.txt"]
    assert "editable" in reasons["-e ./libs/local"]
    assert "URL or local path" in reasons["git+https://example.com/x.git#egg=x"]
    assert "URL or local path" in reasons["./wheels/thing-1.0-py3-none-any.whl"]
    assert "option" in reasons["--index-url https://mirror.example/simple"]


def test_requirements_rewrite_touches_only_the_specifiers(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    repo = _repo(
        tmp_path / "repo",
        {"requirements.txt": REQUIREMENTS, "requirements-base.txt": "pytest==7.4.4\r\n"},
    )
    result = plan(scan_worktree(repo).dependencies, python_index, BumpPolicy(), NOW)
    groups = {g.key: g for g in result.groups}
    assert sorted(groups) == ["python-flask-major", "python-non-major", "python-pytest-major"]

    work = _copy(repo, tmp_path / "non-major")
    changed = apply_group(work, groups["python-non-major"])
    assert changed == [work / "requirements.txt"]
    expected = REQUIREMENTS.replace(">=2.31,<3 ;", ">=2.32,<3 ;").replace("~= 23.1", "~= 23.2")
    assert (work / "requirements.txt").read_text() == expected

    work = _copy(repo, tmp_path / "pytest")
    apply_group(work, groups["python-pytest-major"])
    assert (work / "requirements-base.txt").read_bytes() == b"pytest==8.2.2\r\n"  # CRLF kept
    assert (work / "requirements.txt").read_text() == REQUIREMENTS


def test_pyproject_groups_are_read(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo", {"pyproject.toml": PYPROJECT})
    scan = scan_worktree(repo)
    found = [(d.group, d.name, d.spec) for d in scan.dependencies]
    assert found == [
        ("dependencies", "requests", ">=2.31.0"),
        ("dependencies", "flask", ">=2.3,<3"),
        ("dependencies", "attrs", ""),
        ("dependencies", "httpx", ">=0.26"),
        ("optional:dev", "pytest", ">=7.4"),
        ("optional:dev", "pydantic-core", "==2.18.0"),
        ("group:test", "pytest", "~=7.4"),
    ]
    reasons = " | ".join(n.reason for n in scan.notes)
    assert "URL" in reasons
    assert "include-group" in reasons


def test_pyproject_rewrite_is_byte_exact_elsewhere(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    repo = _repo(tmp_path / "repo", {"pyproject.toml": PYPROJECT})
    result = plan(scan_worktree(repo).dependencies, python_index, BumpPolicy(), NOW)
    every = tuple(b for g in result.groups for b in g.bumps)
    merged: BumpGroup = dataclasses.replace(result.groups[0], bumps=every)
    apply_group(repo, merged)
    expected = (
        PYPROJECT.replace('"requests>=2.31.0"', '"requests>=2.32.3"')
        .replace("'flask (>=2.3,<3)'", "'flask (>=3.0,<4)'")
        .replace("[http2]>=0.26;", "[http2]>=0.27;")
        .replace(
            'dev = ["pytest>=7.4", "pydantic-core==2.18.0"]',
            'dev = ["pytest>=8.2", "pydantic-core==2.20.1"]',
        )
        .replace('"pytest~=7.4"', '"pytest~=8.2"')
    )
    assert (repo / "pyproject.toml").read_text() == expected
    skipped = {s.dep.name: s.kind for s in result.skipped if s.dep}
    assert skipped["attrs"] == "no_version"


def test_a_file_changed_after_the_scan_is_not_overwritten(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    repo = _repo(tmp_path / "repo", {"requirements.txt": "flask==2.3.3\n"})
    groups = plan(scan_worktree(repo).dependencies, python_index, BumpPolicy(), NOW).groups
    (repo / "requirements.txt").write_text("flask==2.3.2\n")
    with pytest.raises(RewriteConflict, match="changed since it was scanned"):
        apply_group(repo, groups[0])
    assert (repo / "requirements.txt").read_text() == "flask==2.3.2\n"


def test_invalid_pyproject_names_the_file(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo", {"sub/pyproject.toml": "[project\n"})
    with pytest.raises(ManifestError, match=r"sub/pyproject.toml is not valid TOML"):
        scan_worktree(repo)
