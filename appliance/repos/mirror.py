"""Bare mirrors of the registered repositories, and reading objects out of them.

``Mirrors(root)`` keeps one ``git clone --mirror`` per repository at ``root/<name>.git``
(a ``/`` in a name is stored as ``%2F``, so every mirror is one directory): the first
``ensure`` clones it (no submodules, ``--no-local`` so a local remote's files are never
hard-linked or followed), later ones ``fetch --prune``. A clone is made in a temporary
directory and renamed into place, so a failed or interrupted clone leaves nothing behind.

A mirror's fetch refspec is ``+refs/*:refs/*`` with ``--prune``: it would delete the
branches the appliance makes for its tasks, which the remote does not have (yet). Each
task branch is therefore added to the mirror's config as a negative refspec
(``^refs/heads/<branch>``, see :meth:`GitRepo.keep_branch`), and fetches leave it alone.
``remote.origin.mirror`` is unset after the clone, so a ``git push origin`` from a mirror
can never become a forced push of every ref.

``GitRepo(path)`` is the index's ``RepoReader`` over a bare repository: it reads trees and
blobs straight from the object store, never checking anything out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import Conflict, InvalidInput, RepoError
from appliance.index.types import Change, ChangeStatus, TreeEntry
from appliance.repos.git import (
    LOCAL_TIMEOUT,
    NETWORK_TIMEOUT,
    Credentials,
    GitResult,
    hooks_dir,
    run_git,
    split_credentials,
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_STATUS: dict[str, ChangeStatus] = {"A": "A", "M": "M", "D": "D", "T": "M"}
_MAX_DIRNAME = 240


@dataclass(frozen=True)
class FetchAccess:
    """How to reach a repository's remote: its token (sent as an HTTP header) and the git
    settings for its CA bundle, TLS switch and proxy (``http.sslCAInfo``,
    ``http.sslVerify``, ``http.proxy``). Both travel in git's environment, never in argv;
    :func:`appliance.forges.connect.fetch_access` builds one from a repository's settings."""

    token: str | None = None
    transport: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # neither the token nor a proxy password is ever printed
        token = "'***'" if self.token else "None"
        return f"FetchAccess(token={token}, transport={sorted(self.transport)})"


def check_ref_arg(ref: str, what: str = "ref") -> str:
    """Refuse what git could read as an option, or that holds spaces/control characters."""
    if not ref or ref.startswith("-") or any(c.isspace() or ord(c) < 32 for c in ref):
        raise RepoError(f"{ref!r} is not a valid {what}")
    return ref


class GitRepo:
    """A bare repository (a mirror): resolve refs, list trees, read blobs, diff commits."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"GitRepo({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".git").replace("%2F", "/")

    def git(
        self,
        *args: str,
        timeout: float = LOCAL_TIMEOUT,
        input: bytes | None = None,
        check: bool = True,
        credentials: Credentials | None = None,
        env_config: Mapping[str, str] | None = None,
    ) -> GitResult:
        return run_git(
            args,
            git_dir=self.path,
            timeout=timeout,
            input=input,
            check=check,
            credentials=credentials,
            env_config=env_config,
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of this repository's refs and config, across threads and processes
        (``flock`` on a file beside it): fetch, branch creation and config edits take it."""
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- RepoReader ----------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        check_ref_arg(ref)
        result = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if result.returncode != 0 or not _SHA.fullmatch(result.text):
            raise RepoError(f"{ref!r} names no commit in repository {self.name!r}")
        return result.text

    def tree(self, commit: str) -> list[TreeEntry]:
        check_ref_arg(commit, "commit")
        out = self.git("ls-tree", "-r", "-l", "-z", "--full-tree", commit).stdout
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, _kind, sha, size = meta.decode("ascii").split()
            entries.append(TreeEntry(os.fsdecode(path), mode, sha, int(size) if size != "-" else 0))
        return entries

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Contents of the given blobs, through one ``git cat-file --batch`` process."""
        wanted = list(dict.fromkeys(shas))
        bad = [s for s in wanted if not _SHA.fullmatch(s)]
        if bad:
            raise RepoError(f"not full lowercase object ids: {', '.join(map(repr, bad[:5]))}")
        if not wanted:
            return {}
        request = ("\n".join(wanted) + "\n").encode("ascii")
        data = self.git("cat-file", "--batch", "--buffer", input=request).stdout
        blobs: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = data.find(b"\n", pos)
            header = data[pos:end].decode("ascii", "replace").split()
            if len(header) != 3 or header[0] != sha:
                raise RepoError(f"object {sha} is missing from repository {self.name!r}")
            _, kind, size_text = header
            if kind != "blob":
                raise RepoError(f"object {sha} is a {kind}, not a blob")
            size = int(size_text)
            blobs[sha] = data[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1  # the content is followed by a newline
        return blobs

    def changes(self, old: str, new: str) -> list[Change]:
        """``git diff-tree`` (the plumbing of ``git diff --name-status --no-renames -z``)."""
        check_ref_arg(old, "commit")
        check_ref_arg(new, "commit")
        out = self.git(
            "diff-tree", "-r", "-z", "--no-renames", "--name-status", "--no-commit-id", old, new
        ).stdout
        fields = out.split(b"\0")
        found = []
        for status, path in zip(fields[0::2], fields[1::2], strict=False):
            letter = status.decode("ascii")
            if letter not in _STATUS:
                raise RepoError(f"unexpected change status {letter!r} for {os.fsdecode(path)}")
            found.append(Change(_STATUS[letter], os.fsdecode(path)))
        return found

    # --- beyond RepoReader -----------------------------------------------------------

    def default_branch(self) -> str:
        """The branch the mirror's HEAD names (the remote's default branch)."""
        result = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if result.returncode != 0 or not result.text:
            raise RepoError(f"repository {self.name!r} has no default branch (HEAD is detached)")
        return result.text

    def head_commit(self, branch: str) -> str:
        check_ref_arg(branch, "branch name")
        return self.resolve(f"refs/heads/{branch}")

    def has_branch(self, branch: str) -> bool:
        check_ref_arg(branch, "branch name")
        found = self.git("show-ref", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
        return found.returncode == 0

    def keep_branch(self, branch: str) -> None:
        """Make ``fetch --prune`` from origin leave ``refs/heads/<branch>`` alone (no-op for
        a repository without an origin). Call with :meth:`locked` held."""
        if self._origin_url() is None:
            return
        refspec = f"^refs/heads/{check_ref_arg(branch, 'branch name')}"
        if refspec not in self._fetch_refspecs():
            self.git("config", "--add", "remote.origin.fetch", refspec)

    def release_branch(self, branch: str) -> None:
        """Undo :meth:`keep_branch`. Call with :meth:`locked` held."""
        refspec = f"^refs/heads/{check_ref_arg(branch, 'branch name')}"
        if refspec in self._fetch_refspecs():
            self.git("config", "--fixed-value", "--unset-all", "remote.origin.fetch", refspec)

    def _fetch_refspecs(self) -> list[str]:
        found = self.git("config", "--get-all", "remote.origin.fetch", check=False)
        return found.text.splitlines() if found.returncode == 0 else []

    def _origin_url(self) -> str | None:
        found = self.git("config", "--get", "remote.origin.url", check=False)
        return found.text if found.returncode == 0 else None


class Mirrors:
    """One bare mirror per registered repository under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """Where the mirror of ``name`` lives (whether or not it exists yet)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
            raise InvalidInput(
                f"{name!r} is not a usable repository name: use letters, digits, '.', '_', "
                "'-' and '/', each part starting with a letter or digit",
                field="name",
            )
        dirname = name.replace("/", "%2F") + ".git"
        if len(dirname) > _MAX_DIRNAME:
            raise InvalidInput(f"repository name {name[:40]!r}... is too long", field="name")
        return self.root / dirname

    def get(self, name: str) -> GitRepo:
        """The existing mirror of ``name``; ``RepoError`` when it was never fetched."""
        path = self.path(name)
        if not (path / "HEAD").is_file():
            raise RepoError(f"repository {name!r} has no mirror yet; fetch it first")
        return GitRepo(path)

    def ensure(
        self,
        name: str,
        url: str,
        *,
        token: str | None = None,
        access: FetchAccess | None = None,
        username: str = "oauth2",
        timeout: float = NETWORK_TIMEOUT,
    ) -> GitRepo:
        """Clone ``url`` as the mirror of ``name`` the first time, fetch it afterwards.

        A token (``token``, else ``access.token``, else a password in the URL) is sent as
        an HTTP header set in git's environment; the URL stored in the mirror carries no
        credentials. ``access.transport`` (CA bundle, TLS switch, proxy) goes into git's
        environment the same way, as the push does.
        """
        access = access or FetchAccess()
        path = self.path(name)
        clean_url, credentials = split_credentials(
            url, token=token or access.token, username=username
        )
        transport = dict(access.transport)
        repo = GitRepo(path)
        self.root.mkdir(parents=True, exist_ok=True)
        with repo.locked():
            try:
                if path.exists():
                    self._fetch(repo, clean_url, credentials, transport, timeout)
                else:
                    self._clone(path, clean_url, credentials, transport, timeout)
            except RepoError as exc:
                raise _explained(exc) from exc
        return repo

    def remove(self, name: str) -> bool:
        """Delete the mirror of ``name``; False when there was none. Refused while a task
        worktree made from it still exists."""
        path = self.path(name)
        repo = GitRepo(path)
        with repo.locked():
            if not path.exists():
                return False
            live = [p for p in _worktree_paths(repo) if p.exists()]
            if live:
                raise Conflict(
                    f"repository {name!r} still has {len(live)} task worktree(s) "
                    f"({', '.join(p.name for p in live[:5])}); remove them first"
                )
            doomed = path.with_name(f".{path.name}.removing")
            shutil.rmtree(doomed, ignore_errors=True)
            path.rename(doomed)  # never leave a half-deleted mirror under the real name
            shutil.rmtree(doomed)
        return True

    def _clone(
        self,
        path: Path,
        url: str,
        credentials: Credentials | None,
        transport: Mapping[str, str],
        timeout: float,
    ) -> None:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".cloning", dir=path.parent)
        )
        try:
            run_git(
                [
                    "clone",
                    "--mirror",
                    "--no-local",
                    f"--template={hooks_dir()}",  # empty: no sample hooks, no info/exclude
                    "--quiet",
                    "--",
                    url,
                    str(staging),
                ],
                credentials=credentials,
                env_config=transport,
                timeout=timeout,
            )
            # --mirror also sets remote.origin.mirror, which turns any `git push origin`
            # into a forced push of every ref (deletions included): fetching never needs it.
            GitRepo(staging).git("config", "--unset", "remote.origin.mirror")
            staging.rename(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(
        self,
        repo: GitRepo,
        url: str,
        credentials: Credentials | None,
        transport: Mapping[str, str],
        timeout: float,
    ) -> None:
        origin = repo._origin_url()
        if origin is None:
            raise RepoError(
                f"{repo.path} is not a mirror made by the appliance (no origin); remove it"
            )
        if origin != url:
            repo.git("config", "remote.origin.url", url)
        fetch = ("fetch", "--prune", "--quiet", "--no-recurse-submodules", "--no-write-fetch-head")
        repo.git(*fetch, "origin", timeout=timeout, credentials=credentials, env_config=transport)
        # The remote's default branch may have changed (master -> main): follow it.
        head = repo.git(
            "ls-remote", "--symref", "origin", "HEAD",
            timeout=timeout, credentials=credentials, env_config=transport,
        ).text  # fmt: skip
        for line in head.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                target = line[len("ref: ") : -len("\tHEAD")]
                if repo.git("show-ref", "--verify", "--quiet", target, check=False).returncode == 0:
                    repo.git("symbolic-ref", "HEAD", target)


_CERTIFICATE = (
    "ssl certificate",
    "certificate verif",
    "server certificate",
    "certificate problem",
    "setting certificate",
)


def _explained(exc: RepoError) -> RepoError:
    """A certificate failure says which settings fix it; other failures pass unchanged."""
    if not any(marker in exc.message.lower() for marker in _CERTIFICATE):
        return exc
    return RepoError(
        f"{exc.message}\nThe remote's TLS certificate is not trusted: set the repository's "
        "CA bundle (forge.ca_bundle, a PEM file of the CA that signed it) or, knowingly, "
        "forge.verify_tls=false."
    )


def _worktree_paths(repo: GitRepo) -> list[Path]:
    """Linked worktrees git knows for ``repo`` (not the bare repository itself)."""
    out = repo.git("worktree", "list", "--porcelain", "-z").stdout.decode("utf-8", "replace")
    paths = [Path(f[len("worktree ") :]) for f in out.split("\0") if f.startswith("worktree ")]
    return [p for p in paths if p.resolve() != repo.path.resolve()]
