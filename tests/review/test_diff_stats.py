"""diff_stats: what the review page and the merge-request body say a diff does per file."""

from __future__ import annotations

from appliance.review import FileStat, diff_stats
from tests.review.conftest import Repo


def test_added_modified_deleted_renamed_and_binary(repo: Repo) -> None:
    repo.commit(
        {
            "README.md": "# Demo\n\nold line\n",
            "src/old_name.py": "".join(f"line_{i} = {i}\n" for i in range(20)),
            "obsolete.txt": "one\ntwo\nthree\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        }
    )
    renamed = "".join(f"line_{i} = {i}\n" for i in range(20)) + "line_20 = 20\n"

    diff = repo.diff(
        {
            "README.md": "# Demo\n\nnew line\nand another\n",
            "src/new_name.py": renamed,
            "obsolete.txt": None,
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01",
            "docs/guide.md": "# Guide\n\nStep one.\n",
            "assets/icon.bin": b"\x00\x01\x02\x03",
        },
        ("src/old_name.py", "src/new_name.py"),
    )

    assert sorted(diff_stats(diff), key=lambda s: s.path) == [
        FileStat("README.md", added=2, removed=1, binary=False, status="modified"),
        FileStat("assets/icon.bin", added=0, removed=0, binary=True, status="added"),
        FileStat("docs/guide.md", added=3, removed=0, binary=False, status="added"),
        FileStat("logo.png", added=0, removed=0, binary=True, status="modified"),
        FileStat("obsolete.txt", added=0, removed=3, binary=False, status="deleted"),
        FileStat(
            "src/new_name.py",
            added=1,
            removed=0,
            binary=False,
            status="renamed",
            old_path="src/old_name.py",
        ),
    ]


def test_pure_rename_and_quoted_unicode_path(repo: Repo) -> None:
    repo.commit({"notes.txt": "keep\n"})

    diff = repo.diff({"docs/straße und weg.md": "hallo\n"}, ("notes.txt", "archive/notes.txt"))

    assert sorted(diff_stats(diff), key=lambda s: s.path) == [
        FileStat("archive/notes.txt", 0, 0, binary=False, status="renamed", old_path="notes.txt"),
        FileStat("docs/straße und weg.md", 1, 0, binary=False, status="added"),
    ]


def test_no_changes_no_stats() -> None:
    assert diff_stats("") == []
