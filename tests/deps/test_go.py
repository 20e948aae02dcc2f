"""go.mod and a GOPROXY: what is read, version order, the proxy client, plans and rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.deps import BumpPolicy, GoProxy, apply_group, lockfile_command, plan
from appliance.deps.errors import IndexResponseInvalid, IndexUnavailable, PackageNotFound
from appliance.deps.go_versions import escape, is_pseudo, major_of_path, path_for_major
from appliance.deps.manifests import scan_worktree
from appliance.deps.versions import parse_go
from tests.deps.conftest import NOW, IndexServer

GO_MOD = """\
// Service module: keep the toolchain pinned.
module example.com/service

go 1.22

toolchain go1.22.4

require github.com/BurntSushi/toml v1.2.1

require (
\tgithub.com/google/uuid v1.5.0
\t"github.com/jackc/pgx/v4" v4.18.1 // database
\tgolang.org/x/net v0.20.0
\tgolang.org/x/exp v0.0.0-20240506185415-9bf2ced13842
\tgithub.com/gorilla/mux v1.8.0
\tgopkg.in/yaml.v2 v2.4.0
\tgithub.com/broken/line
)

require (
\tgithub.com/stretchr/testify v1.8.4 // indirect
\tgithub.com/pkg/errors v0.9.1 // indirect; kept for the old logger
)

replace github.com/gorilla/mux => ../mux

replace github.com/pkg/errors v0.9.1 => github.com/example/errors v0.9.2

exclude golang.org/x/net v0.21.0

retract [v1.0.0, v1.0.5] // published by mistake
"""


def _repo(root: Path, go_mod: str = GO_MOD, *, go_sum: bool = True) -> Path:
    root.mkdir()
    (root / "go.mod").write_bytes(go_mod.encode())
    if go_sum:
        (root / "go.sum").write_text("github.com/google/uuid v1.5.0 h1:x=\n")
    return root


def test_require_lines_are_read_with_their_version_spans(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "svc")
    scan = scan_worktree(repo)
    found = [(d.group, d.name, d.spec, d.location.line) for d in scan.dependencies]
    assert found == [
        ("require", "github.com/BurntSushi/toml", "v1.2.1", 8),
        ("require", "github.com/google/uuid", "v1.5.0", 11),
        ("require", "github.com/jackc/pgx/v4", "v4.18.1", 12),  # quoted path
        ("require", "golang.org/x/net", "v0.20.0", 13),
        ("require", "golang.org/x/exp", "v0.0.0-20240506185415-9bf2ced13842", 14),
        ("require", "github.com/gorilla/mux", "v1.8.0", 15),
        ("require", "gopkg.in/yaml.v2", "v2.4.0", 16),
        ("indirect", "github.com/stretchr/testify", "v1.8.4", 21),
        ("indirect", "github.com/pkg/errors", "v0.9.1", 22),
    ]
    for dep in scan.dependencies:
        assert GO_MOD[dep.location.start : dep.location.end] == dep.spec
    frozen = {d.name: d.frozen_reason for d in scan.dependencies if d.frozen_reason}
    assert set(frozen) == {"golang.org/x/exp", "github.com/gorilla/mux", "github.com/pkg/errors"}
    assert "pseudo-version" in frozen["golang.org/x/exp"]
    assert "replaced by ../mux" in frozen["github.com/gorilla/mux"]
    assert "replaced by github.com/example/errors v0.9.2" in frozen["github.com/pkg/errors"]
    assert [(n.line, n.text) for n in scan.notes] == [(17, "github.com/broken/line")]


def test_a_replace_of_another_version_does_not_freeze(tmp_path: Path) -> None:
    go_mod = "module m\n\nrequire example.com/a v1.2.0\n\nreplace example.com/a v1.0.0 => ./a\n"
    (dep,) = scan_worktree(_repo(tmp_path / "m", go_mod)).dependencies
    assert dep.frozen_reason is None


@pytest.mark.parametrize(
    ("versions", "ordered"),
    [
        (["v1.10.0", "v1.9.0", "v1.2.3"], ["v1.2.3", "v1.9.0", "v1.10.0"]),
        (
            ["v1.0.0", "v1.0.0-rc.1", "v1.0.0-beta.11", "v1.0.0-beta.2", "v1.0.0-alpha"],
            ["v1.0.0-alpha", "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0"],
        ),
        (
            ["v2.1.0+incompatible", "v2.0.0+incompatible"],
            ["v2.0.0+incompatible", "v2.1.0+incompatible"],
        ),
        (["v0.10.0", "v0.9.9", "v1.0.0"], ["v0.9.9", "v0.10.0", "v1.0.0"]),
    ],
)
def test_go_version_order(versions: list[str], ordered: list[str]) -> None:
    parsed = [parse_go(v) for v in versions]
    assert all(p is not None for p in parsed)
    assert [p.text for p in sorted(p for p in parsed if p is not None)] == ordered


@pytest.mark.parametrize(
    ("text", "valid", "prerelease", "pseudo"),
    [
        ("v1.2.3", True, False, False),
        ("v1.3.0-rc.1", True, True, False),
        ("v0.0.0-20240506185415-9bf2ced13842", True, True, True),
        ("v1.2.4-0.20240506185415-9bf2ced13842", True, True, True),
        ("v1.3.0-rc.1.0.20240506185415-9bf2ced13842", True, True, True),
        ("v2.0.0+incompatible", True, False, False),
        ("1.2.3", False, False, False),  # Go versions start with v
        ("v1.2", False, False, False),  # not canonical
    ],
)
def test_go_version_kinds(text: str, valid: bool, prerelease: bool, pseudo: bool) -> None:
    parsed = parse_go(text)
    assert (parsed is not None) is valid
    assert (parsed is not None and parsed.prerelease) is prerelease
    assert is_pseudo(text) is pseudo


@pytest.mark.parametrize(
    ("path", "major", "next_path"),
    [
        ("github.com/jackc/pgx/v4", 4, "github.com/jackc/pgx/v5"),
        ("github.com/google/uuid", None, "github.com/google/uuid/v2"),
        ("gopkg.in/yaml.v2", 2, "gopkg.in/yaml.v3"),
        ("example.com/v1tools", None, "example.com/v1tools/v2"),
    ],
)
def test_major_versions_live_in_the_module_path(
    path: str, major: int | None, next_path: str
) -> None:
    assert major_of_path(path) == major
    assert path_for_major(path, (major or 1) + 1) == next_path


def test_module_paths_are_case_encoded() -> None:
    assert escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
    assert escape("github.com/Azure/azure-sdk-for-go") == "github.com/!azure/azure-sdk-for-go"


def test_proxy_lists_versions_and_dates_them_on_demand(
    go_proxy: GoProxy, index_server: IndexServer
) -> None:
    info = go_proxy.package("github.com/BurntSushi/toml")
    assert sorted(r.version for r in info.releases) == ["v1.2.1", "v1.3.2", "v1.4.0"]
    assert index_server.requests == [
        "/goproxy/github.com/!burnt!sushi/toml/@v/list"  # case-encoded; no .info asked yet
    ]
    assert all(r.uploaded is None for r in info.releases)
    (newest,) = [r for r in info.releases if r.version == "v1.4.0"]
    uploaded = info.uploaded(newest)
    assert uploaded is not None
    assert (NOW - uploaded).days == 1
    assert index_server.requests[-1] == "/goproxy/github.com/!burnt!sushi/toml/@v/v1.4.0.info"
    assert info.changelog_url == "https://github.com/BurntSushi/toml/releases"


def test_proxy_reports_the_next_major_path(go_proxy: GoProxy) -> None:
    versions = {r.version for r in go_proxy.package("github.com/jackc/pgx/v4").releases}
    assert versions == {"v4.18.1", "v4.18.3", "v5.5.5", "v5.6.0"}  # v5 from .../pgx/v5


@pytest.mark.parametrize("status", [404, 410])
def test_missing_module_is_not_found(index_server: IndexServer, status: int) -> None:
    url = f"{index_server.url}/status/{status}/goproxy"
    with GoProxy(url) as proxy, pytest.raises(PackageNotFound) as caught:
        proxy.package("example.com/gone")
    assert caught.value.package == "example.com/gone"
    assert f"/status/{status}/goproxy/example.com/gone/@v/list ({status})" in caught.value.message


def test_proxy_server_error_names_the_url_and_setting(index_server: IndexServer) -> None:
    with (
        GoProxy(f"{index_server.url}/status/500/goproxy") as proxy,
        pytest.raises(IndexUnavailable, match=r"/@v/list answered HTTP 500; .*deps.go_proxy_url"),
    ):
        proxy.package("github.com/google/uuid")


def test_a_page_that_is_not_a_version_list_is_refused(index_server: IndexServer) -> None:
    page = index_server.root / "goproxy" / "example.com" / "web" / "@v"
    page.mkdir(parents=True)
    (page / "list").write_text("<html><body>Athens</body></html>\n")
    with (
        GoProxy(f"{index_server.url}/goproxy") as proxy,
        pytest.raises(
            IndexResponseInvalid,
            match=r"returned '<html><body>Athens</body></html>' in a version list",
        ),
    ):
        proxy.package("example.com/web")


def test_plan_bumps_within_the_major_and_holds_back_new_paths(
    tmp_path: Path, go_proxy: GoProxy, index_server: IndexServer
) -> None:
    repo = _repo(tmp_path / "svc")
    result = plan(scan_worktree(repo).dependencies, go_proxy, BumpPolicy(), NOW)
    assert [(g.key, g.title) for g in result.groups] == [
        ("go-non-major", "Bump 4 non-major Go dependencies"),
        ("go-golang.org-x-net-major", "Bump golang.org/x/net from v0.20.0 to v0.26.0"),
    ]
    non_major = result.groups[0]
    assert {b.dep.name: b.to_version for b in non_major.bumps} == {
        "github.com/BurntSushi/toml": "v1.3.2",  # v1.4.0 is a day old
        "github.com/google/uuid": "v1.6.0",  # v1.7.0-rc.1 is a pre-release
        "github.com/jackc/pgx/v4": "v4.18.3",  # v5 is another module path
        "github.com/stretchr/testify": "v1.9.0",  # indirect, bumped too
    }
    body = non_major.body
    assert "- github.com/BurntSushi/toml v1.4.0: released 1.0 days ago" in body
    assert (
        "- github.com/jackc/pgx/v4 v5.6.0: a new major version of a Go module is a new module "
        "path (github.com/jackc/pgx/v5)" in body
    )
    assert "| github.com/stretchr/testify | v1.8.4 | v1.9.0 | minor |" in body
    assert "`go.mod` (indirect)" in body
    skipped = {s.dep.name: (s.kind, s.reason) for s in result.skipped if s.dep}
    assert skipped["gopkg.in/yaml.v2"][0] == "update_type"
    assert "new module path (gopkg.in/yaml.v3)" in skipped["gopkg.in/yaml.v2"][1]
    assert {name for name, (kind, _) in skipped.items() if kind == "frozen"} == {
        "golang.org/x/exp",
        "github.com/gorilla/mux",
        "github.com/pkg/errors",
    }
    # dates are asked only for the versions the planner looked at
    infos = [r for r in index_server.requests if r.endswith(".info")]
    assert "/goproxy/github.com/jackc/pgx/v4/@v/v4.18.1.info" not in infos
    assert "/goproxy/github.com/!burnt!sushi/toml/@v/v1.2.1.info" not in infos


def test_a_major_only_policy_never_changes_a_module_path(tmp_path: Path, go_proxy: GoProxy) -> None:
    repo = _repo(tmp_path / "svc", "module m\n\nrequire github.com/jackc/pgx/v4 v4.18.3\n")
    policy = BumpPolicy(update_types=frozenset({"major"}))
    result = plan(scan_worktree(repo).dependencies, go_proxy, policy, NOW)
    assert result.groups == []
    (skip,) = result.skipped
    assert skip.kind == "update_type"
    assert skip.reason.startswith("v5.6.0: a new major version of a Go module")


def test_apply_rewrites_only_the_version_tokens(tmp_path: Path, go_proxy: GoProxy) -> None:
    repo = _repo(tmp_path / "svc", GO_MOD.replace("\n", "\r\n"))
    result = plan(scan_worktree(repo).dependencies, go_proxy, BumpPolicy(), NOW)
    non_major = result.groups[0]
    assert apply_group(repo, non_major) == [repo / "go.mod"]
    expected = (
        GO_MOD.replace("toml v1.2.1", "toml v1.3.2")
        .replace("uuid v1.5.0", "uuid v1.6.0")
        .replace('pgx/v4" v4.18.1', 'pgx/v4" v4.18.3')
        .replace("testify v1.8.4", "testify v1.9.0")
        .replace("\n", "\r\n")
    )
    assert (repo / "go.mod").read_bytes() == expected.encode()
    assert lockfile_command(repo, "go") == ["go", "mod", "tidy"]


def test_no_go_sum_no_lockfile_command(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "svc", go_sum=False)
    assert lockfile_command(repo, "go") is None


def test_vendor_and_testdata_go_mods_are_not_read(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "svc", "module m\n\nrequire example.com/a v1.0.0\n")
    for skipped in ("vendor/example.com/b", "testdata/mod"):
        (repo / skipped).mkdir(parents=True)
        (repo / skipped / "go.mod").write_text("module x\n\nrequire example.com/c v1.0.0\n")
    assert [d.name for d in scan_worktree(repo).dependencies] == ["example.com/a"]
