"""Every path a tool touches is resolved here, inside the task's worktree.

The worktree is an untrusted repository and the model's arguments are untrusted text, so a
path is checked twice over:

1. as text: no NUL byte, not absolute, no leading ``~``, no ``..`` component, no ``.git``
   component (the repository's metadata, or the ``.git`` file of a linked worktree);
2. on disk, one component at a time with ``lstat``: a symlink is followed only when its
   fully resolved target stays inside the worktree and outside ``.git``, so a symlinked
   directory, a chain of links or a link to ``/etc`` cannot lead anywhere else; the final
   object must be a regular file or a directory, never a device, FIFO or socket.

What comes back is the real path (every link resolved), so a caller that opens it reads
exactly what was checked. Callers open with ``O_NOFOLLOW`` as a second guard.

Every refusal is a :class:`~appliance.errors.PathRefused` whose message tells the model what
to send instead; a path that is fine but missing or of the wrong kind is an
:class:`~appliance.errors.InvalidInput` naming the tool to use.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import InvalidInput, PathRefused

_EXAMPLE = "give a path relative to the worktree root, like 'src/app.py'"


def relative(worktree: Path, path: Path) -> str:
    """``path`` relative to the worktree, with forward slashes; ``"."`` for the root."""
    rel = path.relative_to(worktree.resolve()).as_posix()
    return rel if rel else "."


def resolve_inside(
    worktree: Path, path: str, *, must_exist: bool = True, allow_dir: bool = True
) -> Path:
    """The real path ``path`` names inside ``worktree``, or ``PathRefused`` saying why not.

    A path that is allowed but missing, or a directory where a file is wanted, raises plain
    ``InvalidInput`` (not a refusal: the model just needs another path).

    With ``must_exist=False`` a missing tail is allowed (a file about to be created), but
    every component that does exist is still checked. With ``allow_dir=False`` a directory
    is refused (the tool wants a file).
    """
    root = Path(os.path.realpath(worktree))
    parts = _check_text(path)
    current = root
    for index, part in enumerate(parts):
        candidate = current / part
        try:
            info = candidate.lstat()
        except FileNotFoundError:
            if must_exist:
                raise InvalidInput(
                    f"{path!r} does not exist (no {relative(root, candidate)!r}); "
                    "use list_directory or search_code to find the right path",
                    field="path",
                ) from None
            return candidate.joinpath(*parts[index + 1 :])
        except OSError as exc:
            raise PathRefused(f"{path!r} cannot be read: {exc.strerror}", field="path") from None
        if stat.S_ISLNK(info.st_mode):
            current = _follow_link(root, candidate, path, must_exist=must_exist)
        else:
            current = candidate
        if index < len(parts) - 1 and current.exists() and not current.is_dir():
            raise InvalidInput(
                f"{path!r}: {relative(root, current)!r} is a file, not a directory",
                field="path",
            )
    _check_kind(current, path, allow_dir=allow_dir)
    return current


def _check_text(path: str) -> list[str]:
    """The path's components, after the checks that need no disk."""
    if "\x00" in path:
        raise PathRefused("the path contains a NUL byte; " + _EXAMPLE, field="path")
    if not path.strip():
        raise PathRefused("the path is empty; use '.' for the worktree root", field="path")
    if path.startswith("/"):
        raise PathRefused(
            f"{path!r} is an absolute path; paths are relative to the worktree root, "
            f"like {path.lstrip('/').split('/')[-1]!r} or 'src/app.py'",
            field="path",
        )
    if path.startswith("~"):
        raise PathRefused(f"{path!r} starts with '~'; " + _EXAMPLE, field="path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused(
            f"{path!r} contains '..'; paths cannot leave the worktree: " + _EXAMPLE,
            field="path",
        )
    if any(part.lower() == ".git" for part in parts):
        raise PathRefused(
            f"{path!r} is inside .git; the repository's metadata is off limits "
            "(read the working files instead)",
            field="path",
        )
    return parts


def _follow_link(root: Path, link: Path, path: str, *, must_exist: bool) -> Path:
    """Where the symlink ``link`` finally points, if that is inside the worktree."""
    target = Path(os.path.realpath(link))
    name = relative(root, link)
    if not target.is_relative_to(root):
        raise PathRefused(
            f"{path!r}: {name!r} is a symlink to {os.readlink(link)!r}, which leaves the "
            "worktree; only files inside the worktree can be used",
            field="path",
        )
    if target.is_symlink():
        raise PathRefused(f"{path!r}: {name!r} is a symlink loop", field="path")
    rel = target.relative_to(root)
    if any(part.lower() == ".git" for part in rel.parts):
        raise PathRefused(
            f"{path!r}: {name!r} is a symlink into .git, which is off limits", field="path"
        )
    if not os.path.lexists(target):
        if must_exist:
            raise InvalidInput(
                f"{path!r}: {name!r} is a symlink to {os.readlink(link)!r}, which does not exist",
                field="path",
            )
        raise PathRefused(
            f"{path!r}: {name!r} is a dangling symlink; remove it before writing there",
            field="path",
        )
    return target


def _check_kind(real: Path, path: str, *, allow_dir: bool) -> None:
    """Only regular files and (when allowed) directories; never devices, FIFOs, sockets."""
    mode = real.lstat().st_mode
    if stat.S_ISDIR(mode):
        if not allow_dir:
            raise InvalidInput(
                f"{path!r} is a directory, not a file; use list_directory to see what is in it",
                field="path",
            )
        return
    if not stat.S_ISREG(mode):
        raise PathRefused(
            f"{path!r} is a {_kind_name(mode)}, not a regular file; tools read regular files only",
            field="path",
        )


def _kind_name(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"
