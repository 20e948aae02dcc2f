"""Regex search over a worktree: ripgrep when it is installed, pure Python otherwise.

Both engines search the same files and return the same :class:`Match` list, in the same
order, so the model sees one format whichever ran:

- hidden files are searched, ``.git`` is not; ``.gitignore`` files are honoured (root and
  nested, ``!`` re-includes), even outside a git repository; ignore files above the
  worktree, the user's global excludes, ``.git/info/exclude`` and ``.ignore`` are not;
- symlinks are never followed (a link to ``/etc`` is not searched);
- binary files (a NUL byte) and files over 1 MiB are skipped;
- files come in path order, a directory's entries sorted by name, depth first;
- ``glob`` selects files the way ``rg -g`` does: ``*.py`` at any depth, ``src/*`` and
  ``src/**/*.ts`` from the root, ``*.{js,ts}`` alternatives; like ``rg -g``, a file or
  directory the glob names is searched even when ``.gitignore`` lists it.

ripgrep runs with ``--no-config`` (no user config file), ``--encoding none`` (no BOM
sniffing, so UTF-16 files count as binary in both engines) and a wall-clock limit; its
output is read as it comes and the process is stopped once ``limit`` matches are in.
The Python engine's ``.gitignore`` matching comes from ``pathspec``; its glob matching is a
small translation to a regex, since gitignore patterns also match a directory's contents
and ``rg -g`` globs do not.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pathspec

from appliance.errors import InvalidInput

MAX_FILE_BYTES = 1024 * 1024
TIMEOUT_S = 30.0

Engine = Literal["auto", "rg", "python"]


@dataclass(frozen=True)
class Match:
    """One matching line: worktree-relative path, 1-based line number, the line's text."""

    path: str
    line: int
    text: str


@dataclass(frozen=True)
class SearchResult:
    matches: list[Match]
    truncated: bool  # more than ``limit`` matches exist
    timed_out: bool  # the search was stopped after ``TIMEOUT_S``: the list may be partial
    engine: Literal["rg", "python"]


def find_ripgrep() -> str | None:
    """The ``rg`` executable on PATH, if any."""
    return shutil.which("rg")


def search(
    root: Path,
    pattern: str,
    *,
    glob: str | None = None,
    case_sensitive: bool = True,
    limit: int = 200,
    engine: Engine = "auto",
) -> SearchResult:
    """Lines under ``root`` matching the regex ``pattern``; at most ``limit`` of them."""
    flags = 0 if case_sensitive else re.IGNORECASE
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise InvalidInput(
            f"invalid regular expression {pattern!r}: {exc}; escape special characters "
            r"(like \( or \.) to search for them literally",
            field="pattern",
        ) from None
    if "\n" in pattern:
        raise InvalidInput("the pattern matches single lines; remove the newline", field="pattern")
    selector = _glob_regex(glob) if glob else None
    if glob is not None and (glob.startswith("!") or not glob.strip()):
        raise InvalidInput(
            f"glob {glob!r} must select files, like '*.py' or 'src/**/*.ts'", field="glob"
        )
    rg = find_ripgrep() if engine in ("auto", "rg") else None
    if engine == "rg" and rg is None:
        raise RuntimeError("ripgrep (rg) is not on PATH")
    if rg is not None:
        return _search_rg(rg, root, pattern, glob, case_sensitive, limit)
    return _search_python(root, compiled, selector, limit)


# ripgrep ---------------------------------------------------------------------------------


def _search_rg(
    rg: str, root: Path, pattern: str, glob: str | None, case_sensitive: bool, limit: int
) -> SearchResult:
    command = [
        rg,
        "--json",
        "--no-config",
        "--no-follow",
        "--hidden",
        "--no-require-git",
        "--no-ignore-parent",
        "--no-ignore-global",
        "--no-ignore-exclude",
        "--no-ignore-dot",
        "--encoding",
        "none",
        "--max-filesize",
        str(MAX_FILE_BYTES),
        "--sort",
        "path",
        "--max-count",
        str(limit + 1),
        "--case-sensitive" if case_sensitive else "--ignore-case",
    ]
    if glob:
        command += ["--glob", glob]
    command += ["--glob", "!.git", "--regexp", pattern, "--", "."]
    matches: list[Match] = []
    with subprocess.Popen(
        command,
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(TIMEOUT_S, stop)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                match = _parse_rg_line(raw)
                if match is not None:
                    matches.append(match)
                    if len(matches) > limit:
                        proc.kill()
                        break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            assert proc.stderr is not None
            stderr = proc.stderr.read().decode("utf-8", "replace")
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
    if proc.returncode == 2 and not matches and "regex" in stderr:
        message = " ".join(stderr.split())[:400]
        raise InvalidInput(
            f"ripgrep cannot use the pattern {pattern!r}: {message} (look-around and "
            "back-references are not supported)",
            field="pattern",
        )
    return SearchResult(matches[:limit], len(matches) > limit, expired.is_set(), "rg")


def _parse_rg_line(raw: bytes) -> Match | None:
    event: dict[str, Any] = json.loads(raw)
    if event.get("type") != "match":
        return None
    data = event["data"]
    path = _rg_text(data["path"])
    path = path[2:] if path.startswith("./") else path
    text = _rg_text(data["lines"]).rstrip("\n").rstrip("\r")
    return Match(path, int(data["line_number"]), text)


def _rg_text(value: dict[str, str]) -> str:
    """rg's ``{"text": ...}``, or ``{"bytes": base64}`` for what is not UTF-8."""
    if "text" in value:
        return value["text"]
    return base64.b64decode(value["bytes"]).decode("utf-8", "replace")


# pure Python -------------------------------------------------------------------------------


def _search_python(
    root: Path, compiled: re.Pattern[str], selector: re.Pattern[str] | None, limit: int
) -> SearchResult:
    matches: list[Match] = []
    deadline = time.monotonic() + TIMEOUT_S
    for rel, full in _walk_dir(root, "", [], selector):
        if time.monotonic() > deadline:
            return SearchResult(matches, False, True, "python")
        text = _read_text(full)
        if text is None:
            continue
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        for number, line in enumerate(lines, start=1):
            if compiled.search(line):
                matches.append(Match(shown, number, line.rstrip("\r")))
                if len(matches) > limit:
                    return SearchResult(matches[:limit], True, False, "python")
    return SearchResult(matches, False, False, "python")


@dataclass(frozen=True)
class _Ignore:
    base: str  # the directory holding the .gitignore, "" for the root, else "dir/"
    spec: pathspec.GitIgnoreSpec

    def check(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included, None: this file has no say."""
        if not rel.startswith(self.base):
            return None
        sub = rel[len(self.base) :] + ("/" if is_dir else "")
        return self.spec.check_file(sub).include


def _walk_dir(
    directory: Path, prefix: str, ignores: list[_Ignore], selector: re.Pattern[str] | None
) -> Iterator[tuple[str, Path]]:
    """Regular files below ``directory`` (relative path, full path), in rg's order.

    With a ``selector`` (the glob), a file must match it, and whatever matches it is taken
    even when ignored; without one, the ``.gitignore`` files decide.
    """
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda entry: entry.name)
    except OSError:
        return
    own = _load_gitignore(directory, prefix)
    if own is not None:
        ignores = [*ignores, own]
    for entry in entries:
        if entry.name == ".git":
            continue
        rel = prefix + entry.name
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):
            continue  # symlinks, FIFOs, sockets, devices
        selected = selector is not None and selector.fullmatch(rel) is not None
        if not selected and _ignored(ignores, rel, is_dir):
            continue
        if is_dir:
            yield from _walk_dir(Path(entry.path), rel + "/", ignores, selector)
        elif selector is None or selected:
            yield rel, Path(entry.path)


def _ignored(ignores: list[_Ignore], rel: str, is_dir: bool) -> bool:
    verdict: bool | None = None
    for ignore in ignores:  # deeper .gitignore files come later and win
        result = ignore.check(rel, is_dir)
        if result is not None:
            verdict = result
    return bool(verdict)


def _load_gitignore(directory: Path, prefix: str) -> _Ignore | None:
    path = directory / ".gitignore"
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return None
    return _Ignore(prefix, pathspec.GitIgnoreSpec.from_lines(lines))


def _read_text(path: Path) -> str | None:
    """The file's text, or None for a binary, oversized or vanished file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        data = handle.read(MAX_FILE_BYTES + 1)
    if b"\x00" in data:
        return None
    return data.decode("utf-8", "replace")


def _glob_regex(glob: str) -> re.Pattern[str]:
    """A regex for the relative paths ``glob`` names, with ``rg -g``'s rules.

    No slash: the name at any depth. A slash: from the root. ``**`` crosses directories,
    ``*`` and ``?`` do not; ``[...]`` is a class (``[!...]`` negated), ``{a,b}`` a choice.
    """
    anchored = "/" in glob.rstrip("/")
    body = glob.lstrip("/")
    regex = _glob_body(body)
    return re.compile(regex if anchored else "(?:.*/)?" + regex)


def _glob_body(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            inner = glob[i + 1 : end]
            negated = inner.startswith("!")
            inner = inner[1:] if negated else inner
            out.append("[" + ("^" if negated else "") + inner.replace("\\", "\\\\") + "]")
            i = end + 1
        elif char == "{" and (end := glob.find("}", i)) != -1:
            options = glob[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_glob_body(option) for option in options) + ")")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)
