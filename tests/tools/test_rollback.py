"""The ``rollback`` tool: the model undoes its round's edits, back to the last validated
state; and ``put_back``, which reviewing uses to undo what a command changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.errors import PathRefused
from appliance.tools.changeset import EditSession, put_back
from appliance.tools.edit import WRITE_TOOLS
from appliance.tools.files import READ_TOOLS
from appliance.tools.policy import EditPolicy
from appliance.tools.registry import ToolContext, ToolRegistry, ToolResult

ORDERS = "def total(items):\n    return sum(items)\n"


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    worktree = tmp_path / "wt"
    (worktree / "shop").mkdir(parents=True)
    (worktree / "shop" / "orders.py").write_text(ORDERS)
    session = EditSession(worktree, EditPolicy(), backup_dir=tmp_path / "backups")
    return ToolContext(worktree=worktree, edits=session)


def run(ctx: ToolContext, name: str, **args: object) -> ToolResult:
    return ToolRegistry((*READ_TOOLS, *WRITE_TOOLS)).call(name, args, ctx)


def test_rollback_undoes_the_rounds_edits_back_to_the_last_validated_state(
    ctx: ToolContext,
) -> None:
    assert ctx.edits is not None
    ctx.edits.begin_iteration()
    assert run(ctx, "edit_file", path="shop/orders.py", old="sum(items)", new="sum(items) + 1").ok
    ctx.edits.commit_iteration()  # validation passed: this is the last good state
    good = (ctx.worktree / "shop" / "orders.py").read_text()
    ctx.edits.begin_iteration()
    assert run(ctx, "edit_file", path="shop/orders.py", old="+ 1", new="* 2").ok
    assert run(ctx, "create_file", path="shop/tax/rates.py", content="VAT = 0.2\n").ok

    result = run(ctx, "rollback")

    assert result.ok, result.output
    assert result.output.startswith(
        "rolled back 2 file(s) to the last validated state: shop/orders.py, shop/tax/rates.py."
    )
    assert "files changed in this task: 1 (+1 -1 lines)" in result.output
    assert (ctx.worktree / "shop" / "orders.py").read_text() == good
    assert not (ctx.worktree / "shop" / "tax").exists()
    # the model goes on editing after a rollback
    assert run(ctx, "edit_file", path="shop/orders.py", old="+ 1", new="+ 2").ok


def test_rollback_with_nothing_to_undo_says_so(ctx: ToolContext) -> None:
    result = run(ctx, "rollback")
    assert result.ok
    assert result.output.startswith("nothing to roll back: no file was changed")


def test_rollback_is_refused_when_the_args_are_not_empty(ctx: ToolContext) -> None:
    result = run(ctx, "rollback", files=["shop/orders.py"])
    assert not result.ok
    assert "'files': unknown argument" in result.output


def test_put_back_restores_content_and_mode_and_removes_new_files(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    (worktree / "ci").mkdir(parents=True)
    (worktree / "ci" / "deploy.sh").write_text("echo changed\n")
    (worktree / "new.txt").write_text("made by a command\n")
    put_back(worktree, "ci/deploy.sh", b"echo deploy\n", 0o755)
    put_back(worktree, "new.txt", None, None)
    assert (worktree / "ci" / "deploy.sh").read_text() == "echo deploy\n"
    assert os.stat(worktree / "ci" / "deploy.sh").st_mode & 0o777 == 0o755
    assert not (worktree / "new.txt").exists()


def test_put_back_never_writes_through_a_symlink(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    outside = tmp_path / "outside"
    outside.mkdir()
    worktree.mkdir()
    (worktree / "conf").symlink_to(outside)
    with pytest.raises(PathRefused):
        put_back(worktree, "conf/settings.py", b"x = 1\n", 0o644)
    assert list(outside.iterdir()) == []
    # a link at the file itself is replaced, not followed
    (outside / "target.txt").write_text("outside\n")
    (worktree / "link.txt").symlink_to(outside / "target.txt")
    put_back(worktree, "link.txt", b"inside\n", 0o644)
    assert (outside / "target.txt").read_text() == "outside\n"
    assert not (worktree / "link.txt").is_symlink()
    assert (worktree / "link.txt").read_text() == "inside\n"
