"""Running a task's commands, tests and linter in its sandbox.

:class:`TaskSandbox` keeps one container for the task: opened on first use (after the
repository's dependencies are fetched into its offline caches, :mod:`sandbox.deps`),
reopened if it died, and removed by :meth:`TaskSandbox.close` when the task ends. A
TaskSandbox that is dropped without ``close()`` removes its container when it is
collected (``weakref.finalize``), and the container's ``session_max_s`` and the orphan
sweep at start-up bound anything a crash leaves. The worktree is mounted at /workspace.
Test runs are compared by test id: :func:`new_failures` is what a change broke, so
failures that were there before any edit (the baseline) never count against the agent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sandbox.base import OutputCallback, RunResult
from sandbox.deps import (
    cache_dir_for,
    npm_packages,
    prepare_npm_cache,
    prepare_wheelhouse,
    python_requirements,
)
from sandbox.errors import SandboxError, SessionClosed
from sandbox.lint import LintRun, run_linter
from sandbox.policy import SandboxPolicy
from sandbox.testrun import TestRun, run_tests

log = logging.getLogger(__name__)
T = TypeVar("T")


class SandboxOpener(Protocol):
    """:class:`sandbox.podman.PodmanSandbox` as the pipeline uses it."""

    def open(
        self,
        worktree: Path,
        policy: SandboxPolicy,
        *,
        task_id: str,
        wheelhouse: Path | None = None,
        npm_cache: Path | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class DepsSource:
    """Where a repository's offline dependency caches live and the mirrors that fill
    them (``settings.deps``); an empty URL means that kind is not fetched."""

    cache_root: Path  # data_dir / "deps"
    repository: str
    python_index_url: str = ""
    npm_registry_url: str = ""


@dataclass(frozen=True)
class PreparedDeps:
    wheelhouse: Path | None = None
    npm_cache: Path | None = None
    note: str = ""  # why a cache could not be prepared ("" = all went well)


def prepare_deps(worktree: Path, source: DepsSource) -> PreparedDeps:
    """Fill the repository's caches for what ``worktree`` declares. A cache whose inputs
    (requirements, lockfile) are unchanged since it was last filled is reused as is;
    failures become a note, never an exception."""
    wheelhouse = npm_cache = None
    notes: list[str] = []
    try:
        requirements = python_requirements(worktree) if source.python_index_url else []
        if requirements:
            cache = cache_dir_for(source.cache_root, source.repository, "wheelhouse")
            with _filled_once(cache, "\n".join(requirements)) as fresh:
                if not fresh:
                    prepare_wheelhouse(worktree, cache, index_url=source.python_index_url)
            wheelhouse = cache
    except (SandboxError, OSError) as exc:
        notes.append(f"Python dependencies were not fetched: {_message(exc)}")
    try:
        packages = npm_packages(worktree) if source.npm_registry_url else []
        if packages:
            cache = cache_dir_for(source.cache_root, source.repository, "npm-cache")
            with _filled_once(cache, "\n".join(packages)) as fresh:
                if not fresh:
                    prepare_npm_cache(worktree, cache, registry=source.npm_registry_url)
            npm_cache = cache
    except (SandboxError, OSError) as exc:
        notes.append(f"npm dependencies were not fetched: {_message(exc)}")
    note = "; ".join(notes)
    if note:
        note += " (installs in the sandbox run offline and will miss them)"
        log.warning("%s: %s", source.repository, note)
    return PreparedDeps(wheelhouse, npm_cache, note)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, SandboxError) else str(exc)


@contextlib.contextmanager
def _filled_once(cache: Path, inputs: str) -> Iterator[bool]:
    """Under a lock shared by every task of the repository: yields True when ``cache``
    was already filled for exactly these inputs; records them when the body succeeds."""
    cache.mkdir(parents=True, exist_ok=True)
    stamp = cache / ".inputs-sha256"
    digest = hashlib.sha256(inputs.encode()).hexdigest()
    with (cache.parent / f"{cache.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = stamp.is_file() and stamp.read_text().strip() == digest
        yield fresh
        if not fresh:
            stamp.write_text(digest + "\n")


def _close_session(holder: dict[str, Any]) -> None:
    session = holder.pop("session", None)
    if session is not None:
        with contextlib.suppress(SandboxError):
            session.close()


@dataclass
class TaskSandbox:
    """The task's sandbox: one container across all its commands, tests and lint runs.

    ``on_output`` receives live output (stream, bytes) of every call; ``deps`` names the
    repository's dependency caches (None: no dependencies are fetched). Call
    :meth:`close` when the task ends."""

    sandbox: SandboxOpener
    worktree: Path
    task_id: str
    policy: SandboxPolicy
    test_command: str | None = None  # a repository setting; None = detected
    on_output: OutputCallback | None = None
    deps: DepsSource | None = None
    deps_note: str = field(default="", init=False)  # why dependencies are missing, if so
    _holder: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _finalizer: weakref.finalize[Any, Any] | None = field(default=None, init=False, repr=False)
    _prepared: PreparedDeps | None = field(default=None, init=False, repr=False)
    _note_due: bool = field(default=False, init=False, repr=False)

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> RunResult:
        result = self._with_session(
            lambda s: s.run(
                ["/bin/sh", "-c", command], timeout=timeout, on_output=self._out(on_output)
            )
        )
        return self._noted(result)

    def tests(
        self, *, timeout: float | None = None, on_output: OutputCallback | None = None
    ) -> TestRun:
        run = self._with_session(
            lambda s: run_tests(
                s,
                self.worktree,
                command=self.test_command,
                timeout=timeout,
                on_output=self._out(on_output),
            )
        )
        if self.deps_note and not run.note:
            run = dataclasses.replace(run, note=self.deps_note)
        return run

    def lint(
        self, *, timeout: float | None = None, on_output: OutputCallback | None = None
    ) -> LintRun:
        return self._with_session(
            lambda s: run_linter(s, self.worktree, timeout=timeout, on_output=self._out(on_output))
        )

    def close(self) -> None:
        """Remove the task's container (safe to call more than once)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()  # runs _close_session once, then detaches
                self._finalizer = None

    @property
    def is_open(self) -> bool:
        session = self._holder.get("session")
        return session is not None and not getattr(session, "closed", False)

    def _out(self, on_output: OutputCallback | None) -> OutputCallback | None:
        return on_output or self.on_output

    def _noted(self, result: RunResult) -> RunResult:
        """The first result after a failed preparation says what is missing, once."""
        if not self._note_due:
            return result
        self._note_due = False
        return dataclasses.replace(result, stderr=f"[{self.deps_note}]\n{result.stderr}")

    def _with_session(self, use: Callable[[Any], T]) -> T:
        """``use(session)``; a session whose container died is replaced once."""
        try:
            return use(self._session())
        except SessionClosed:
            log.warning("task %s: its sandbox was gone; opening a new one", self.task_id)
            self.close()
            return use(self._session())

    def _session(self) -> Any:
        with self._lock:
            session = self._holder.get("session")
            if session is not None and not getattr(session, "closed", False):
                return session
            if session is not None:  # died (watchdog, expiry): drop what is left of it
                _close_session(self._holder)
            prepared = self._prepare_deps()
            caches = {"wheelhouse": prepared.wheelhouse, "npm_cache": prepared.npm_cache}
            session = self.sandbox.open(
                self.worktree,
                self.policy,
                task_id=self.task_id,
                **{k: v for k, v in caches.items() if v is not None},
            )
            self._holder["session"] = session
            if self._finalizer is None:
                self._finalizer = weakref.finalize(self, _close_session, self._holder)
            return session

    def _prepare_deps(self) -> PreparedDeps:
        if self.deps is None:
            return PreparedDeps()
        if self._prepared is None:  # once per TaskSandbox; the caches outlive it
            self._prepared = prepare_deps(self.worktree, self.deps)
            self.deps_note = self._prepared.note
            self._note_due = bool(self.deps_note)
            if self.deps_note and self.on_output is not None:
                self.on_output("stderr", f"[{self.deps_note}]\n".encode())
        return self._prepared


def failing_tests(run: TestRun) -> list[str]:
    """Ids of the failing tests ("classname::name"); ["<suite>"] for a run that failed
    without a report (it crashed, timed out, or its command failed)."""
    if run.report is not None:
        return sorted(
            f"{c.classname}::{c.name}" for c in run.report.cases if c.outcome in ("failed", "error")
        )
    return [] if run.ok else ["<suite>"]


def new_failures(run: TestRun, baseline: list[str]) -> list[str]:
    """What the change broke. A run without a report that failed names no test, so a
    baseline cannot excuse it: that it failed before says nothing of what fails now."""
    if run.report is None and not run.ok:
        return ["<suite>"]
    before = set(baseline)
    return [t for t in failing_tests(run) if t not in before]


def test_summary(run: TestRun) -> dict[str, Any]:
    report = run.report
    return {
        "command": run.command.display(),
        "passed": report.passed if report else None,
        "failed": (report.failed + report.errors) if report else None,
        "exit_code": run.result.exit_code,
        "timed_out": run.result.timed_out,
        "available": run.available,
        "note": run.note,
    }


def output_tail(result: RunResult, limit: int = 3000) -> str:
    text = (result.stdout + ("\n" + result.stderr if result.stderr else "")).strip()
    return text if len(text) <= limit else "[... earlier output cut ...]\n" + text[-limit:]
