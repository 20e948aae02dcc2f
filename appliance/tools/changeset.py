"""The edit transaction: every write the agent makes goes through one ``EditSession``.

A task has one session. It remembers

- which files the agent has read (``note_read``; ``read_file`` calls it) or written: only
  those may be deleted;
- the *baseline* of every file touched in the task (its content and mode before the first
  change, or "did not exist"): ``changed_files`` and ``diff_stat`` compare with it, and the
  ``max_files_changed`` budget counts files that differ from it (a file edited back to its
  original no longer counts);
- the *iteration originals*: each file's state at the last good state. ``commit_iteration``
  makes the current state the last good one; ``rollback`` restores every file touched since,
  byte for byte and with its mode, deletes files created since (and the directories made
  for them, when empty), and recreates files deleted since.

Contents are never kept in the state: each original is stored once, by its SHA-256, under
``backup_dir`` (which must lie outside the worktree), and the state names it. ``to_state``
gives a small JSON-serialisable dict for the runner's checkpoint; ``from_state`` rebuilds the
session on resume (a task that stopped mid-iteration can then ``rollback``). Blobs nothing
names any more are removed at each commit and rollback.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), keep the
file's mode, never follow a symlink (a path that goes through one is refused, naming the
real file; the replaced name is swapped, not written through, so a hard link to a file
outside the worktree is never modified), and are all-or-none for one ``apply`` call. Only
UTF-8 text files are edited; a binary file is refused.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.errors import ApplianceError, Conflict, InvalidInput, PathRefused
from appliance.tools.paths import relative, resolve_inside
from appliance.tools.policy import EditPolicy

STATE_VERSION = 1
MAX_EDIT_BYTES = 2_000_000
NEW_FILE_MODE = 0o644


@dataclass(frozen=True)
class Change:
    """One file's new content (``None``: delete it); ``mode`` only for a created file."""

    path: str
    content: bytes | None
    mode: int | None = None


@dataclass(frozen=True)
class FileStat:
    """How one file differs from its state at the start of the task."""

    path: str
    status: Literal["added", "modified", "deleted"]
    added: int
    removed: int


@dataclass(frozen=True)
class _Original:
    blob: str | None  # SHA-256 of the content under backup_dir; None: the file did not exist
    mode: int | None


class EditSession:
    """One task's edits: the files read, the originals, the last good state."""

    def __init__(self, worktree: Path, policy: EditPolicy, *, backup_dir: Path) -> None:
        self.worktree = Path(os.path.realpath(worktree))
        self.policy = policy
        self.backup_dir = Path(os.path.realpath(backup_dir))
        if self.backup_dir.is_relative_to(self.worktree):
            raise ValueError(f"the edit backup dir {backup_dir} must be outside the worktree")
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        self._read: set[str] = set()
        self._baseline: dict[str, _Original] = {}
        self._iteration: dict[str, _Original] = {}
        self._created_dirs: list[str] = []

    # -- paths and reading ---------------------------------------------------------------

    def resolve(self, path: str, *, must_exist: bool = True) -> str:
        """The worktree-relative name of a file the model asked for, checked for writing.

        Everything :func:`resolve_inside` refuses is refused, and so is a path that goes
        through a symlink (the message names the real file to edit instead)."""
        real = resolve_inside(self.worktree, path, must_exist=must_exist, allow_dir=False)
        rel = relative(self.worktree, real)
        asked = "/".join(part for part in path.split("/") if part not in ("", "."))
        if rel != asked:
            raise PathRefused(
                f"{path!r} goes through a symlink (it is really {rel!r}); the edit tools do "
                f"not write through symlinks: edit {rel!r} instead",
                field="path",
            )
        return rel

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.worktree / rel)

    def read_bytes(self, rel: str) -> bytes:
        """The content of the regular file ``rel`` (opened without following a symlink)."""
        return _read_regular(self.worktree / rel, rel)

    def read_text(self, rel: str) -> str:
        """``rel`` decoded as UTF-8; binary, non-UTF-8 and huge files are refused."""
        data = self.read_bytes(rel)
        if len(data) > MAX_EDIT_BYTES:
            raise InvalidInput(
                f"{rel} is {len(data):,} bytes, more than the {MAX_EDIT_BYTES:,} the edit tools "
                "change; it is probably generated: change its source instead",
                field="path",
            )
        if b"\x00" in data:
            raise InvalidInput(
                f"{rel} is a binary file; the edit tools change text files only", field="path"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{rel} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                "the edit tools change UTF-8 text files only",
                field="path",
            ) from None

    def note_read(self, rel_path: str) -> None:
        """Remember that the agent has read ``rel_path`` (worktree-relative): it may delete it."""
        self._read.add("/".join(part for part in rel_path.split("/") if part not in ("", ".")))

    def was_read(self, rel: str) -> bool:
        return rel in self._read

    # -- writing -------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> None:
        """Write all ``changes`` or none: every path is checked against the policy (and a
        deletion needs an earlier read) before anything is written; a write that fails
        midway puts back the files this call had already written."""
        paths = [change.path for change in changes]
        if len(set(paths)) != len(paths):
            raise ValueError(f"one change per file, please: {paths}")
        for change in changes:
            if change.path != self.resolve(change.path, must_exist=change.content is None):
                raise ValueError(f"{change.path!r} is not a normalised worktree path")
            self.policy.check_path(change.path)
            if change.content is None and not self.was_read(change.path):
                raise InvalidInput(
                    f"{change.path} has not been read in this task; read it first (read_file), "
                    "then delete it if it is really not needed",
                    field="path",
                )
        self.policy.check_count(paths, self.changed_files())
        before = {change.path: self._current(change.path) for change in changes}
        for change in changes:
            original = self._save(change.path, before[change.path])
            self._baseline.setdefault(change.path, original)
            self._iteration.setdefault(change.path, original)
        done: list[str] = []
        try:
            for change in changes:
                self._write(change)
                done.append(change.path)
                self._read.add(change.path)
        except OSError as exc:
            for rel in reversed(done):
                data, mode = before[rel]
                self._put(rel, data, mode)
            raise ApplianceError(
                f"could not write {change.path}: {exc.strerror}; nothing was changed"
            ) from exc

    def _write(self, change: Change) -> None:
        path = self.worktree / change.path
        if change.content is None:
            path.unlink()
            return
        if os.path.lexists(path):
            mode = stat.S_IMODE(os.lstat(path).st_mode)
        else:
            mode = change.mode if change.mode is not None else NEW_FILE_MODE
        self._put(change.path, change.content, mode)

    def _put(self, rel: str, data: bytes | None, mode: int | None) -> None:
        """Make ``rel`` hold ``data`` with ``mode`` (or not exist, for ``None``)."""
        path = self.worktree / rel
        if data is None:
            if os.path.lexists(path):
                path.unlink()
            return
        self._make_parents(rel)
        _write_atomic(path, data, NEW_FILE_MODE if mode is None else mode)

    def _make_parents(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if not os.path.lexists(self.worktree / directory):
                (self.worktree / directory).mkdir()
                self._created_dirs.append(directory)

    # -- the transaction -----------------------------------------------------------------

    @property
    def pending(self) -> list[str]:
        """The files touched since the last good state."""
        return sorted(self._iteration)

    def begin_iteration(self) -> None:
        """Start an iteration; the previous one must have been committed or rolled back."""
        if self._iteration:
            raise Conflict(
                f"the edits of the last iteration ({', '.join(self.pending)}) were neither "
                "committed nor rolled back; call commit_iteration() or rollback() first"
            )

    def commit_iteration(self) -> None:
        """The current state becomes the last good state."""
        self._iteration.clear()
        self._created_dirs.clear()
        self._collect_garbage()

    def rollback(self) -> list[str]:
        """Put every file touched since the last good state back as it was; returns them."""
        restored = self.pending
        failed: list[str] = []
        for rel, original in sorted(self._iteration.items()):
            try:
                self._restore(rel, original)
            except (OSError, ApplianceError):
                failed.append(rel)
        for directory in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                (self.worktree / directory).rmdir()  # only when empty
        self._iteration = {rel: self._iteration[rel] for rel in failed}
        self._created_dirs.clear()
        self._collect_garbage()
        if failed:
            raise ApplianceError(
                f"could not restore {', '.join(failed)}; the worktree needs a fresh checkout"
            )
        return restored

    def _restore(self, rel: str, original: _Original) -> None:
        path = self.worktree / rel
        if os.path.islink(path):
            path.unlink()  # something put a link where our file was; never write through it
        if os.path.lexists(path) or original.blob is not None:
            self.resolve(rel, must_exist=False)  # no parent swapped for a symlink since
        data = None if original.blob is None else self._blob(original.blob).read_bytes()
        self._put(rel, data, original.mode)

    # -- what changed --------------------------------------------------------------------

    def changed_files(self) -> list[str]:
        """Files whose content, mode or existence differs from the start of the task."""
        return sorted(rel for rel, base in self._baseline.items() if self._differs(rel, base))

    def diff_stat(self) -> list[FileStat]:
        """Added and removed lines of each changed file, against the start of the task."""
        stats = []
        for rel in self.changed_files():
            blob = self._baseline[rel].blob
            old = self._blob(blob).read_bytes() if blob is not None else None
            new = self.read_bytes(rel) if self.exists(rel) else None
            added, removed = line_stat(old or b"", new or b"")
            status: Literal["added", "modified", "deleted"] = (
                "added" if old is None else "deleted" if new is None else "modified"
            )
            stats.append(FileStat(rel, status, added, removed))
        return stats

    def _differs(self, rel: str, base: _Original) -> bool:
        data, mode = self._current(rel)
        if data is None or base.blob is None:
            return (data is None) != (base.blob is None)
        return mode != base.mode or hashlib.sha256(data).hexdigest() != base.blob

    # -- persistence ---------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A small JSON-serialisable dict; the contents stay under ``backup_dir``."""
        return {
            "version": STATE_VERSION,
            "read": sorted(self._read),
            "baseline": {rel: [o.blob, o.mode] for rel, o in sorted(self._baseline.items())},
            "iteration": {rel: [o.blob, o.mode] for rel, o in sorted(self._iteration.items())},
            "created_dirs": list(self._created_dirs),
        }

    @classmethod
    def from_state(
        cls, worktree: Path, policy: EditPolicy, state: dict[str, Any], *, backup_dir: Path
    ) -> EditSession:
        """The session ``to_state`` described, with its backups checked to be there."""
        if state.get("version") != STATE_VERSION:
            raise Conflict(f"edit session state version {state.get('version')!r} is unknown")
        session = cls(worktree, policy, backup_dir=backup_dir)
        session._read = set(state["read"])
        session._baseline = {rel: _Original(*pair) for rel, pair in state["baseline"].items()}
        session._iteration = {rel: _Original(*pair) for rel, pair in state["iteration"].items()}
        session._created_dirs = list(state["created_dirs"])
        for original in [*session._baseline.values(), *session._iteration.values()]:
            if original.blob is not None and not session._blob(original.blob).is_file():
                raise Conflict(
                    f"the edit backups in {backup_dir} are incomplete (no {original.blob}); "
                    "the task cannot be resumed from this checkpoint"
                )
        return session

    # -- backups -------------------------------------------------------------------------

    def _current(self, rel: str) -> tuple[bytes | None, int | None]:
        path = self.worktree / rel
        if not os.path.lexists(path):
            return None, None
        return self.read_bytes(rel), stat.S_IMODE(os.lstat(path).st_mode)

    def _save(self, rel: str, state: tuple[bytes | None, int | None]) -> _Original:
        data, mode = state
        if data is None:
            return _Original(None, None)
        digest = hashlib.sha256(data).hexdigest()
        blob = self._blob(digest)
        if not blob.exists():
            _write_atomic(blob, data, 0o600)
        return _Original(digest, mode)

    def _blob(self, digest: str) -> Path:
        return self.backup_dir / digest

    def _collect_garbage(self) -> None:
        keep = {o.blob for o in [*self._baseline.values(), *self._iteration.values()]}
        for entry in self.backup_dir.iterdir():
            if len(entry.name) == 64 and entry.name not in keep:
                entry.unlink()


def put_back(worktree: Path, rel: str, data: bytes | None, mode: int | None) -> None:
    """Make ``rel`` hold ``data`` with ``mode`` again (``None``: not exist), outside any
    session and its policy: for undoing what a command in the sandbox changed (reviewing
    puts a protected file back as the base commit has it). Like the session, never writes
    through a symlink: a path that goes through a linked directory is refused, and a link
    at ``rel`` itself is replaced, not followed."""
    root = Path(os.path.realpath(worktree))
    path = root / rel
    if os.path.islink(path):
        path.unlink()
    real = resolve_inside(root, rel, must_exist=False, allow_dir=False)
    if relative(root, real) != rel:
        raise PathRefused(f"{rel!r} goes through a symlink; it cannot be put back", field="path")
    if data is None:
        if os.path.lexists(path):
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data, NEW_FILE_MODE if mode is None else mode)


def line_stat(old: bytes, new: bytes) -> tuple[int, int]:
    """(lines added, lines removed) between two versions of a file."""
    a = old.decode("utf-8", "replace").splitlines()
    b = new.decode("utf-8", "replace").splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


def _read_regular(path: Path, rel: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(f"{rel} cannot be opened: {exc.strerror}", field="path") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused(f"{rel} is not a regular file", field="path")
        return handle.read()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` by a file holding ``data``: written beside it, then renamed."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
