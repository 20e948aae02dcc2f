"""What an edit may touch: protected paths, the request's files to avoid, the file budget.

The write tools ask :meth:`EditPolicy.check_write` before every change, so these rules hold
whatever the prompt says. Paths are worktree-relative with forward slashes, after
:func:`~appliance.tools.paths.resolve_inside` (which already refuses ``.git/``, ``..``,
absolute paths and symlink escapes). Patterns use ``.gitignore`` syntax (``pathspec``'s
``GitIgnoreSpec``): ``secrets.py`` matches at any depth, ``shop/secrets.py`` only there,
``config/**`` everything below ``config/``, and ``!pattern`` re-includes.

The rules, in the order they are checked:

1. the request's ``avoid_files`` (the user asked for these to stay unchanged);
2. the repository's ``protected`` globs;
3. the built-in protections, :data:`BUILTIN_PROTECTED`: CI definitions (a change there runs
   with the CI's secrets once pushed) and files that usually hold credentials. A repository
   lifts one by listing matching globs in ``unprotected`` (``.github/workflows/**`` for a
   repository whose tasks are about its CI); ``unprotected`` lifts only built-in rules,
   never the repository's own ``protected`` nor the request's ``avoid_files``;
4. ``max_files_changed``: a file that is not changed yet cannot be changed once that many
   files already are. Files already changed can always be changed again (or restored).
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import Final

import pathspec
from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import PathRefused

#: Protected unless the repository lists them in ``unprotected``.
BUILTIN_PROTECTED: Final[tuple[str, ...]] = (
    # CI definitions: they run with the CI's secrets once the branch is pushed
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".gitlab/ci/**",
    ".circleci/**",
    ".travis.yml",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".buildkite/**",
    # who reviews what
    "CODEOWNERS",
    # files that usually hold credentials
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    ".npmrc",
    ".pypirc",
    ".netrc",
)


class EditPolicy(BaseModel):
    """The rules one task's edits follow; built from the repository's settings and the
    request's constraints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protected: list[str] = Field(
        default_factory=list,
        description="The repository's protected paths (.gitignore-style globs).",
    )
    avoid_files: list[str] = Field(
        default_factory=list,
        description="Files the request asks to leave unchanged (.gitignore-style globs).",
    )
    max_files_changed: int | None = Field(
        default=None, ge=1, description="At most this many files changed in the whole task."
    )
    unprotected: list[str] = Field(
        default_factory=list,
        description=(
            "Globs the repository lets the agent change despite the built-in protections "
            "(CI definitions, credential files), e.g. '.github/workflows/**'."
        ),
    )

    @cached_property
    def _avoid(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines(self.avoid_files)

    @cached_property
    def _protected(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines(self.protected)

    @cached_property
    def _builtin(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines(BUILTIN_PROTECTED)

    @cached_property
    def _unprotected(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines(self.unprotected)

    def check_path(self, rel_path: str) -> None:
        """``PathRefused`` naming the rule when ``rel_path`` may not be written at all."""
        pattern = _matching(self._avoid, rel_path)
        if pattern is not None:
            raise PathRefused(
                f"{rel_path} is in the request's files to avoid ({pattern!r}); leave it "
                "unchanged and make the change elsewhere",
                field="path",
            )
        pattern = _matching(self._protected, rel_path)
        if pattern is not None:
            raise PathRefused(
                f"{rel_path} is protected by this repository's settings ({pattern!r}); "
                "leave it unchanged and make the change elsewhere",
                field="path",
            )
        pattern = _matching(self._builtin, rel_path)
        if pattern is not None and not self._unprotected.match_file(rel_path):
            raise PathRefused(
                f"{rel_path} is protected ({pattern!r}: CI definitions and credential files "
                "are not changed by the agent unless the repository allows it); leave it "
                "unchanged",
                field="path",
            )

    def check_count(self, rel_paths: Collection[str], changed: Collection[str]) -> None:
        """``PathRefused`` when changing ``rel_paths`` would pass ``max_files_changed``,
        given the files ``changed`` so far in the task."""
        limit = self.max_files_changed
        if limit is None:
            return
        new = sorted(set(rel_paths) - set(changed))
        if not new or len(changed) + len(new) <= limit:
            return
        listed = ", ".join(sorted(changed)) or "none"
        raise PathRefused(
            f"changing {', '.join(new)} would change more than {limit} "
            f"file{'s' if limit != 1 else ''}, the most this request allows; the files "
            f"changed so far are: {listed}. Make the change within those files, or undo "
            "one of them first",
            field="path",
        )

    def check_write(self, rel_path: str, changed: Collection[str] = ()) -> None:
        """Both checks for one file: the path rules, then the file budget."""
        self.check_path(rel_path)
        self.check_count([rel_path], changed)

    def breaches(self, changed: Collection[str]) -> tuple[dict[str, str], str | None]:
        """The rules a finished change breaks, whatever made it (the write tools, or a
        command in the sandbox, which the tools never see): ``({path: why}, None)`` for
        files that may not be changed at all (anything in ``.git/`` included), and a
        message when more than ``max_files_changed`` files differ from the base."""
        refused: dict[str, str] = {}
        for rel in sorted(set(changed)):
            if ".git" in rel.split("/"):
                refused[rel] = f"{rel} is inside .git/, which the agent never changes"
                continue
            try:
                self.check_path(rel)
            except PathRefused as exc:
                refused[rel] = exc.message
        too_many = None
        limit = self.max_files_changed
        if limit is not None and len(set(changed)) > limit:
            too_many = (
                f"{len(set(changed))} files are changed ({', '.join(sorted(set(changed)))}), "
                f"more than the {limit} this request allows"
            )
        return refused, too_many


def _matching(spec: pathspec.GitIgnoreSpec, path: str) -> str | None:
    """The pattern that decides ``path`` is matched, or None when it is not."""
    result = spec.check_file(path)
    if not result.include or result.index is None:
        return None
    return str(getattr(spec.patterns[result.index], "pattern", path))
