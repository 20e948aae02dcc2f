"""EditSession: atomic writes, the last good state, rollback and resuming from a checkpoint."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from appliance.errors import Conflict, InvalidInput, PathRefused
from appliance.tools.changeset import Change, EditSession, FileStat
from appliance.tools.policy import EditPolicy


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "orders.py").write_bytes(b"def total(o):\r\n    return 1\r\n")  # CRLF
    (root / "shop" / "cart.py").write_text("ITEMS = []\n")
    (root / "bin").mkdir()
    (root / "bin" / "deploy").write_text("#!/bin/sh\necho deploy\n")
    (root / "bin" / "deploy").chmod(0o750)
    (root / "README.md").write_text("# shop\n")
    return root


def session(worktree: Path, **policy: object) -> EditSession:
    return EditSession(
        worktree, EditPolicy.model_validate(policy), backup_dir=worktree.parent / "backup"
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file and directory below ``root`` with its bytes and mode."""
    found: dict[str, tuple[bytes, int] | None] = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        found[path.relative_to(root).as_posix()] = (
            None if path.is_dir() else (path.read_bytes(), mode)
        )
    return found


def test_rollback_restores_edits_creations_and_deletions_exactly(worktree: Path) -> None:
    edits = session(worktree)
    before = snapshot(worktree)
    edits.note_read("bin/deploy")
    edits.apply(
        [
            Change("shop/orders.py", b"def total(o):\n    return 2\n"),
            Change("shop/payments/stripe/client.py", b"X = 1\n", mode=0o600),
            Change("bin/deploy", None),
        ]
    )
    assert not (worktree / "bin" / "deploy").exists()
    assert (worktree / "shop" / "payments" / "stripe" / "client.py").read_text() == "X = 1\n"

    assert edits.rollback() == ["bin/deploy", "shop/orders.py", "shop/payments/stripe/client.py"]
    assert snapshot(worktree) == before  # CRLF bytes, the 0o750 mode, no new directories
    assert edits.changed_files() == []


def test_rollback_goes_back_to_the_last_committed_state(worktree: Path) -> None:
    edits = session(worktree)
    edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n")])
    edits.commit_iteration()
    good = snapshot(worktree)
    edits.begin_iteration()
    edits.apply([Change("shop/cart.py", b"ITEMS = [1, 2]\n"), Change("NOTES.md", b"x\n")])
    edits.apply([Change("shop/cart.py", b"ITEMS = [1, 2, 3]\n")])
    assert edits.pending == ["NOTES.md", "shop/cart.py"]

    assert edits.rollback() == ["NOTES.md", "shop/cart.py"]
    assert snapshot(worktree) == good
    assert edits.changed_files() == ["shop/cart.py"]  # the committed change stays
    assert edits.pending == []


def test_a_new_iteration_needs_the_last_one_committed_or_rolled_back(worktree: Path) -> None:
    edits = session(worktree)
    edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n")])
    with pytest.raises(Conflict, match=r"\(shop/cart.py\) were neither committed nor rolled"):
        edits.begin_iteration()
    edits.commit_iteration()
    edits.begin_iteration()


def test_changes_are_measured_against_the_start_of_the_task(worktree: Path) -> None:
    edits = session(worktree, max_files_changed=2)
    edits.apply([Change("shop/cart.py", b"ITEMS = []\nTAX = 0.2\n")])
    edits.commit_iteration()
    edits.apply([Change("README.md", b"# Shop\n\nSells things.\n")])
    assert edits.diff_stat() == [
        FileStat("README.md", "modified", added=3, removed=1),
        FileStat("shop/cart.py", "modified", added=1, removed=0),
    ]
    with pytest.raises(PathRefused, match="more than 2 files"):
        edits.apply([Change("shop/orders.py", b"pass\n")])
    # Putting a file back as it was frees its place in the budget.
    edits.apply([Change("README.md", b"# shop\n")])
    assert edits.changed_files() == ["shop/cart.py"]
    edits.apply([Change("shop/orders.py", b"pass\n")])
    assert edits.changed_files() == ["shop/cart.py", "shop/orders.py"]


def test_writes_keep_the_mode_and_never_follow_a_hard_link_out(
    worktree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    os.link(outside, worktree / "linked.txt")
    edits = session(worktree)
    edits.apply([Change("bin/deploy", b"#!/bin/sh\necho deployed\n")])
    edits.apply([Change("linked.txt", b"changed\n")])
    assert stat.S_IMODE((worktree / "bin" / "deploy").stat().st_mode) == 0o750
    assert (worktree / "linked.txt").read_text() == "changed\n"
    assert outside.read_text() == "untouched\n"
    assert not [p for p in (worktree / "bin").iterdir() if p.name.endswith(".tmp")]


def test_a_symlinked_path_is_refused_with_the_real_file_named(worktree: Path) -> None:
    (worktree / "current").symlink_to("shop")
    edits = session(worktree)
    with pytest.raises(PathRefused, match=r"it is really 'shop/cart\.py'"):
        edits.resolve("current/cart.py")
    assert edits.resolve("./shop//cart.py") == "shop/cart.py"


def test_non_text_files_are_refused_for_editing(worktree: Path) -> None:
    (worktree / "data.bin").write_bytes(b"\x00\x01\x02")
    (worktree / "latin1.txt").write_bytes(b"caf\xe9\n")
    edits = session(worktree)
    with pytest.raises(InvalidInput, match="binary file"):
        edits.read_text("data.bin")
    with pytest.raises(InvalidInput, match=r"not UTF-8 text \(byte 0xe9 at offset 3\)"):
        edits.read_text("latin1.txt")


def test_a_deletion_needs_a_read_and_a_failed_check_writes_nothing(worktree: Path) -> None:
    edits = session(worktree, avoid_files=["README.md"])
    before = snapshot(worktree)
    with pytest.raises(InvalidInput, match="has not been read in this task"):
        edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n"), Change("bin/deploy", None)])
    with pytest.raises(PathRefused, match="files to avoid"):
        edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n"), Change("README.md", b"x\n")])
    assert snapshot(worktree) == before


def test_state_round_trips_through_json_and_the_resumed_session_goes_on(
    worktree: Path,
) -> None:
    edits = session(worktree, max_files_changed=3)
    original = snapshot(worktree)
    edits.note_read("README.md")
    edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n")])
    edits.commit_iteration()
    edits.apply([Change("shop/orders.py", b"pass\n"), Change("docs/new.md", b"new\n")])
    committed = {**original, "shop/cart.py": (b"ITEMS = [1]\n", 0o644)}
    state = json.loads(json.dumps(edits.to_state()))
    assert len(json.dumps(state)) < 2_000  # contents live in the backup dir, not the state

    resumed = EditSession.from_state(
        worktree, edits.policy, state, backup_dir=worktree.parent / "backup"
    )
    assert resumed.changed_files() == ["docs/new.md", "shop/cart.py", "shop/orders.py"]
    with pytest.raises(PathRefused, match="more than 3 files"):
        resumed.apply([Change("bin/deploy", b"#!/bin/sh\n")])
    resumed.rollback()
    assert snapshot(worktree) == committed
    resumed.apply([Change("README.md", None)])  # it was read before the checkpoint
    assert not (worktree / "README.md").exists()


def test_a_checkpoint_whose_backups_are_gone_cannot_be_resumed(worktree: Path) -> None:
    edits = session(worktree)
    edits.apply([Change("shop/cart.py", b"ITEMS = [1]\n")])
    state = edits.to_state()
    for blob in (worktree.parent / "backup").iterdir():
        blob.unlink()
    with pytest.raises(Conflict, match=r"the edit backups in .* are incomplete"):
        EditSession.from_state(worktree, edits.policy, state, backup_dir=worktree.parent / "backup")


def test_the_backup_dir_must_be_outside_the_worktree(worktree: Path) -> None:
    with pytest.raises(ValueError, match="must be outside the worktree"):
        EditSession(worktree, EditPolicy(), backup_dir=worktree / ".backup")
