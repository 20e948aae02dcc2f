"""Unified diffs as a small model writes them: parsed with ``unidiff``, checked line by line.

:func:`parse_diff` reads one or more files' diffs (``--- a/x`` / ``+++ b/x``, git's
``diff --git`` headers, ``/dev/null`` for a created or deleted file). Before parsing it
forgives what models get wrong and what does not change the meaning: a surrounding
Markdown fence, CRLF line ends, hunk headers whose line *counts* are off (they are counted
again from the hunk's lines) or missing (``@@ @@``). What it does not forgive is content:
:func:`apply_hunks` applies a hunk only where its context and removed lines match the file
exactly. The header's line number is a hint: a hunk that matches exactly one place is
applied there, a hunk that matches several places is applied at the stated line or refused;
a hunk that matches nowhere is reported with the lines it expected and the lines the file
has. Renames, binary patches and symlinks are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk, PatchedFile, PatchSet

from appliance.errors import InvalidInput
from appliance.tools import matching

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
_DEV_NULL = "/dev/null"
_FORMAT = (
    "send a unified diff like:\n--- a/src/app.py\n+++ b/src/app.py\n@@ -10,3 +10,4 @@\n"
    " context line\n-removed line\n+added line\n context line"
)


@dataclass(frozen=True)
class FilePatch:
    """One file's part of a diff."""

    path: str
    kind: Literal["create", "delete", "modify"]
    hunks: list[Hunk]
    executable: bool = False  # a created file with git's "new file mode 100755"


def parse_diff(diff: str) -> list[FilePatch]:
    """The files of a unified diff, or ``InvalidInput`` saying what is wrong with it."""
    text = _normalise(diff)
    try:
        patch_set = PatchSet(text)
    except UnidiffParseError as exc:
        raise InvalidInput(f"the diff cannot be parsed: {exc}; {_FORMAT}", field="diff") from None
    if not patch_set:
        raise InvalidInput(f"the diff names no file; {_FORMAT}", field="diff")
    return [_file_patch(patched) for patched in patch_set]


def _file_patch(patched: PatchedFile) -> FilePatch:
    source = _name(patched.source_file, "a/")
    target = _name(patched.target_file, "b/")
    shown = target if source == _DEV_NULL else source
    if patched.is_binary_file:
        raise InvalidInput(f"{shown}: binary patches are not supported", field="diff")
    if patched.is_symlink or patched.is_submodule:
        raise InvalidInput(f"{shown}: symlinks and submodules cannot be patched", field="diff")
    if source == _DEV_NULL and target == _DEV_NULL:
        raise InvalidInput("a file diff has /dev/null on both sides", field="diff")
    if source == _DEV_NULL:
        executable = patched.target_mode == "100755"
        return FilePatch(target, "create", list(patched), executable)
    if target == _DEV_NULL:
        return FilePatch(source, "delete", list(patched))
    if source != target:
        raise InvalidInput(
            f"the diff renames {source} to {target}; apply_diff does not rename: create "
            "the new file (create_file) and delete the old one (delete_file)",
            field="diff",
        )
    if not len(patched):
        raise InvalidInput(f"the diff of {source} has no hunk (no @@ line)", field="diff")
    return FilePatch(source, "modify", list(patched))


def _name(raw: str | None, prefix: str) -> str:
    name = (raw or "").strip()
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return name.removeprefix(prefix)


def _normalise(diff: str) -> str:
    """The diff without a Markdown fence or CRLFs, each hunk header counted again."""
    lines = diff.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].startswith("```"):
        lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and lines[-1].startswith("```"):
            lines.pop()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("@@"):
            out.append(line)
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not _starts_section(lines, end):
            end += 1
        body = lines[index + 1 : end]
        while body and not body[-1].strip():
            body.pop()  # blank lines between files, not context
        out.append(_header(line, body))
        out.extend(body)
        index = end
    return "\n".join(out) + "\n"


def _starts_section(lines: list[str], index: int) -> bool:
    line = lines[index]
    if line.startswith(("@@", "diff --git ")):
        return True
    following = lines[index + 1] if index + 1 < len(lines) else ""
    return line.startswith("--- ") and following.startswith("+++ ")


def _header(line: str, body: list[str]) -> str:
    """``line`` with the counts its ``body`` really has (a blank line is context)."""
    source = sum(1 for text in body if not text or text[0] in " -")
    target = sum(1 for text in body if not text or text[0] in " +")
    match = _HUNK.match(line)
    source_start, target_start, rest = (
        (int(match[1]), int(match[2]), match[3]) if match else (1 if source else 0, 1, "")
    )
    if source and not source_start:
        source_start = 1
    return f"@@ -{source_start},{source} +{target_start},{target} @@{rest}"


# applying ------------------------------------------------------------------------------


@dataclass
class Lines:
    """A text file as lines without their ends, its line end and whether it ends with one."""

    lines: list[str]
    newline: str = "\n"
    final_newline: bool = True

    @classmethod
    def of(cls, text: str) -> Lines:
        newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
        body = text.replace("\r\n", "\n")
        final = body.endswith("\n")
        lines = body.split("\n") if body else []
        if final:
            lines.pop()
        return cls(lines, newline, final)

    def text(self) -> str:
        if not self.lines:
            return ""
        return self.newline.join(self.lines) + (self.newline if self.final_newline else "")


def new_file_text(patch: FilePatch) -> str:
    """The content of a file the diff creates."""
    result = Lines([])
    for hunk in patch.hunks:
        _, target, _, target_no_eol = _sides(hunk)
        result.lines.extend(target)
        result.final_newline = not target_no_eol
    return result.text()


def apply_hunks(path: str, text: str, hunks: list[Hunk]) -> str:
    """``text`` with every hunk applied, in order; ``InvalidInput`` at the first that does
    not match."""
    file = Lines.of(text)
    lines = file.lines
    out: list[str] = []
    position = 0  # lines before this one are done
    for number, hunk in enumerate(hunks, start=1):
        source, target, _, target_no_eol = _sides(hunk)
        hint = hunk.source_start if not source else max(hunk.source_start - 1, 0)
        start = _locate(path, lines, source, hint, position, number, hunk)
        out.extend(lines[position:start])
        out.extend(target)
        position = start + len(source)
        if position == len(lines):
            file.final_newline = not target_no_eol
    out.extend(lines[position:])
    return Lines(out, file.newline, file.final_newline).text()


def _sides(hunk: Hunk) -> tuple[list[str], list[str], bool, bool]:
    """(source lines, target lines, source lacks a final newline, target lacks one)."""
    source: list[str] = []
    target: list[str] = []
    source_no_eol = target_no_eol = False
    last = " "
    for line in hunk:
        value = line.value.rstrip("\n")
        if line.line_type == "\\":
            source_no_eol |= last in " -"
            target_no_eol |= last in " +"
            continue
        last = line.line_type
        if line.is_context or line.is_removed:
            source.append(value)
        if line.is_context or line.is_added:
            target.append(value)
    return source, target, source_no_eol, target_no_eol


def _locate(
    path: str, lines: list[str], source: list[str], hint: int, lowest: int, number: int, hunk: Hunk
) -> int:
    """Where hunk ``number`` applies: the one place its source lines match, or the line its
    header names when they match several."""
    hint = min(max(hint, lowest), len(lines))
    if not source:
        return hint
    size = len(source)
    places = [
        start
        for start in range(lowest, len(lines) - size + 1)
        if lines[start] == source[0] and lines[start : start + size] == source
    ]
    if len(places) == 1 or hint in places:
        return places[0] if len(places) == 1 else hint
    header = f"hunk {number} of {path} ({_header_text(hunk)})"
    if places:
        at = ", ".join(str(place + 1) for place in places[:10])
        raise InvalidInput(
            f"{header} matches {len(places)} places (lines {at}) and its header names line "
            f"{hunk.source_start}; give the right line number or more context lines. "
            "Nothing was changed.",
            field="diff",
        )
    found = lines[hint : hint + size]
    window = matching.closest_window(lines[lowest:], source)
    message = [f"{header} does not match {path}; nothing was changed."]
    message.append(f"The hunk expects these lines (context and removed) at line {hint + 1}:")
    message.append(matching.numbered(source, hint + 1))
    if window is not None and window[0] + lowest != hint:
        start = window[0] + lowest
        found = lines[start : start + size]
        message.append(f"The most similar lines of {path} are {start + 1}-{start + len(found)}:")
        hint = start
    else:
        message.append(f"{path} has there:")
    message.append(matching.numbered(found, hint + 1) if found else "(end of file)")
    if found:
        message.append(matching.explain_difference(found, source, hint + 1, "the hunk"))
    message.append("Read the file again and make the context lines match it exactly.")
    raise InvalidInput("\n".join(message), field="diff")


def _header_text(hunk: Hunk) -> str:
    return (
        f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
    )
