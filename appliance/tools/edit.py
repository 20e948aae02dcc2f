"""The write tools: ``edit_file``, ``create_file``, ``delete_file``, ``apply_diff`` and
``rollback``.

They change the task's worktree only through its :class:`~appliance.tools.changeset.EditSession`
(``ToolContext.edits``), so every write is checked against the :class:`EditPolicy` (protected
paths, the request's ``avoid_files``, ``max_files_changed``), is atomic, and belongs to the
iteration the runner can roll back. The rules the tools add:

- ``edit_file`` replaces text that occurs exactly once. No match: the error shows the
  closest window of the file with line numbers and says what differs (indentation, trailing
  whitespace, a changed line); a near miss is never applied silently. Several matches: the
  error lists their lines. In a CRLF file, ``old`` and ``new`` written with plain ``\\n`` are
  matched and written with the file's ``\\r\\n`` (``read_file`` never shows the ``\\r``).
- ``create_file`` only creates; ``delete_file`` only deletes a file read (or written)
  earlier in the task.
- ``apply_diff`` validates every hunk of every file before anything is written.
- The syntax guard (:mod:`appliance.tools.syntax`): a file in a language with a grammar
  that parses cleanly before the change (or is new) and would not after it is refused with
  the error's line and a snippet. A file already broken may stay broken; the result says so.
- Text with a NUL byte is never written.
- ``rollback`` undoes the iteration's edits: every file the edit tools touched since the
  last validated state is put back as it was (files created since are deleted).

Every result says what changed and how much (``edited shop/orders.py: -3 +5 lines (now 120
lines)``) and how many files the task has changed so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import Conflict, InvalidInput
from appliance.tools import matching, patch
from appliance.tools.changeset import Change, EditSession, line_stat
from appliance.tools.registry import Tool, ToolContext
from appliance.tools.syntax import check_syntax


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


_PATH = "File path relative to the worktree root, e.g. 'src/app.py'."


@dataclass(frozen=True)
class _Planned:
    """One file's change, before it is checked and written."""

    path: str
    before: str | None  # None: the file does not exist yet
    after: str | None  # None: delete it
    executable: bool = False


def _session(ctx: ToolContext) -> EditSession:
    if ctx.edits is None:
        raise Conflict("editing is not available in this step; use the read tools only")
    return ctx.edits


# edit_file ---------------------------------------------------------------------------------


class EditFileArgs(_Args):
    path: str = Field(description=_PATH)
    old: str = Field(
        min_length=1,
        description=(
            "The exact text to replace, copied from the file with its whitespace and "
            "indentation, without read_file's line numbers. It must occur exactly once: "
            "include a few neighbouring lines to make it unique."
        ),
    )
    new: str = Field(description="The text that replaces old; '' deletes old.")


def edit_file(ctx: ToolContext, args: EditFileArgs) -> str:
    session = _session(ctx)
    rel = session.resolve(args.path)
    session.policy.check_path(rel)
    text = session.read_text(rel)
    old, new = args.old, args.new
    offsets = matching.find_all(text, old)
    if not offsets and "\r\n" in text and "\r" not in old:
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        offsets = matching.find_all(text, old)
    if old == new:
        raise InvalidInput("old and new are the same text; there is nothing to change", field="new")
    if not offsets:
        raise InvalidInput(_not_found(rel, text, args.old), field="old")
    if len(offsets) > 1:
        starts = sorted({matching.line_at(text, offset) for offset in offsets})
        lines = ", ".join(map(str, starts[:20]))
        raise InvalidInput(
            f"old occurs {len(offsets)} times in {rel} (starting on lines {lines}); add "
            "neighbouring lines to old so that it matches exactly one place. Nothing was changed.",
            field="old",
        )
    start = offsets[0]
    after = text[:start] + new + text[start + len(old) :]
    return _write(session, [_Planned(rel, text, after)])


def _not_found(rel: str, text: str, old: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    wanted = old.replace("\r\n", "\n").split("\n")
    if wanted and wanted[-1] == "" and len(wanted) > 1:
        wanted.pop()  # old ended with a newline
    head = f"old was not found in {rel}; nothing was changed."
    window = matching.closest_window(lines, wanted)
    if window is None:
        return (
            f"{head} No part of the file looks like it; read the file (read_file) and copy "
            "old exactly from it."
        )
    start, ratio = window
    found = lines[start : start + len(wanted)]
    return "\n".join(
        [
            f"{head} The closest match is lines {start + 1}-{start + len(found)} "
            f"({ratio:.0%} similar):",
            matching.numbered(found, start + 1),
            matching.explain_difference(found, wanted, start + 1),
            "If that is the place, call edit_file again with old copied exactly from these "
            "lines (without the line numbers).",
        ]
    )


# create_file / delete_file ------------------------------------------------------------------


class CreateFileArgs(_Args):
    path: str = Field(description=_PATH + " Missing parent directories are created.")
    content: str = Field(description="The whole content of the new file.")


def create_file(ctx: ToolContext, args: CreateFileArgs) -> str:
    session = _session(ctx)
    rel = session.resolve(args.path, must_exist=False)
    if session.exists(rel):
        raise InvalidInput(
            f"{rel} already exists; use edit_file (or apply_diff) to change it", field="path"
        )
    return _write(session, [_Planned(rel, None, args.content)])


class DeleteFileArgs(_Args):
    path: str = Field(description=_PATH + " Only a file you have read in this task.")


def delete_file(ctx: ToolContext, args: DeleteFileArgs) -> str:
    session = _session(ctx)
    rel = session.resolve(args.path)
    if not session.was_read(rel):
        raise InvalidInput(
            f"{rel} has not been read in this task; read it first (read_file), then delete "
            "it if it is really not needed",
            field="path",
        )
    return _write(session, [_Planned(rel, session.read_text(rel), None)])


# apply_diff ---------------------------------------------------------------------------------


class ApplyDiffArgs(_Args):
    diff: str = Field(
        min_length=1,
        description=(
            "A unified diff of one or more files: '--- a/path' and '+++ b/path' lines, then "
            "'@@ -start,count +start,count @@' hunks whose context (' ') and removed ('-') "
            "lines match the file exactly. '--- /dev/null' creates a file, '+++ /dev/null' "
            "deletes one."
        ),
    )


def apply_diff(ctx: ToolContext, args: ApplyDiffArgs) -> str:
    session = _session(ctx)
    planned: dict[str, _Planned] = {}
    for file in patch.parse_diff(args.diff):
        rel = session.resolve(file.path, must_exist=False)
        session.policy.check_path(rel)
        earlier = planned.get(rel)
        if earlier is not None:
            current = earlier.after
        else:
            current = session.read_text(rel) if session.exists(rel) else None
        before = earlier.before if earlier is not None else current
        if file.kind == "create":
            if current is not None:
                raise InvalidInput(
                    f"the diff creates {rel}, which already exists; diff against its content "
                    f"('--- a/{rel}') or use edit_file. Nothing was changed.",
                    field="diff",
                )
            after: str | None = patch.new_file_text(file)
        elif current is None:
            raise InvalidInput(
                f"the diff {'deletes' if file.kind == 'delete' else 'changes'} {rel}, which "
                "does not exist; to create a file, start its diff with '--- /dev/null'. "
                "Nothing was changed.",
                field="diff",
            )
        elif file.kind == "delete":
            left = patch.apply_hunks(rel, current, file.hunks) if file.hunks else ""
            if left.strip():
                raise InvalidInput(
                    f"the diff deletes {rel} but removes only part of it "
                    f"({_count_lines(left)} lines would be left); remove every line or "
                    "use delete_file. Nothing was changed.",
                    field="diff",
                )
            after = None
        else:
            after = patch.apply_hunks(rel, current, file.hunks)
        planned[rel] = _Planned(rel, before, after, file.executable)
    changes = [p for p in planned.values() if p.before != p.after]
    if not changes:
        raise InvalidInput("the diff changes nothing; nothing was written", field="diff")
    return _write(session, changes)


# the common write path -----------------------------------------------------------------------


def _write(session: EditSession, planned: list[_Planned]) -> str:
    """Syntax-check, write (all or nothing) and describe ``planned``."""
    for p in planned:
        if p.after is not None and "\x00" in p.after:
            raise InvalidInput(
                f"the new content of {p.path} contains a NUL byte; the edit tools write text "
                "files only. Nothing was changed.",
                field="path",
            )
    notes = [
        note
        for p in planned
        if p.after is not None and (note := check_syntax(p.path, p.before, p.after)) is not None
    ]
    session.apply(
        [
            Change(
                p.path,
                None if p.after is None else p.after.encode("utf-8"),
                0o755 if p.executable else None,
            )
            for p in planned
        ]
    )
    lines = [_describe(p) for p in planned]
    if len(lines) > 1:
        lines = [f"applied the diff to {len(lines)} files:", *(f"  {line}" for line in lines)]
    lines += notes
    lines.append(_task_summary(session))
    return "\n".join(lines)


def _describe(p: _Planned) -> str:
    if p.before is None:
        return f"created {p.path}: +{_count_lines(p.after or '')} lines"
    if p.after is None:
        return f"deleted {p.path}: -{_count_lines(p.before)} lines"
    added, removed = line_stat(p.before.encode(), p.after.encode())
    return f"edited {p.path}: -{removed} +{added} lines (now {_count_lines(p.after)} lines)"


def _task_summary(session: EditSession) -> str:
    stats = session.diff_stat()
    added = sum(s.added for s in stats)
    removed = sum(s.removed for s in stats)
    limit = session.policy.max_files_changed
    budget = f" of at most {limit}" if limit is not None else ""
    return f"files changed in this task: {len(stats)}{budget} (+{added} -{removed} lines)"


def _count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


# rollback -------------------------------------------------------------------------------------


class RollbackArgs(_Args):
    pass


def rollback(ctx: ToolContext, args: RollbackArgs) -> str:
    """Undo this iteration's edits: back to the last validated state (the task's start in
    the first round)."""
    session = _session(ctx)
    restored = session.rollback()
    if not restored:
        return (
            "nothing to roll back: no file was changed with the edit tools since the last "
            "validated state. " + _task_summary(session)
        )
    return (
        f"rolled back {len(restored)} file(s) to the last validated state: "
        f"{', '.join(restored)}. Changes made by commands (run_command) are not undone.\n"
        + _task_summary(session)
    )


EDIT_FILE: Tool[EditFileArgs] = Tool(
    name="edit_file",
    description=(
        "Replace text in a file: old must be copied exactly from the file (whitespace "
        "included) and occur exactly once; new replaces it. Prefer this for small changes."
    ),
    args=EditFileArgs,
    fn=edit_file,
)
CREATE_FILE: Tool[CreateFileArgs] = Tool(
    name="create_file",
    description="Create a new file with the given content; refused if the file exists.",
    args=CreateFileArgs,
    fn=create_file,
)
DELETE_FILE: Tool[DeleteFileArgs] = Tool(
    name="delete_file",
    description="Delete a file that you have read earlier in this task.",
    args=DeleteFileArgs,
    fn=delete_file,
)
APPLY_DIFF: Tool[ApplyDiffArgs] = Tool(
    name="apply_diff",
    description=(
        "Apply a unified diff to one or more files at once; every hunk is checked against "
        "the files first and nothing is written unless all of them match."
    ),
    args=ApplyDiffArgs,
    fn=apply_diff,
)

ROLLBACK: Tool[RollbackArgs] = Tool(
    name="rollback",
    description=(
        "Undo every edit made since the last validated state (the start of the task in the "
        "first round): use it when your changes made things worse and you want to start "
        "this round again."
    ),
    args=RollbackArgs,
    fn=rollback,
)

#: The write tools, for ``ToolRegistry((*READ_TOOLS, *WRITE_TOOLS))``.
WRITE_TOOLS: tuple[Tool[Any], ...] = (EDIT_FILE, CREATE_FILE, DELETE_FILE, APPLY_DIFF, ROLLBACK)
