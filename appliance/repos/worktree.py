"""One git worktree per task, on a new branch, made from the repository's bare mirror.

Layout under ``root``: ``<task_id>/`` is the checkout (what the sandbox mounts);
``.records/<task_id>.json`` says which mirror, branch, base commit and git admin
directory (``<mirror>/worktrees/<id>``) belong to it. The record lives outside the checkout
on purpose: once the sandbox has run, everything in the checkout is untrusted, its
``.git`` file included (it could point git at a directory holding a config with
``core.fsmonitor`` or filter commands). So no git call here discovers the repository from
the checkout: each names ``--git-dir`` (the admin directory recorded at creation) and
``--work-tree`` explicitly, and removal deletes the directory itself and then runs
``git worktree prune`` instead of trusting ``git worktree remove`` to read ``.git``.

A nested repository in the checkout (a ``.git`` below the top, which only a task can have
made) is refused by :meth:`Worktrees.commit_all` and :meth:`Worktrees.diff`: git would
record it as a submodule and look inside it.

Nothing in the checkout runs: hooks come from an empty directory, the global and system
config (where filter/textconv commands could be defined) are not read, and the mirror's own
config never defines a filter, so a ``.gitattributes`` naming one is inert.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from appliance.errors import Conflict, InvalidInput, NotFound, RepoError
from appliance.repos.git import CHECKOUT_TIMEOUT, LOCAL_TIMEOUT, GitResult, run_git
from appliance.repos.mirror import GitRepo

log = logging.getLogger(__name__)

_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Calls inside a checkout never look into nested repositories (git status/diff would run
# git there, with that repository's own config).
_WORKTREE_CONFIG = {"diff.ignoreSubmodules": "all", "status.submoduleSummary": "false"}


@dataclass(frozen=True)
class Worktree:
    task_id: str
    path: Path  # the checkout
    branch: str
    repo: Path  # the bare mirror it was made from
    base: str  # the commit the branch started at
    git_dir: Path | None  # its admin directory in the mirror; None while being made


class Worktrees:
    """Task worktrees under ``root``, each on its own new branch."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._records = self.root / ".records"

    # --- where and what -----------------------------------------------------------

    def path(self, task_id: str) -> Path:
        """Where the worktree of ``task_id`` lives (whether or not it exists)."""
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise InvalidInput(
                f"{task_id!r} is not a usable task id: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 128 characters",
                field="task_id",
            )
        return self.root.absolute() / task_id

    def get(self, task_id: str) -> Worktree:
        self.path(task_id)
        record = self._record_path(task_id)
        if not record.is_file():
            raise NotFound(f"task {task_id!r} has no worktree")
        return _load(record)

    def list(self) -> builtins.list[Worktree]:
        found = []
        for record in sorted(self._records.glob("*.json")):
            try:
                found.append(_load(record))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable worktree record %s: %s", record, exc)
        return found

    # --- create and remove ---------------------------------------------------------

    def create(self, repo: GitRepo, *, task_id: str, branch: str, base: str) -> Path:
        """``git worktree add -b <branch> <root>/<task_id> <base>`` from the bare mirror."""
        path = self.path(task_id)
        record_path = self._record_path(task_id)
        if os.path.lexists(path) or record_path.exists():
            raise Conflict(f"task {task_id!r} has a worktree already ({path})")
        check_branch_name(repo, branch)
        commit = repo.resolve(base)
        self._records.mkdir(parents=True, exist_ok=True)
        record = Worktree(task_id, path, branch, repo.path.absolute(), commit, None)
        with repo.locked():  # a concurrent fetch --prune must see the branch kept first
            if repo.has_branch(branch):
                raise Conflict(
                    f"branch {branch!r} exists already in repository {repo.name!r}; "
                    "choose another branch name"
                )
            repo.git("worktree", "prune")
            _save(record_path, record)  # first, so prune_stale finds a half-made worktree
            repo.keep_branch(branch)
            try:
                add = ("worktree", "add", "--quiet", "--no-track", "-b", branch)
                repo.git(*add, "--", str(path), commit, timeout=CHECKOUT_TIMEOUT)
                git_dir = _admin_dir(path, repo)
            except BaseException:
                _remove_tree(path)
                repo.git("worktree", "prune", check=False)
                if repo.has_branch(branch):  # made by this call: it did not exist above
                    repo.git("update-ref", "-d", f"refs/heads/{branch}", commit, check=False)
                repo.release_branch(branch)
                record_path.unlink(missing_ok=True)
                raise
        _save(record_path, replace(record, git_dir=git_dir))
        log.info("worktree for task %s on branch %s at %s", task_id, branch, commit[:12])
        return path

    def remove(self, task_id: str) -> None:
        """Delete the checkout and git's record of it; the branch stays in the mirror."""
        worktree = self.get(task_id)
        _remove_tree(worktree.path)
        if (worktree.repo / "HEAD").is_file():
            GitRepo(worktree.repo).git("worktree", "prune")
        self._record_path(task_id).unlink(missing_ok=True)

    def prune_stale(self) -> builtins.list[str]:
        """Forget the worktrees whose directory vanished; returns their task ids."""
        pruned = []
        for worktree in self.list():
            if os.path.lexists(worktree.path):
                continue
            if (worktree.repo / "HEAD").is_file():
                GitRepo(worktree.repo).git("worktree", "prune")
            self._record_path(worktree.task_id).unlink(missing_ok=True)
            pruned.append(worktree.task_id)
        return pruned

    # --- commit and diff -------------------------------------------------------------

    def commit_all(
        self, worktree: Path, message: str, *, author_name: str, author_email: str
    ) -> str:
        """Stage everything (new, changed, deleted; ignored files stay out) and commit it on
        the task's branch with the given identity; returns the new commit's sha."""
        record = self._record_of(worktree)
        if not message.strip():
            raise InvalidInput("the commit message is empty", field="message")
        if not author_name.strip() or not author_email.strip():
            raise InvalidInput("a commit needs an author name and e-mail", field="author")
        _refuse_nested_repositories(record.path)
        _git(record, "add", "--all", timeout=CHECKOUT_TIMEOUT)
        staged = _git(record, "diff", "--cached", "--quiet", "HEAD", "--", check=False)
        if staged.returncode == 0:
            raise RepoError(
                f"nothing to commit: the worktree of task {record.task_id!r} has no change "
                f"since its last commit on {record.branch!r}"
            )
        if staged.returncode != 1:
            _git(record, "diff", "--cached", "--quiet", "HEAD", "--")  # raises with stderr
        identity = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
        }
        _git(
            record,
            *("commit", "--quiet", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace"),
            "--file=-",
            input=message.encode(),
            env=identity,
            timeout=CHECKOUT_TIMEOUT,
        )
        return _git(record, "rev-parse", "--verify", "HEAD").text

    def diff(self, worktree: Path, base: str) -> str:
        """Unified diff from ``base`` to the worktree as it is now, untracked (not ignored)
        files included, binary files as ``Binary files ... differ``. The real index is not
        touched: the files are staged into a copy of it."""
        record = self._record_of(worktree)
        _refuse_nested_repositories(record.path)
        commit = GitRepo(record.repo).resolve(base)
        assert record.git_dir is not None  # _record_of checked
        with tempfile.TemporaryDirectory(prefix="appliance-diff-") as scratch:
            index = Path(scratch) / "index"
            if (record.git_dir / "index").is_file():
                shutil.copyfile(record.git_dir / "index", index)  # keeps the stat cache
            env = {"GIT_INDEX_FILE": str(index)}
            _git(record, "add", "--all", env=env, timeout=CHECKOUT_TIMEOUT)
            out = _git(
                record,
                *("diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv"),
                *("--find-renames", "--src-prefix=a/", "--dst-prefix=b/", commit, "--"),
                env=env,
                timeout=CHECKOUT_TIMEOUT,
            )
        return out.stdout.decode("utf-8", "replace")

    # --- internals ---------------------------------------------------------------------

    def _record_path(self, task_id: str) -> Path:
        return self._records / f"{task_id}.json"

    def _record_of(self, worktree: Path) -> Worktree:
        path = Path(worktree).absolute()
        if path.parent.resolve() != self.root.resolve():
            raise InvalidInput(f"{worktree} is not a task worktree under {self.root}")
        record = self.get(path.name)
        if record.git_dir is None or not (record.git_dir / "HEAD").is_file():
            raise RepoError(
                f"the worktree of task {record.task_id!r} is incomplete or its mirror is gone; "
                "remove it and create it again"
            )
        return record


def check_branch_name(repo: GitRepo, branch: str) -> None:
    """``git check-ref-format --branch``, refusing anything it would rewrite (``@{-1}``)."""
    problem = None
    if not branch or branch.startswith("-") or branch == "HEAD":
        problem = "it is empty, starts with '-' or is HEAD"
    else:
        checked = repo.git("check-ref-format", "--branch", branch, check=False)
        if checked.returncode != 0 or checked.text != branch:
            problem = "git refuses it (no spaces, '..', '~', '^', ':', '?', '*', '[', '\\', "
            problem += "'@{', no '.lock' or '/' at the end)"
    if problem:
        raise InvalidInput(f"{branch!r} is not a valid branch name: {problem}", field="branch")


def _git(
    record: Worktree,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = LOCAL_TIMEOUT,
    check: bool = True,
) -> GitResult:
    return run_git(
        args,
        git_dir=record.git_dir,
        work_tree=record.path,
        cwd=record.path,
        config=_WORKTREE_CONFIG,
        env=env,
        input=input,
        timeout=timeout,
        check=check,
    )


def _admin_dir(path: Path, repo: GitRepo) -> Path:
    """The admin directory ``git worktree add`` just wrote into ``path/.git`` (read once,
    before anything else could touch the checkout)."""
    text = (path / ".git").read_text().strip()
    admin = Path(text.removeprefix("gitdir:").strip())
    if (
        not text.startswith("gitdir:")
        or admin.resolve().parent != (repo.path / "worktrees").resolve()
    ):
        raise RepoError(f"git wrote an unexpected .git file in {path}: {text[:200]!r}")
    return admin


def _refuse_nested_repositories(top: Path) -> None:
    nested = []
    for dirpath, dirnames, filenames in os.walk(top):
        if ".git" in dirnames or ".git" in filenames:
            if Path(dirpath) != top:
                nested.append(os.path.relpath(dirpath, top))
            if ".git" in dirnames:
                dirnames.remove(".git")
        if len(nested) >= 5:
            break
    if nested:
        raise RepoError(
            f"the worktree holds nested git repositories ({', '.join(nested)}): git would "
            "record them as submodules; delete their .git and try again"
        )


def _remove_tree(path: Path) -> None:
    """Delete ``path`` without following any symlink in it, making read-only directories
    writable on the way down."""
    if os.path.islink(path):
        path.unlink()
        return
    if not path.exists():
        return
    try:
        path.chmod(0o700)
        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                child = os.path.join(dirpath, name)
                if not os.path.islink(child):
                    os.chmod(child, 0o700)
        shutil.rmtree(path)
    except OSError as exc:
        raise RepoError(f"could not delete the worktree {path}: {exc}") from exc


def _save(record_path: Path, worktree: Worktree) -> None:
    data: dict[str, Any] = asdict(worktree)
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
    scratch = record_path.with_suffix(".tmp")
    scratch.write_text(json.dumps(data, indent=1))
    os.replace(scratch, record_path)


def _load(record_path: Path) -> Worktree:
    data = json.loads(record_path.read_text())
    git_dir = data["git_dir"]
    return Worktree(
        task_id=data["task_id"],
        path=Path(data["path"]),
        branch=data["branch"],
        repo=Path(data["repo"]),
        base=data["base"],
        git_dir=Path(git_dir) if git_dir else None,
    )
