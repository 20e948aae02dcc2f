"""read_file, list_directory and search_code as the model calls them, on hostile worktrees."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from appliance.tools.files import READ_TOOLS
from appliance.tools.registry import ToolContext, ToolRegistry, ToolResult


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("import os\n\n\ndef main():\n    return 1\n")
    (root / "big.txt").write_text("".join(f"line {n}\n" for n in range(1, 1001)))
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (root / "latin1.txt").write_bytes(b"caf\xe9 au lait\nok\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (root / "etc").symlink_to("/etc")
    (root / "app_link.py").symlink_to("src/app.py")
    os.mkfifo(root / "fifo")
    return root


def run(worktree: Path, name: str, **args: object) -> ToolResult:
    return ToolRegistry(READ_TOOLS).call(name, args, ToolContext(worktree=worktree))


# read_file


def test_read_file_numbers_the_lines(worktree: Path) -> None:
    result = run(worktree, "read_file", path="src/app.py")
    assert result.ok
    assert result.output.splitlines() == [
        "src/app.py (lines 1-5 of 5)",
        "    1 | import os",
        "    2 | ",
        "    3 | ",
        "    4 | def main():",
        "    5 |     return 1",
    ]


def test_read_file_shows_400_lines_and_says_how_to_continue(worktree: Path) -> None:
    first = run(worktree, "read_file", path="big.txt").output.splitlines()
    assert first[0] == "big.txt (lines 1-400 of 1,000)"
    assert first[-2] == "  400 | line 400"
    assert first[-1] == (
        "[lines 401-1,000 not shown; call read_file with line_start=401 to continue]"
    )
    tail = run(worktree, "read_file", path="big.txt", line_start=990).output.splitlines()
    assert tail[0] == "big.txt (lines 990-1000 of 1,000)"
    assert tail[-1] == " 1000 | line 1000"
    window = run(worktree, "read_file", path="big.txt", line_start=10, line_end=12).output
    assert window.splitlines()[1:] == ["   10 | line 10", "   11 | line 11", "   12 | line 12"]


def test_read_file_past_the_end_or_backwards_says_so(worktree: Path) -> None:
    past = run(worktree, "read_file", path="src/app.py", line_start=50)
    assert not past.ok
    assert "past the end of src/app.py, which has 5 lines" in past.output
    backwards = run(worktree, "read_file", path="src/app.py", line_start=5, line_end=2)
    assert "line_end (2) is before line_start (5)" in backwards.output


def test_a_huge_file_is_read_a_window_at_a_time(worktree: Path) -> None:
    huge = worktree / "huge.log"
    with huge.open("wb") as handle:
        handle.write(b"x" * 3_000_000 + b"\n")  # one minified-style line
        for _ in range(20):
            handle.write(b"row\n" * 100_000)
    result = run(worktree, "read_file", path="huge.log")
    assert result.ok
    lines = result.output.splitlines()
    assert lines[0] == "huge.log (lines 1-400 of 2,000,001)"
    assert lines[1].endswith("x … [line cut: 3,000,001 bytes in all]")
    assert len(lines[1]) < 600
    assert len(result.output) < 20_000


def test_a_binary_file_is_refused_with_size_and_type(worktree: Path) -> None:
    result = run(worktree, "read_file", path="logo.png")
    assert not result.ok
    assert result.output == (
        "logo.png is a binary file (216 bytes, PNG image); read_file shows text files only"
    )


def test_invalid_utf8_is_replaced_and_flagged(worktree: Path) -> None:
    output = run(worktree, "read_file", path="latin1.txt").output
    assert "    1 | caf\ufffd au lait" in output
    assert output.endswith("[some bytes are not valid UTF-8 and show as \ufffd]")


def test_read_file_refuses_escapes_and_special_files(worktree: Path) -> None:
    for path, says in [
        ("etc/passwd", "leaves the worktree"),
        ("../wt/src/app.py", "'..'"),
        ("/etc/passwd", "absolute path"),
        (".git/config", ".git"),
        ("fifo", "FIFO"),
        ("src", "is a directory"),
    ]:
        result = run(worktree, "read_file", path=path)
        assert not result.ok, path
        assert says in result.output, path
    linked = run(worktree, "read_file", path="app_link.py")
    assert linked.ok
    assert linked.output.startswith("src/app.py (lines 1-5 of 5)")


def test_an_empty_file_says_it_is_empty(worktree: Path) -> None:
    (worktree / "empty.py").write_text("")
    assert run(worktree, "read_file", path="empty.py").output == "empty.py is empty (0 lines)"


# list_directory


def test_list_directory_marks_dirs_sizes_and_links_and_hides_git(worktree: Path) -> None:
    result = run(worktree, "list_directory")
    assert result.ok
    assert result.output.splitlines() == [
        "./ (8 entries)",
        "app_link.py -> src/app.py",
        "big.txt  (8,893 bytes)",
        "etc -> /etc",
        "fifo  (special file, not readable)",
        "latin1.txt  (16 bytes)",
        "logo.png  (216 bytes)",
        "node_modules/",
        "src/",
    ]


def test_recursive_listing_does_not_follow_links_or_enter_vendored_dirs(worktree: Path) -> None:
    output = run(worktree, "list_directory", recursive=True).output.splitlines()
    assert "node_modules/  (vendored: not expanded)" in output
    assert "src/app.py  (37 bytes)" in output
    assert not any("left-pad" in line or "passwd" in line or ".git" in line for line in output)
    sub = run(worktree, "list_directory", path="node_modules", recursive=True).output
    assert "node_modules/left-pad/index.js  (19 bytes)" in sub.splitlines()


def test_recursive_listing_is_capped_with_a_note(worktree: Path) -> None:
    many = worktree / "many"
    many.mkdir()
    for n in range(600):
        (many / f"f{n:03}.txt").write_text("")
    result = run(worktree, "list_directory", path="many", recursive=True)
    lines = result.output.splitlines()
    assert len(lines) == 502
    assert lines[-1] == "[listing cut at 500 entries; list a subdirectory to see the rest]"


def test_list_directory_refuses_a_file_and_escapes(worktree: Path) -> None:
    assert "use read_file" in run(worktree, "list_directory", path="big.txt").output
    assert "leaves the worktree" in run(worktree, "list_directory", path="etc").output
    assert ".git" in run(worktree, "list_directory", path=".git").output


# search_code (the engines are compared in test_grep.py)


def test_search_code_prints_path_line_text(worktree: Path) -> None:
    result = run(worktree, "search_code", pattern=r"def \w+\(")
    assert result.ok
    assert result.output.splitlines() == [
        "1 match for /def \\w+\\(/:",
        "src/app.py:4: def main():",
    ]


def test_search_code_bad_regex_is_a_clear_error(worktree: Path) -> None:
    result = run(worktree, "search_code", pattern="foo(")
    assert not result.ok
    assert re.search(r"invalid regular expression 'foo\(': missing \)", result.output)


def test_search_code_with_no_match_suggests_a_looser_search(worktree: Path) -> None:
    result = run(worktree, "search_code", pattern="IMPORT")
    assert result.output == (
        "no matches for /IMPORT/; try case_sensitive=false or a looser pattern"
    )
    found = run(worktree, "search_code", pattern="IMPORT", case_sensitive=False)
    assert "src/app.py:1: import os" in found.output
