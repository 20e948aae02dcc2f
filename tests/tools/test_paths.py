"""resolve_inside against a hostile worktree: every escape refused, legitimate paths work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.errors import InvalidInput, PathRefused
from appliance.tools.paths import relative, resolve_inside


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "README.md").write_text("hi\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s3cret\n")
    (root / "etc_link").symlink_to("/etc")
    (root / "passwd_link").symlink_to("/etc/passwd")
    (root / "out_dir").symlink_to(outside)
    (root / "chain1").symlink_to("chain2")
    (root / "chain2").symlink_to("../outside/secret.txt")
    (root / "good_link").symlink_to("src/pkg/mod.py")
    (root / "good_chain").symlink_to("good_link")
    (root / "pkg_link").symlink_to("src/pkg")
    (root / "git_link").symlink_to(".git/config")
    (root / "dangling").symlink_to("nowhere.txt")
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    return root


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/etc/passwd", "absolute path"),
        ("../outside/secret.txt", "'..'"),
        ("src/../../outside/secret.txt", "'..'"),
        ("~/.ssh/id_rsa", "'~'"),
        ("src/\x00mod.py", "NUL"),
        (".git/config", ".git"),
        ("src/.GIT/x", ".git"),
        ("etc_link/passwd", "leaves the worktree"),
        ("passwd_link", "leaves the worktree"),
        ("out_dir/secret.txt", "leaves the worktree"),
        ("out_dir", "leaves the worktree"),
        ("chain1", "leaves the worktree"),
        ("git_link", "into .git"),
        ("loop", "symlink loop"),
        ("fifo", "FIFO"),
        ("", "empty"),
    ],
)
def test_escape_attempts_are_refused_with_a_reason(worktree: Path, path: str, says: str) -> None:
    with pytest.raises(PathRefused) as info:
        resolve_inside(worktree, path)
    assert says in info.value.message
    assert info.value.field == "path"


def test_a_worktree_git_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "linked"
    root.mkdir()
    (root / ".git").write_text("gitdir: /srv/mirror/worktrees/x\n")
    with pytest.raises(PathRefused, match=r"\.git"):
        resolve_inside(root, ".git")


def test_a_device_file_is_refused(worktree: Path) -> None:
    (worktree / "null").symlink_to("/dev/null")  # outside anyway; the device check is next
    with pytest.raises(PathRefused):
        resolve_inside(worktree, "null")
    with pytest.raises(PathRefused, match="device file"):
        resolve_inside(Path("/dev"), "null")


def test_legitimate_paths_resolve_to_real_paths(worktree: Path) -> None:
    real = worktree.resolve()
    assert resolve_inside(worktree, "src/pkg/mod.py") == real / "src/pkg/mod.py"
    assert resolve_inside(worktree, "./src//pkg/") == real / "src/pkg"
    assert resolve_inside(worktree, ".") == real
    assert resolve_inside(worktree, "good_link") == real / "src/pkg/mod.py"
    assert resolve_inside(worktree, "good_chain") == real / "src/pkg/mod.py"
    assert resolve_inside(worktree, "pkg_link/mod.py") == real / "src/pkg/mod.py"


def test_a_directory_is_refused_when_a_file_is_wanted(worktree: Path) -> None:
    with pytest.raises(InvalidInput, match=r"is a directory.*list_directory"):
        resolve_inside(worktree, "src", allow_dir=False)


def test_a_missing_path_says_how_to_find_the_right_one(worktree: Path) -> None:
    with pytest.raises(InvalidInput, match=r"does not exist.*search_code") as info:
        resolve_inside(worktree, "src/nope.py")
    assert not isinstance(info.value, PathRefused)


def test_a_new_file_may_be_named_but_not_through_a_bad_link(worktree: Path) -> None:
    real = worktree.resolve()
    assert resolve_inside(worktree, "src/new/file.py", must_exist=False) == real / "src/new/file.py"
    assert resolve_inside(worktree, "pkg_link/new.py", must_exist=False) == real / "src/pkg/new.py"
    with pytest.raises(PathRefused, match="leaves the worktree"):
        resolve_inside(worktree, "out_dir/new.py", must_exist=False)
    with pytest.raises(PathRefused, match="dangling"):
        resolve_inside(worktree, "dangling", must_exist=False)
    with pytest.raises(InvalidInput, match="is a file, not a directory"):
        resolve_inside(worktree, "README.md/x", must_exist=False)


def test_the_worktree_may_itself_sit_behind_a_symlink(worktree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(worktree)
    found = resolve_inside(alias, "good_link")
    assert relative(alias, found) == "src/pkg/mod.py"
    assert relative(alias, resolve_inside(alias, ".")) == "."
