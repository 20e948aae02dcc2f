"""The two search engines, ripgrep and pure Python, find the same lines in the same order.

The ripgrep half runs only where ``rg`` is on PATH; the Python half always runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.errors import InvalidInput
from appliance.tools import grep
from appliance.tools.grep import Match

ENGINES = [pytest.param("python", id="python"), pytest.param("rg", id="rg")]


@pytest.fixture(autouse=True)
def _ripgrep_present() -> None:
    """Both engines are tested: a machine without rg fails here, loudly (make test
    installs the ripgrep package)."""
    if shutil.which("rg") is None:
        pytest.fail("ripgrep (rg) is not installed: run `make test`, or apt-get install ripgrep")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 'needle outside'\n")
    root = tmp_path / "wt"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.py").write_text("def needle():\n    return 'Needle'\n")
    (root / "src" / "a.ts").write_text("export const needle = 1;\n")
    (root / "src" / "sub" / "b.py").write_text("x = 1\n# needle here\n")
    (root / "src" / "sub" / "generated.py").write_text("needle = 'generated'\n")
    (root / "src" / "sub" / ".gitignore").write_text("generated.py\n")
    (root / "src.py").write_text("needle_at_root = True")  # no final newline
    (root / "crlf.js").write_bytes(b"let needle = 1;\r\nother\r\n")
    (root / ".env.example").write_text("NEEDLE_KEY=needle\n")
    (root / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n")
    (root / "debug.log").write_text("needle in a log\n")
    (root / "keep.log").write_text("needle kept\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("needle = 'built'\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("needle in git\n")
    (root / "blob.bin").write_bytes(b"needle\x00\x01\x02")
    (root / "large.txt").write_text("needle\n" + "x" * (grep.MAX_FILE_BYTES + 10) + "\n")
    (root / "linked_dir").symlink_to(outside)
    (root / "linked_file.py").symlink_to("src/a.py")
    return root


EVERY_NEEDLE = [
    Match(".env.example", 1, "NEEDLE_KEY=needle"),
    Match("crlf.js", 1, "let needle = 1;"),
    Match("keep.log", 1, "needle kept"),
    Match("src/a.py", 1, "def needle():"),
    Match("src/a.ts", 1, "export const needle = 1;"),
    Match("src/sub/b.py", 2, "# needle here"),
    Match("src.py", 1, "needle_at_root = True"),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_search_skips_git_ignored_binary_large_and_linked_files(
    tree: Path, engine: grep.Engine
) -> None:
    result = grep.search(tree, "needle", engine=engine)
    assert result.engine == engine
    assert result.matches == EVERY_NEEDLE
    assert not result.truncated
    assert not result.timed_out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("glob", "paths"),
    [
        # as with rg -g, a file the glob names is searched even where .gitignore lists it
        ("*.py", ["src/a.py", "src/sub/b.py", "src/sub/generated.py", "src.py"]),
        ("src/**/*.py", ["src/a.py", "src/sub/b.py", "src/sub/generated.py"]),
        ("/src/sub/b.py", ["src/sub/b.py"]),
        ("s?c/[!a]*/b.py", ["src/sub/b.py"]),
        ("*.{ts,js}", ["crlf.js", "src/a.ts"]),
        ("src/*", ["src/a.py", "src/a.ts"]),
    ],
)
def test_glob_selects_files_like_rg(
    tree: Path, engine: grep.Engine, glob: str, paths: list[str]
) -> None:
    result = grep.search(tree, "needle", glob=glob, engine=engine)
    assert [match.path for match in result.matches] == paths


@pytest.mark.parametrize("engine", ENGINES)
def test_case_insensitive_and_anchored_patterns(tree: Path, engine: grep.Engine) -> None:
    found = grep.search(tree, "^.*'needle'$", case_sensitive=False, engine=engine)
    assert found.matches == [Match("src/a.py", 2, "    return 'Needle'")]
    line_end = grep.search(tree, r"1;$", engine=engine)
    assert [match.path for match in line_end.matches] == ["src/a.ts"]  # crlf.js ends in \r


@pytest.mark.parametrize("engine", ENGINES)
def test_results_stop_at_the_limit(tree: Path, engine: grep.Engine) -> None:
    result = grep.search(tree, "needle", limit=3, engine=engine)
    assert result.matches == EVERY_NEEDLE[:3]
    assert result.truncated


@pytest.mark.parametrize("engine", ENGINES)
def test_a_bad_regex_names_the_problem(tree: Path, engine: grep.Engine) -> None:
    with pytest.raises(InvalidInput, match=r"invalid regular expression '\[a-': ") as info:
        grep.search(tree, "[a-", engine=engine)
    assert info.value.field == "pattern"


def test_a_pattern_only_python_accepts_is_explained_under_rg(tree: Path) -> None:
    with pytest.raises(InvalidInput, match="look-around"):
        grep.search(tree, "needle(?=\\()", engine="rg")


def test_a_glob_that_excludes_is_refused(tree: Path) -> None:
    with pytest.raises(InvalidInput, match="must select files"):
        grep.search(tree, "needle", glob="!*.py")


def test_without_rg_on_path_the_python_engine_runs(
    tree: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = grep.search(tree, "needle")
    assert result.engine == "python"
    assert result.matches == EVERY_NEEDLE


def test_engines_agree_on_a_real_source_tree() -> None:
    root = Path(__file__).resolve().parents[2] / "appliance"
    for pattern, glob in [(r"def \w+\(", "*.py"), ("import", None), ("TODO|FIXME", None)]:
        rg = grep.search(root, pattern, glob=glob, limit=10_000, engine="rg")
        python = grep.search(root, pattern, glob=glob, limit=10_000, engine="python")
        assert rg.matches == python.matches, pattern
        assert rg.matches or pattern == "TODO|FIXME"
