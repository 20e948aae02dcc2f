"""The read-only file tools: ``read_file``, ``list_directory`` and ``search_code``.

Each is an argument model (what the model fills in, with descriptions that end up in the
JSON schema) and a function returning text written for a small model: line numbers it can
quote back, paths it can pass to the next call, and a note whenever something was left out
that says exactly which call gets the rest. Every path goes through
:func:`~appliance.tools.paths.resolve_inside`; files are opened with ``O_NOFOLLOW`` and
checked again with ``fstat`` so nothing swapped in after the check is read.

The limits keep one answer well under the registry's output cap: ``read_file`` shows at
most 400 lines or about 16,000 characters, ``list_directory`` 500 entries,
``search_code`` 200 matches; a displayed line is cut at 500 characters.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import InvalidInput
from appliance.tools import grep
from appliance.tools.paths import relative, resolve_inside
from appliance.tools.registry import Tool, ToolContext

MAX_LINES = 400
MAX_READ_CHARS = 16_000
MAX_LINE_CHARS = 500
MAX_ENTRIES = 500
MAX_MATCHES = 200
BINARY_SNIFF_BYTES = 8192

#: Directories of third-party or generated code: listed, never descended into.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "vendor",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".gradle",
        ".eggs",
        "site-packages",
    }
)

_SIGNATURES = (
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "zip archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\x7fELF", "ELF executable"),
    (b"\xca\xfe\xba\xbe", "Java class file"),
    (b"SQLite format 3", "SQLite database"),
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


# read_file ---------------------------------------------------------------------------------


class ReadFileArgs(_Args):
    path: str = Field(description="File path relative to the worktree root, e.g. 'src/app.py'.")
    line_start: int = Field(1, ge=1, description="First line to show (1-based).")
    line_end: int | None = Field(
        None, ge=1, description=f"Last line to show; at most {MAX_LINES} lines per call."
    )


def read_file(ctx: ToolContext, args: ReadFileArgs) -> str:
    path = resolve_inside(ctx.worktree, args.path, allow_dir=False)
    name = relative(ctx.worktree, path)
    if ctx.edits is not None:  # what was read may later be deleted (delete_file's rule)
        ctx.edits.note_read(name)
    if args.line_end is not None and args.line_end < args.line_start:
        raise InvalidInput(
            f"line_end ({args.line_end}) is before line_start ({args.line_start})",
            field="line_end",
        )
    last_wanted = args.line_start + MAX_LINES - 1
    if args.line_end is not None:
        last_wanted = min(last_wanted, args.line_end)
    with _open_regular(path, name) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(BINARY_SNIFF_BYTES)
        if b"\x00" in head:
            raise InvalidInput(
                f"{name} is a binary file ({size:,} bytes, {_describe_binary(name, head)}); "
                "read_file shows text files only",
                field="path",
            )
        handle.seek(0)
        shown: list[tuple[int, str]] = []
        chars = 0
        total = 0
        for total, (raw, length) in enumerate(_lines(handle), start=1):
            if total < args.line_start:
                continue
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) > MAX_LINE_CHARS or length > len(raw):
                text = text[:MAX_LINE_CHARS] + f" … [line cut: {length:,} bytes in all]"
            shown.append((total, text))
            chars += len(text) + 10
            if total >= last_wanted or chars > MAX_READ_CHARS:
                total += _count_lines(handle)
                break
    if total == 0:
        return f"{name} is empty (0 lines)"
    if args.line_start > total:
        raise InvalidInput(
            f"line_start={args.line_start} is past the end of {name}, which has {total:,} lines",
            field="line_start",
        )
    first, last = shown[0][0], shown[-1][0]
    width = max(5, len(str(last)))
    out = [f"{name} (lines {first}-{last} of {total:,})"]
    out += [f"{number:>{width}} | {text}" for number, text in shown]
    if last < total and (args.line_end is None or last < args.line_end):
        out.append(
            f"[lines {last + 1:,}-{total:,} not shown; call read_file with "
            f"line_start={last + 1} to continue]"
        )
    if any("\ufffd" in text for _, text in shown):
        out.append("[some bytes are not valid UTF-8 and show as \ufffd]")
    return "\n".join(out)


def _open_regular(path: Path, name: str) -> BinaryIO:
    """``path`` opened for reading, refusing anything but a regular file at open time."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(f"{name} cannot be opened: {exc.strerror}", field="path") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise InvalidInput(f"{name} is not a regular file", field="path")
    return handle


def _lines(handle: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Each line's first ``MAX_LINE_CHARS * 4`` bytes and its full length, in constant memory."""
    keep = MAX_LINE_CHARS * 4
    while True:
        head = handle.readline(keep)
        if not head:
            return
        length = len(head)
        while not head.endswith(b"\n"):
            rest = handle.readline(1 << 16)
            if not rest:
                break
            length += len(rest)
            if rest.endswith(b"\n"):
                break
        yield head, length


def _count_lines(handle: BinaryIO) -> int:
    """How many lines are left in ``handle`` (a last line without newline counts)."""
    count = 0
    last = b"\n"
    while chunk := handle.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def _describe_binary(name: str, head: bytes) -> str:
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "binary data"


# list_directory ----------------------------------------------------------------------------


class ListDirectoryArgs(_Args):
    path: str = Field(".", description="Directory relative to the worktree root; '.' is the root.")
    recursive: bool = Field(
        False, description=f"List everything below too (at most {MAX_ENTRIES} entries)."
    )


def list_directory(ctx: ToolContext, args: ListDirectoryArgs) -> str:
    directory = resolve_inside(ctx.worktree, args.path)
    name = relative(ctx.worktree, directory)
    if not directory.is_dir():
        raise InvalidInput(f"{name} is a file, not a directory; use read_file", field="path")
    prefix = "" if name == "." else name + "/"
    lines: list[str] = []
    cut = _list_into(directory, prefix, args.recursive, lines)
    header = f"{name}/ ({len(lines)} entries{', recursive' if args.recursive else ''})"
    if not lines:
        return f"{name}/ is empty"
    if cut:
        lines.append(f"[listing cut at {MAX_ENTRIES} entries; list a subdirectory to see the rest]")
    return "\n".join([header, *lines])


def _list_into(directory: Path, prefix: str, recursive: bool, lines: list[str]) -> bool:
    """Append ``directory``'s entries to ``lines``; True when the cap cut the listing."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda entry: entry.name)
    except OSError as exc:
        lines.append(f"{prefix or './'} [cannot be read: {exc.strerror}]")
        return False
    for entry in entries:
        if entry.name == ".git":
            continue
        if len(lines) >= MAX_ENTRIES:
            return True
        rel = prefix + entry.name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            vendored = recursive and entry.name in VENDORED_DIRS
            lines.append(rel + "/" + ("  (vendored: not expanded)" if vendored else ""))
            if (
                recursive
                and not vendored
                and _list_into(Path(entry.path), rel + "/", recursive, lines)
            ):
                return True
        elif stat.S_ISLNK(mode):
            lines.append(f"{rel} -> {os.readlink(entry.path)}")
        elif stat.S_ISREG(mode):
            lines.append(f"{rel}  ({info.st_size:,} bytes)")
        else:
            lines.append(f"{rel}  (special file, not readable)")
    return False


# search_code -------------------------------------------------------------------------------


class SearchCodeArgs(_Args):
    pattern: str = Field(
        min_length=1, description="Regular expression searched line by line, e.g. 'def \\w+_id'."
    )
    glob: str | None = Field(
        None, description="Only files matching this glob, e.g. '*.py' or 'src/**/*.{ts,tsx}'."
    )
    case_sensitive: bool = Field(True, description="False to ignore upper/lower case.")


def search_code(ctx: ToolContext, args: SearchCodeArgs) -> str:
    return format_search(
        grep.search(
            Path(os.path.realpath(ctx.worktree)),
            args.pattern,
            glob=args.glob,
            case_sensitive=args.case_sensitive,
            limit=MAX_MATCHES,
        ),
        args,
    )


def format_search(result: grep.SearchResult, args: SearchCodeArgs) -> str:
    """The ``path:line: text`` listing the model sees, with its notes."""
    where = f" in files matching {args.glob!r}" if args.glob else ""
    if not result.matches:
        hint = "" if not args.case_sensitive else "; try case_sensitive=false or a looser pattern"
        note = " (the search timed out)" if result.timed_out else ""
        return f"no matches for /{args.pattern}/{where}{note}{hint}"
    count = len(result.matches)
    out = [f"{count} {'match' if count == 1 else 'matches'} for /{args.pattern}/{where}:"]
    for match in result.matches:
        text = match.text.strip()
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " … [line cut]"
        out.append(f"{match.path}:{match.line}: {text}")
    if result.truncated:
        out.append(
            f"[only the first {MAX_MATCHES} matches are shown; narrow the pattern or add a glob]"
        )
    if result.timed_out:
        out.append("[the search timed out; the list may be incomplete: narrow it with a glob]")
    return "\n".join(out)


READ_FILE: Tool[ReadFileArgs] = Tool(
    name="read_file",
    description=(
        f"Read a text file with line numbers, at most {MAX_LINES} lines per call; "
        "use line_start/line_end for other parts of long files."
    ),
    args=ReadFileArgs,
    fn=read_file,
    more_hint="use line_start/line_end to read a smaller range",
)
LIST_DIRECTORY: Tool[ListDirectoryArgs] = Tool(
    name="list_directory",
    description=(
        "List a directory: subdirectories end with '/', files show their size, symlinks "
        "their target. recursive=true lists everything below (vendored dirs not expanded)."
    ),
    args=ListDirectoryArgs,
    fn=list_directory,
    more_hint="list a subdirectory, or use recursive=false",
)
SEARCH_CODE: Tool[SearchCodeArgs] = Tool(
    name="search_code",
    description=(
        "Search the code with a regular expression (like ripgrep); prints path:line: text "
        "for each matching line. Honours .gitignore; skips binary files."
    ),
    args=SearchCodeArgs,
    fn=search_code,
    more_hint="narrow the pattern or add a glob",
)

#: The read-only file tools, for ``ToolRegistry(READ_TOOLS)``.
READ_TOOLS: tuple[Tool[Any], ...] = (READ_FILE, LIST_DIRECTORY, SEARCH_CODE)
