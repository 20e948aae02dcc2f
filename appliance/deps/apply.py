"""Applying a bump group to a worktree, and which command refreshes its lockfile.

:func:`apply_group` rewrites the manifests in place: for every bump (lock-only bumps
excepted) it replaces exactly the spec's span. Before any file is written, every span
is checked to still hold the text that was scanned, and every path to lie inside the
worktree and not be a symlink; a mismatch raises :class:`RewriteConflict` and nothing
is written. Edits to one file are applied from the end backwards, so offsets hold.
Dependencies that share a span (a Maven property) edit it once; two bumps that would
write different text into one span are a conflict.

:func:`lockfile_command` says how to refresh a lockfile after the manifests changed, in
the sandbox, against its offline cache/mirror: the lead runs it there. A command exists
only when the tool's lockfile is present in the worktree. ``update`` names packages
whose lock entry must move although their range already admits the target (lock-only
bumps): npm then runs ``npm update`` for them.

Go's lockfile is ``go.sum``: ``go mod tidy`` records the new versions' hashes (and raises
or drops the indirect requirements MVS now needs), reading modules through the sandbox's
GOPROXY. Maven has no lockfile.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from appliance.deps.errors import RewriteConflict
from appliance.deps.model import Ecosystem, Location
from appliance.deps.plan import BumpGroup
from appliance.deps.requirements_txt import read_text

_NPM_FLAGS = ["--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"]


def apply_group(worktree: Path, group: BumpGroup) -> list[Path]:
    """Rewrite the manifests for ``group``; the files changed, in a stable order."""
    root = worktree.resolve()
    edits: dict[Path, dict[tuple[int, int], tuple[Location, str]]] = {}
    for bump in group.bumps:
        if bump.lock_only:
            continue
        path = root / bump.dep.file
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise RewriteConflict(f"{bump.dep.file} is a link or lies outside the worktree")
        location = bump.dep.location
        span = (location.start, location.end)
        earlier = edits.setdefault(path, {}).get(span)
        if earlier is not None and earlier[1] != bump.new_spec:
            raise RewriteConflict(
                f"{location.file} line {location.line}: two bumps would write "
                f"{earlier[1]!r} and {bump.new_spec!r} into {bump.dep.via or 'the same spec'}; "
                "plan again so that they move together"
            )
        edits[path][span] = (location, bump.new_spec)
    texts: dict[Path, str] = {}
    for path, by_span in edits.items():
        changes = list(by_span.values())
        if not path.is_file():
            raise RewriteConflict(f"{path.relative_to(root)} is gone; scan the worktree again")
        text = read_text(path)
        for location, _ in changes:
            found = text[location.start : location.end]
            if found != location.original:
                raise RewriteConflict(
                    f"{location.file} line {location.line} changed since it was scanned "
                    f"(expected {location.original!r}, found {found!r}); scan the worktree again"
                )
        for location, new in sorted(changes, key=lambda c: c[0].start, reverse=True):
            text = text[: location.start] + new + text[location.end :]
        texts[path] = text
    for path, text in texts.items():
        path.write_bytes(text.encode("utf-8"))
    return sorted(texts)


def lockfile_command(
    worktree: Path, ecosystem: Ecosystem, *, update: Sequence[str] = ()
) -> list[str] | None:
    """The argv that refreshes ``ecosystem``'s lockfile in ``worktree`` (None: no lockfile)."""
    if ecosystem == "npm":
        if (worktree / "package-lock.json").is_file():
            if update:
                return ["npm", "update", *_NPM_FLAGS, *update]
            return ["npm", "install", *_NPM_FLAGS]
        if (worktree / "pnpm-lock.yaml").is_file():
            return ["pnpm", "install", "--lockfile-only", "--ignore-scripts"]
        if (worktree / "yarn.lock").is_file():
            return ["yarn", "install", "--mode=update-lockfile"]
        return None
    if ecosystem == "go":
        return ["go", "mod", "tidy"] if (worktree / "go.sum").is_file() else None
    if ecosystem == "maven":
        return None
    if (worktree / "uv.lock").is_file():
        return ["uv", "lock", *(a for name in update for a in ("--upgrade-package", name))]
    if (worktree / "poetry.lock").is_file():
        return ["poetry", "lock"]
    if (worktree / "pdm.lock").is_file():
        return ["pdm", "lock", "--update-reuse"]
    if (worktree / "requirements.in").is_file():
        upgrades = [a for name in update for a in ("--upgrade-package", name)]
        return ["pip-compile", "--quiet", *upgrades, "requirements.in"]
    return None
