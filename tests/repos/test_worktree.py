"""Task worktrees: create/remove/list/prune, commits and diffs, and nothing in a repository
(hooks, filters, submodules, a rewritten .git file) or the host's git config ever runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.errors import Conflict, InvalidInput, NotFound, RepoError
from appliance.index.types import Change
from appliance.repos.mirror import GitRepo, Mirrors
from appliance.repos.worktree import Worktrees
from tests.gitrepos import (
    Upstream,
    hook_script,
    make_executable,
    make_upstream,
    plain_git,
    write_files,
)

HOOKS = (
    "post-checkout",
    "post-commit",
    "pre-commit",
    "commit-msg",
    "prepare-commit-msg",
    "reference-transaction",
    "post-index-change",
    "pre-auto-gc",
)
BOT = {"author_name": "Appliance Bot", "author_email": "bot@appliance.example"}


def install_hooks(hooks: Path, marker: Path) -> None:
    hooks.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        (hooks / name).write_text(hook_script(marker))
        make_executable(hooks / name)


def test_create_checks_out_a_new_branch_from_the_base(
    worktrees: Worktrees, mirror: GitRepo, upstream: Upstream
) -> None:
    path = worktrees.create(mirror, task_id="t1", branch="appliance/20250101-1200-x", base="main")
    assert path == worktrees.path("t1") == worktrees.root.absolute() / "t1"
    assert (path / "src/app.py").read_text() == "def main():\n    return 'hello, world'\n"
    assert os.readlink(path / "etc-link") == "/etc"  # a link, not a copy of /etc
    assert os.access(path / "run.sh", os.X_OK)
    assert mirror.head_commit("appliance/20250101-1200-x") == mirror.resolve("main")
    record = worktrees.get("t1")
    assert (record.branch, record.base, record.repo) == (
        "appliance/20250101-1200-x",
        mirror.resolve("main"),
        mirror.path.absolute(),
    )
    older = plain_git(upstream.work, "rev-parse", "HEAD~2")
    other = worktrees.create(mirror, task_id="t2", branch="task/old", base=older)
    assert not (other / "etc-link").exists()


def test_list_remove_and_prune_stale(
    worktrees: Worktrees, mirrors: Mirrors, mirror: GitRepo
) -> None:
    one = worktrees.create(mirror, task_id="t1", branch="task/one", base="main")
    two = worktrees.create(mirror, task_id="t2", branch="task/two", base="main")
    assert [(w.task_id, w.path) for w in worktrees.list()] == [("t1", one), ("t2", two)]

    readonly = one / "build"
    readonly.mkdir()
    (readonly / "out.txt").write_text("x")
    readonly.chmod(0o500)
    worktrees.remove("t1")
    assert not one.exists()
    assert mirror.has_branch("task/one")  # kept: publishing is another layer's business
    with pytest.raises(NotFound):
        worktrees.get("t1")
    with pytest.raises(NotFound):
        worktrees.remove("t1")

    with pytest.raises(Conflict, match="still has 1 task worktree"):
        mirrors.remove("demo")
    shutil.rmtree(two)  # the directory vanished behind git's back
    assert worktrees.prune_stale() == ["t2"]
    assert worktrees.list() == []
    assert worktrees.prune_stale() == []
    listed = plain_git(mirror.path, "worktree", "list", "--porcelain")
    assert "t1" not in listed
    assert "t2" not in listed
    assert mirrors.remove("demo") is True


def test_a_task_id_or_branch_that_exists_is_refused(worktrees: Worktrees, mirror: GitRepo) -> None:
    worktrees.create(mirror, task_id="t1", branch="task/one", base="main")
    with pytest.raises(Conflict, match="branch 'task/one' exists already in repository 'demo'"):
        worktrees.create(mirror, task_id="t2", branch="task/one", base="main")
    with pytest.raises(Conflict, match="branch 'main' exists already"):
        worktrees.create(mirror, task_id="t2", branch="main", base="main")
    with pytest.raises(Conflict, match="task 't1' has a worktree already"):
        worktrees.create(mirror, task_id="t1", branch="task/other", base="main")
    assert [w.task_id for w in worktrees.list()] == ["t1"]
    assert not worktrees.path("t2").exists()


@pytest.mark.parametrize(
    "branch",
    ["", "bad..name", "-x", "with space", "ends.lock", "@{-1}", "trailing/", "HEAD", "a~1", "a:b"],
)
def test_bad_branch_names_are_refused(worktrees: Worktrees, mirror: GitRepo, branch: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid branch name"):
        worktrees.create(mirror, task_id="t1", branch=branch, base="main")
    assert not worktrees.path("t1").exists()


@pytest.mark.parametrize("task_id", ["", "../x", ".hidden", "a/b", "a b"])
def test_bad_task_ids_are_refused(worktrees: Worktrees, mirror: GitRepo, task_id: str) -> None:
    with pytest.raises(InvalidInput, match="not a usable task id"):
        worktrees.create(mirror, task_id=task_id, branch="task/x", base="main")


def test_a_bad_base_leaves_nothing_behind(worktrees: Worktrees, mirror: GitRepo) -> None:
    with pytest.raises(RepoError, match="'nope' names no commit"):
        worktrees.create(mirror, task_id="t1", branch="task/x", base="nope")
    assert not mirror.has_branch("task/x")
    assert worktrees.list() == []


def test_fetching_the_mirror_keeps_task_branches(
    worktrees: Worktrees, mirrors: Mirrors, mirror: GitRepo, upstream: Upstream
) -> None:
    path = worktrees.create(mirror, task_id="t1", branch="task/one", base="main")
    (path / "NEW.md").write_text("task work\n")
    sha = worktrees.commit_all(path, "task work", **BOT)
    newer = upstream.commit({"UPSTREAM.md": "moved on\n"}, "upstream moves on")

    mirrors.ensure("demo", upstream.url)  # fetch --prune: the remote has no task/one
    assert mirror.resolve("main") == newer
    assert mirror.head_commit("task/one") == sha
    worktrees.remove("t1")
    mirrors.ensure("demo", upstream.url)
    assert mirror.head_commit("task/one") == sha


def test_commit_all_and_diff_show_what_a_reviewer_sees(
    worktrees: Worktrees, mirror: GitRepo
) -> None:
    base = mirror.resolve("main")
    path = worktrees.create(mirror, task_id="t1", branch="task/review", base="main")
    write_files(
        path,
        {
            "src/app.py": "def main():\n    return 'bye'\n",
            "docs/guide.txt": None,
            "new/feature.py": "def feature():\n    return 42\n",
            "image.png": b"\x89PNG\r\n\x1a\n\0\0\0binary",
        },
    )
    (path / "src/util.py").rename(path / "src/helpers.py")

    diff = worktrees.diff(path, "main")
    assert "diff --git a/src/app.py b/src/app.py\n" in diff
    assert "-    return 'hello, world'\n+    return 'bye'\n" in diff
    assert "diff --git a/docs/guide.txt b/docs/guide.txt\ndeleted file mode 100644\n" in diff
    assert "new file mode 100644\n" in diff
    assert "+++ b/new/feature.py\n@@ -0,0 +1,2 @@\n+def feature():\n" in diff
    assert "Binary files /dev/null and b/image.png differ\n" in diff
    assert "rename from src/util.py\nrename to src/helpers.py\n" in diff
    # the real index was not touched: the new files are still untracked
    assert "?? new/" in plain_git(path, "status", "--porcelain")

    sha = worktrees.commit_all(path, "Say bye\n\nAnd reorganise the helpers.\n", **BOT)
    assert mirror.head_commit("task/review") == sha
    shown = plain_git(mirror.path, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%P|%B", sha)
    assert shown == (
        "Appliance Bot <bot@appliance.example>|Appliance Bot <bot@appliance.example>|"
        f"{base}|Say bye\n\nAnd reorganise the helpers."
    )
    assert mirror.changes(base, sha) == [
        Change("D", "docs/guide.txt"),
        Change("A", "image.png"),
        Change("A", "new/feature.py"),
        Change("M", "src/app.py"),
        Change("A", "src/helpers.py"),
        Change("D", "src/util.py"),
    ]
    assert worktrees.diff(path, "main") == diff  # the same change, now committed
    assert worktrees.diff(path, sha) == ""
    with pytest.raises(RepoError, match="nothing to commit"):
        worktrees.commit_all(path, "again", **BOT)
    with pytest.raises(InvalidInput, match="commit message is empty"):
        worktrees.commit_all(path, "  \n", **BOT)


def test_commit_and_diff_refuse_a_path_that_is_not_a_task_worktree(
    worktrees: Worktrees, mirror: GitRepo, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="is not a task worktree"):
        worktrees.diff(tmp_path, "main")
    with pytest.raises(NotFound):
        worktrees.commit_all(worktrees.path("nobody"), "x", **BOT)


# --- nothing runs ----------------------------------------------------------------------


def test_hooks_in_the_remote_and_in_the_mirror_never_run(
    worktrees: Worktrees, mirrors: Mirrors, upstream: Upstream, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    install_hooks(upstream.bare / "hooks", marker)
    repo = mirrors.ensure("demo", upstream.url)
    install_hooks(repo.path / "hooks", marker)  # clones never copy hooks: plant them

    # control: plain git runs the mirror's hooks
    plain_git(repo.path, "worktree", "add", "-b", "control", str(tmp_path / "control"), "main")
    assert marker.exists()
    plain_git(repo.path, "worktree", "remove", "--force", str(tmp_path / "control"))
    plain_git(repo.path, "branch", "-D", "control")
    marker.unlink()

    path = worktrees.create(repo, task_id="t1", branch="task/hooks", base="main")
    (path / "README.md").write_text("edited\n")
    worktrees.diff(path, "main")
    worktrees.commit_all(path, "edit", **BOT)
    (upstream.bare / "hooks").rename(upstream.bare / "hooks.off")  # the fixture's own push
    newer = upstream.commit({"more.txt": "more\n"}, "more")
    (upstream.bare / "hooks.off").rename(upstream.bare / "hooks")
    mirrors.ensure("demo", upstream.url)
    assert repo.resolve("main") == newer
    worktrees.remove("t1")
    assert not marker.exists()


def test_filters_and_hooks_of_the_hosts_global_config_never_run(
    worktrees: Worktrees,
    mirrors: Mirrors,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    up = make_upstream(tmp_path, "attrs")
    up.commit(
        {".gitattributes": "*.txt filter=evil diff=evil\n", "notes.txt": "hello\n"},
        "a filter the host defines",
    )
    marker = tmp_path / "evil-ran"
    evil_hooks = tmp_path / "evil-hooks"
    install_hooks(evil_hooks, marker)
    fsmonitor = tmp_path / "fsmonitor"
    fsmonitor.write_text(hook_script(marker))
    make_executable(fsmonitor)
    command = tmp_path / "evil-filter"  # records that it ran, passes the content through
    command.write_text(f"#!/bin/sh\necho filter >> '{marker}'\ncat\n")
    make_executable(command)
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        f'[filter "evil"]\n\tsmudge = {command}\n\tclean = {command}\n\trequired = true\n'
        f'[diff "evil"]\n\ttextconv = {command}\n'
        f"[core]\n\thooksPath = {evil_hooks}\n\tfsmonitor = {fsmonitor}\n"
        f"[user]\n\tname = Host User\n\temail = host@example.com\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))

    # control: plain git in this process's environment runs the smudge filter
    subprocess.run(
        ["git", "clone", "--quiet", str(up.bare), str(tmp_path / "control")],
        check=True,
        capture_output=True,
    )
    assert marker.exists()
    marker.unlink()

    repo = mirrors.ensure("attrs", up.url)
    path = worktrees.create(repo, task_id="t1", branch="task/attrs", base="main")
    assert (path / "notes.txt").read_text() == "hello\n"
    (path / "notes.txt").write_text("changed\n")
    assert "+changed\n" in worktrees.diff(path, "main")
    worktrees.commit_all(path, "change the notes", **BOT)
    worktrees.remove("t1")
    assert not marker.exists()


def test_a_rewritten_dot_git_file_is_ignored(
    worktrees: Worktrees, mirror: GitRepo, tmp_path: Path
) -> None:
    path = worktrees.create(mirror, task_id="t1", branch="task/tamper", base="main")
    marker = tmp_path / "tamper-ran"
    evil = path / "evil-gitdir"  # what a task in the sandbox could write
    plain_git(tmp_path, "init", "--quiet", "--bare", str(evil))
    install_hooks(evil / "hooks", marker)
    plain_git(evil, "config", "core.fsmonitor", str(evil / "hooks" / "post-commit"))
    (path / ".git").write_text(f"gitdir: {evil}\n")

    (path / "README.md").write_text("edited\n")
    assert "+edited\n" in worktrees.diff(path, "main")
    sha = worktrees.commit_all(path, "edit", **BOT)
    assert mirror.head_commit("task/tamper") == sha
    worktrees.remove("t1")
    assert not marker.exists()
    assert not path.exists()


def test_a_nested_repository_is_refused(
    worktrees: Worktrees, mirror: GitRepo, tmp_path: Path
) -> None:
    path = worktrees.create(mirror, task_id="t1", branch="task/nested", base="main")
    marker = tmp_path / "nested-ran"
    nested = path / "vendor" / "thing"
    nested.mkdir(parents=True)
    plain_git(nested, "init", "--quiet")
    install_hooks(nested / ".git" / "hooks", marker)
    plain_git(nested, "config", "core.fsmonitor", str(nested / ".git" / "hooks" / "post-commit"))
    (nested / "x.txt").write_text("x\n")

    with pytest.raises(RepoError, match=r"nested git repositories \(vendor/thing\)"):
        worktrees.commit_all(path, "vendor it", **BOT)
    with pytest.raises(RepoError, match="nested git repositories"):
        worktrees.diff(path, "main")
    assert not marker.exists()
    shutil.rmtree(nested / ".git")
    worktrees.commit_all(path, "vendor it", **BOT)
    assert not marker.exists()


def test_a_submodule_stays_an_empty_directory(
    worktrees: Worktrees, mirrors: Mirrors, tmp_path: Path
) -> None:
    marker = tmp_path / "submodule-ran"
    lib = make_upstream(tmp_path, "lib")
    lib.commit({"lib.py": "VALUE = 1\n"}, "lib")
    app = make_upstream(tmp_path, "app")
    app.commit({"app.py": "import lib\n"}, "app")
    plain_git(app.work, "submodule", "add", "--quiet", str(lib.bare), "vendor/lib")
    # a hostile .gitmodules: would run a command if anything ever fetched it
    (app.work / ".gitmodules").write_text(
        '[submodule "vendor/lib"]\n\tpath = vendor/lib\n'
        f"\turl = ext::sh -c touch% {marker}\n\tupdate = !touch {marker}\n"
    )
    app.commit_index("a submodule")

    repo = mirrors.ensure("app", app.url)
    path = worktrees.create(repo, task_id="t1", branch="task/sub", base="main")
    assert (path / "vendor/lib").is_dir()
    assert list((path / "vendor/lib").iterdir()) == []
    assert not (repo.path / "modules").exists()
    (path / "app.py").write_text("import lib  # noqa\n")
    worktrees.commit_all(path, "touch the app", **BOT)
    mirrors.ensure("app", app.url)
    assert not marker.exists()


def test_a_tree_git_refuses_to_check_out_leaves_nothing_behind(
    worktrees: Worktrees, mirrors: Mirrors, tmp_path: Path
) -> None:
    up = make_upstream(tmp_path, "hostile")
    blob = plain_git(up.bare, "hash-object", "-w", "--stdin", input_text="evil\n")
    inner = plain_git(up.bare, "mktree", input_text=f"100644 blob {blob}\tconfig\n")
    # ".GIT" is .git on case-insensitive file systems: git refuses to write it
    top = plain_git(up.bare, "mktree", input_text=f"040000 tree {inner}\t.GIT\n")
    commit = plain_git(up.bare, "commit-tree", top, "-m", "hostile")
    plain_git(up.bare, "update-ref", "refs/heads/main", commit)

    repo = mirrors.ensure("hostile", up.url)
    assert [e.path for e in repo.tree(commit)] == [".GIT/config"]
    with pytest.raises(RepoError, match=r"invalid path '\.GIT/config'"):
        worktrees.create(repo, task_id="t1", branch="task/hostile", base="main")
    assert not repo.has_branch("task/hostile")
    assert worktrees.list() == []
    assert not worktrees.path("t1").exists()
    assert "task/hostile" not in (repo.path / "config").read_text()
