"""Bare mirrors: clone then fetch, and the RepoReader over them (real git, local remotes)."""

from __future__ import annotations

import base64
import functools
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import InvalidInput, RepoError
from appliance.index.types import Change, RepoReader, TreeEntry
from appliance.repos.mirror import GitRepo, Mirrors
from tests.gitrepos import Upstream, make_upstream, plain_git

TOKEN = "glpat-s3cr3t-T0KEN-value"


def test_first_ensure_clones_a_bare_mirror_and_later_ones_fetch(
    mirrors: Mirrors, upstream: Upstream
) -> None:
    repo = mirrors.ensure("demo", upstream.url)
    assert repo.path == mirrors.path("demo") == mirrors.root / "demo.git"
    assert plain_git(repo.path, "rev-parse", "--is-bare-repository") == "true"
    assert repo.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")
    assert not (repo.path / "modules").exists()
    assert list(repo.path.glob("hooks/*")) == []  # no sample hooks copied in
    config = (repo.path / "config").read_text()
    assert "fetch = +refs/*:refs/*" in config
    assert "mirror = true" not in config  # a stray `git push origin` must not mirror back

    newer = upstream.commit({"CHANGELOG.md": "## 1.1\n"}, "changelog")
    plain_git(upstream.work, "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    plain_git(upstream.work, "push", "--quiet", "origin", "HEAD:refs/tags/v1.1")
    again = mirrors.ensure("demo", upstream.url)
    assert again.path == repo.path
    assert repo.resolve("main") == repo.resolve("feature") == repo.resolve("v1.1") == newer

    plain_git(upstream.work, "push", "--quiet", "origin", ":refs/heads/feature")
    mirrors.ensure("demo", upstream.url)
    assert not repo.has_branch("feature")  # pruned like the remote


def test_a_plain_local_path_works_as_well_as_a_file_url(
    mirrors: Mirrors, upstream: Upstream
) -> None:
    repo = mirrors.ensure("by-path", str(upstream.bare))
    assert repo.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")
    config = (repo.path / "config").read_text()
    assert f"url = {upstream.bare}\n" in config
    mirrors.ensure("by-path", upstream.url)  # the URL changed: the mirror follows it
    assert f"url = {upstream.url}\n" in (repo.path / "config").read_text()


def test_tree_lists_paths_with_modes_shas_and_sizes(mirror: GitRepo, upstream: Upstream) -> None:
    entries = {e.path: e for e in mirror.tree(mirror.resolve("main"))}
    assert sorted(entries) == [
        "README.md",
        "assets/logo.bin",
        "docs/guide.txt",
        "etc-link",
        "run.sh",
        "src/app.py",
        "src/util.py",
    ]
    link = entries["etc-link"]
    assert (link.mode, link.size) == ("120000", 4)
    assert mirror.read_blobs([link.blob_sha]) == {link.blob_sha: b"/etc"}
    assert entries["run.sh"].mode == "100755"
    logo = entries["assets/logo.bin"]
    assert logo == TreeEntry(
        "assets/logo.bin",
        "100644",
        plain_git(upstream.work, "hash-object", "assets/logo.bin"),
        (upstream.work / "assets/logo.bin").stat().st_size,
    )
    first = plain_git(upstream.work, "rev-list", "--max-parents=0", "HEAD")
    assert "etc-link" not in {e.path for e in mirror.tree(first)}  # any commit, not just tips


def test_read_blobs_returns_exact_bytes_for_many_blobs(mirrors: Mirrors, tmp_path: Path) -> None:
    rng = random.Random(7)
    files: dict[str, str | bytes | None] = {
        f"pkg{i % 10}/file{i}.bin": rng.randbytes(rng.randrange(0, 3000)) for i in range(400)
    }
    files["empty.txt"] = b""
    files["trailing-newlines.txt"] = b"\n\n\n"
    files["no-newline.txt"] = b"last line"
    up = make_upstream(tmp_path, "many")
    up.commit(files, "many files")
    repo = mirrors.ensure("many", up.url)

    entries = repo.tree(repo.resolve("main"))
    assert len(entries) == len(files)
    shas = [e.blob_sha for e in entries]
    blobs = repo.read_blobs(shas + shas[:10])  # duplicates are read once
    assert len(blobs) == len({*shas})
    for entry in entries:
        assert blobs[entry.blob_sha] == files[entry.path]
        assert len(blobs[entry.blob_sha]) == entry.size
    assert repo.read_blobs([]) == {}


def test_read_blobs_refuses_missing_objects_and_bad_ids(mirror: GitRepo) -> None:
    with pytest.raises(RepoError, match="missing"):
        mirror.read_blobs(["0" * 40])
    with pytest.raises(RepoError, match="not full lowercase object ids"):
        mirror.read_blobs(["HEAD:README.md"])
    with pytest.raises(RepoError, match="is a commit, not a blob"):
        mirror.read_blobs([mirror.resolve("main")])


def test_changes_split_renames_into_delete_and_add(
    mirrors: Mirrors, mirror: GitRepo, upstream: Upstream
) -> None:
    old = mirror.resolve("main")
    plain_git(upstream.work, "mv", "src/util.py", "src/helpers.py")
    upstream.commit(
        {
            "docs/guide.txt": None,
            "README.md": "# demo\n\nChanged.\n",
            "src/new_module.py": "X = 1\n",
        },
        "rename, delete, modify, add",
    )
    (upstream.work / "run.sh").unlink()
    (upstream.work / "run.sh").symlink_to("README.md")  # a file becomes a link: type change
    new = upstream.commit_index("type change")
    repo = mirrors.ensure("demo", str(upstream.bare))

    assert repo.changes(old, new) == [
        Change("M", "README.md"),
        Change("D", "docs/guide.txt"),
        Change("M", "run.sh"),
        Change("A", "src/helpers.py"),
        Change("A", "src/new_module.py"),
        Change("D", "src/util.py"),
    ]
    assert repo.changes(new, new) == []


def test_refs_resolve_to_commits_and_bad_ones_are_refused(
    mirror: GitRepo, upstream: Upstream
) -> None:
    head = plain_git(upstream.work, "rev-parse", "HEAD")
    assert mirror.resolve("main") == mirror.resolve(head[:10]) == mirror.head_commit("main")
    assert mirror.resolve("main~1") == plain_git(upstream.work, "rev-parse", "HEAD~1")
    assert mirror.default_branch() == "main"
    for bad in ("no-such-branch", "--output=/tmp/x", "main\nHEAD", ""):
        with pytest.raises(RepoError):
            mirror.resolve(bad)
    tree_sha = plain_git(upstream.work, "rev-parse", "HEAD^{tree}")
    with pytest.raises(RepoError, match="names no commit"):
        mirror.resolve(tree_sha)


def test_the_default_branch_follows_the_remote(
    mirrors: Mirrors, mirror: GitRepo, upstream: Upstream
) -> None:
    plain_git(upstream.work, "push", "--quiet", "origin", "HEAD:refs/heads/trunk")
    plain_git(upstream.bare, "symbolic-ref", "HEAD", "refs/heads/trunk")
    mirrors.ensure("demo", str(upstream.bare))
    assert mirror.default_branch() == "trunk"


def test_git_repo_satisfies_the_index_protocol(mirror: GitRepo) -> None:
    reader: RepoReader = mirror  # mypy checks the Protocol; this checks it is used as one
    assert reader.resolve("main")


@pytest.mark.parametrize(
    "name", ["", "../escape", "a/../b", ".hidden", "-rf", "a b", "a//b", "a/", "x" * 300]
)
def test_unsafe_names_are_refused(mirrors: Mirrors, name: str) -> None:
    with pytest.raises(InvalidInput, match="repository name"):
        mirrors.path(name)


def test_a_name_with_a_slash_is_one_directory(mirrors: Mirrors, upstream: Upstream) -> None:
    repo = mirrors.ensure("team/project", upstream.url)
    assert repo.path == mirrors.root / "team%2Fproject.git"
    assert repo.name == "team/project"
    assert mirrors.get("team/project").path == repo.path


def test_remove_deletes_the_mirror(mirrors: Mirrors, mirror: GitRepo) -> None:
    assert mirrors.remove("demo") is True
    assert not mirror.path.exists()
    assert mirrors.remove("demo") is False
    with pytest.raises(RepoError, match="no mirror yet"):
        mirrors.get("demo")


def test_a_failed_clone_leaves_nothing_behind(mirrors: Mirrors, tmp_path: Path) -> None:
    with pytest.raises(RepoError, match=r"git clone .* failed \(exit 128\)"):
        mirrors.ensure("ghost", str(tmp_path / "no-such-repo.git"))
    assert not mirrors.path("ghost").exists()
    assert [p.name for p in mirrors.root.iterdir()] == [".ghost.git.lock"]


def test_submodules_are_never_fetched(mirrors: Mirrors, tmp_path: Path) -> None:
    lib = make_upstream(tmp_path, "lib")
    lib_commit = lib.commit({"lib.py": "VALUE = 1\n"}, "lib")
    app = make_upstream(tmp_path, "app")
    app.commit({"app.py": "import lib\n"}, "app")
    plain_git(app.work, "submodule", "add", "--quiet", str(lib.bare), "vendor/lib")
    app.commit_index("add the lib as a submodule")

    repo = mirrors.ensure("app", app.url)
    entries = {e.path: e for e in repo.tree(repo.resolve("main"))}
    assert entries["vendor/lib"] == TreeEntry("vendor/lib", "160000", lib_commit, 0)
    assert not (repo.path / "modules").exists()
    missing = repo.git("cat-file", "-e", lib_commit, check=False)
    assert missing.returncode != 0  # the submodule's objects were not fetched


# --- credentials ---------------------------------------------------------------------


@dataclass
class AuthServer:
    """A dumb-HTTP git server over a directory that wants one Authorization header."""

    url: str
    expected: str
    seen: list[str | None] = field(default_factory=list)


@pytest.fixture
def auth_server(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    plain_git(upstream.bare, "update-server-info")
    expected = "Basic " + base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()
    state = AuthServer("", expected)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != state.expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Handler, directory=str(upstream.bare.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/{upstream.bare.name}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_token_travels_in_a_header_and_is_stored_nowhere(
    mirrors: Mirrors,
    upstream: Upstream,
    auth_server: AuthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording_popen(argv: list[str], **kwargs: Any) -> Any:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)  # what run_git starts
    encoded = base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()

    repo = mirrors.ensure("private", auth_server.url, token=TOKEN)
    assert repo.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")
    assert auth_server.seen
    assert set(auth_server.seen) == {auth_server.expected}

    newer = upstream.commit({"NEWS": "more\n"}, "news")
    plain_git(upstream.bare, "update-server-info")
    mirrors.ensure("private", auth_server.url, token=TOKEN)
    assert repo.resolve("main") == newer

    assert f"url = {auth_server.url}\n" in (repo.path / "config").read_text()
    for needle in (TOKEN, encoded):
        assert _files_holding(repo.path, needle.encode()) == []
        assert not any(needle in arg for argv, _ in calls for arg in argv)  # what ps shows
    clone_env = next(env for argv, env in calls if "clone" in argv)
    assert clone_env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert clone_env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {encoded}"


def test_credentials_in_the_url_are_taken_out_of_it(
    mirrors: Mirrors, auth_server: AuthServer
) -> None:
    with_userinfo = auth_server.url.replace("http://", f"http://oauth2:{TOKEN}@")
    repo = mirrors.ensure("private", with_userinfo)
    assert set(auth_server.seen) == {auth_server.expected}
    assert TOKEN not in (repo.path / "config").read_text()
    assert f"url = {auth_server.url}\n" in (repo.path / "config").read_text()


def test_a_refused_token_is_masked_in_the_error(mirrors: Mirrors, auth_server: AuthServer) -> None:
    with pytest.raises(RepoError) as caught:
        mirrors.ensure("private", auth_server.url, token="wrong-" + TOKEN)
    message = str(caught.value)
    assert "git clone" in message
    assert "exit 128" in message
    assert TOKEN not in message
    assert auth_server.seen[0] is not None
    assert auth_server.seen[0] != auth_server.expected
    assert not mirrors.path("private").exists()


def test_an_unreachable_remote_error_masks_userinfo_and_token(
    mirrors: Mirrors, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level("DEBUG", logger="appliance.repos")
    with pytest.raises(RepoError) as caught:
        mirrors.ensure("ghost", "https://user:hunter2-password@127.0.0.1:9/x.git", timeout=60)
    with pytest.raises(RepoError) as caught_token:
        mirrors.ensure("ghost", "https://127.0.0.1:9/x.git", token=TOKEN, timeout=60)
    for error in (caught.value, caught_token.value):
        message = str(error)
        assert "git clone" in message
        assert "failed (exit 128)" in message
        assert "127.0.0.1" in message
        assert "hunter2" not in message
        assert TOKEN not in message
        assert "user:" not in message
    assert "hunter2" not in caplog.text
    assert TOKEN not in caplog.text
    assert os.listdir(mirrors.root) == [".ghost.git.lock"]
