"""The job kinds: ``reindex``, ``retention``, ``branch_cleanup`` (and ``deps``, in
:mod:`appliance.jobs.deps_job`). Each takes a :class:`JobContext`, returns a summary.

* ``reindex``: fetch the mirror; when the default branch's tip differs from the indexed
  commit, refresh the index incrementally (embeddings follow in the background).
* ``retention``: older than ``jobs.retention_days``: worktrees of finished tasks (and of
  jobs), events and checkpoints of finished tasks; any age: the index, embeddings and
  mirror of repositories no longer registered. The audit log is never touched, nor is a
  quarantined task (secrets in its diff, :mod:`appliance.review.quarantine`): its
  worktree, events and checkpoints are evidence, kept until an admin lifts the quarantine;
  the report lists them as kept, with the reason.
* ``branch_cleanup``: GitHub/GitLab (through a :class:`BranchHost`): delete the remote
  ``appliance/*`` branches whose PR is closed or merged. Plain git: delete, in the
  mirror, the branches of finished tasks whose worktree is gone, and release them so
  the next fetch follows the remote again.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from sqlmodel import col, delete, select

from appliance.errors import RepoError
from appliance.forges.base import PrState
from appliance.forges.errors import ForgeError, PushRefused
from appliance.index.service import index_dir_name, remove_index
from appliance.jobs.context import JobContext
from appliance.jobs.deps_job import JOB_WORKTREE_PREFIX, deps
from appliance.jobs.errors import JobError
from appliance.review.quarantine import quarantine_reason
from appliance.states import TERMINAL
from appliance.store.models import Checkpoint, ForgeKind, Repository, Task, TaskEvent

log = logging.getLogger(__name__)


def reindex(ctx: JobContext) -> str:
    repo = ctx.require_repository()
    mirror = ctx.fetch_mirror(repo)
    tip = mirror.head_commit(repo.default_branch)
    status = ctx.index.status(repo.name)
    ctx.details["commit"] = tip
    if status is not None and status.commit == tip:
        return f"{repo.default_branch} has not moved since it was indexed ({tip[:12]})"
    report = ctx.index.refresh(
        repo.name, repo.clone_url, repo.default_branch, access=ctx.fetch_access(repo)
    )
    ctx.index.embed_in_background(repo.name)
    ctx.details["previous"] = report.previous
    return f"indexed {repo.default_branch} at {tip[:12]}: {report.summary()}"


def retention(ctx: JobContext) -> str:
    days = ctx.settings.jobs.retention_days
    cutoff = ctx.now - timedelta(days=days)
    with ctx.db.session() as session:
        finished = {
            t.id: t.finished_at
            for t in session.exec(select(Task).where(col(Task.status).in_(list(TERMINAL))))
        }
        registered = {r.name for r in session.exec(select(Repository))}
    kept: dict[str, str] = {}
    for task_id in finished:
        reason = quarantine_reason(ctx.settings.data_dir, task_id)
        if reason is not None:
            kept[task_id] = "quarantined: " + reason.splitlines()[0]
    worktrees = 0
    for worktree in ctx.worktrees.list():
        done_at = finished.get(worktree.task_id)
        if worktree.task_id.startswith(JOB_WORKTREE_PREFIX):
            done_at = _mtime(worktree.path)
        if worktree.task_id in kept:
            continue
        if done_at is not None and _aware(done_at) < cutoff:
            ctx.worktrees.remove(worktree.task_id)
            worktrees += 1
    worktrees += len(ctx.worktrees.prune_stale())
    old = [
        tid
        for tid, at in finished.items()
        if at is not None and _aware(at) < cutoff and tid not in kept
    ]
    events = 0
    with ctx.db.write() as session:
        for start in range(0, len(old), 500):
            batch = old[start : start + 500]
            result = session.exec(delete(TaskEvent).where(col(TaskEvent.task_id).in_(batch)))
            events += result.rowcount
            session.exec(delete(Checkpoint).where(col(Checkpoint.task_id).in_(batch)))
    gone = _purge_unregistered(ctx, registered)
    ctx.details.update(worktrees=worktrees, task_events=events, repositories=gone, kept=kept)
    held = f"; kept {len(kept)} quarantined task(s): {', '.join(sorted(kept))}" if kept else ""
    return (
        f"removed {worktrees} worktree(s) and {events} event(s) of {len(old)} task(s) "
        f"finished before {cutoff:%Y-%m-%d}; purged data of {len(gone)} deleted "
        f"repositories{held}; the audit log is kept"
    )


def _purge_unregistered(ctx: JobContext, registered: set[str]) -> list[str]:
    """Index, embeddings and mirror of every repository no longer registered."""
    gone: set[str] = set()
    root = ctx.index.root
    keep = {index_dir_name(name) for name in registered} | {"chroma"}
    if root.is_dir():
        for entry in root.iterdir():
            if entry.is_dir() and entry.name not in keep and not entry.name.startswith("."):
                gone.add(entry.name.replace("%2F", "/"))
    mirrors = ctx.mirrors.root
    if mirrors.is_dir():
        for entry in mirrors.glob("*.git"):
            name = entry.name.removesuffix(".git").replace("%2F", "/")
            if name not in registered:
                gone.add(name)
    vectors = ctx.index.vectors() if (root / "chroma").is_dir() else None
    for name in sorted(gone):
        remove_index(root, name)
        if vectors is not None:
            vectors.drop(name)
        if ctx.mirrors.path(name).exists():
            ctx.mirrors.remove(name)
        log.info("retention: removed the data of deleted repository %s", name)
    return sorted(gone)


def branch_cleanup(ctx: JobContext) -> str:
    repo = ctx.require_repository()
    if repo.forge_kind == ForgeKind.git:
        return _clean_mirror_branches(ctx, repo)
    factory = ctx.services.branch_host
    host = factory(repo) if factory is not None else None
    if host is None:
        raise JobError(
            f"no branch host is wired for {repo.forge_kind.value} repositories: the "
            "appliance cannot list or delete their branches yet"
        )
    deleted: list[str] = []
    kept: dict[str, str] = {}
    failed: dict[str, str] = {}
    try:
        for branch in host.appliance_branches():
            if not branch.startswith("appliance/"):
                continue
            state = host.pr_state(branch)
            if state not in (PrState.closed, PrState.merged):
                kept[branch] = "no pull request" if state is None else f"pull request {state}"
                continue
            try:
                host.delete_branch(branch)
            except PushRefused as exc:  # protected since: the forge's rules win
                kept[branch] = exc.message
            except ForgeError as exc:
                failed[branch] = exc.message
            else:
                deleted.append(branch)
    finally:
        host.close()
    ctx.details.update(deleted=deleted, kept=kept, failed=failed)
    summary = f"deleted {len(deleted)} branch(es) whose PR is closed or merged; kept {len(kept)}"
    if failed:
        raise JobError(
            f"{summary}; could not delete {len(failed)}: "
            + "; ".join(f"{b}: {m}" for b, m in failed.items())
        )
    return summary


def _clean_mirror_branches(ctx: JobContext, repo: Repository) -> str:
    try:
        mirror = ctx.mirrors.get(repo.name)
    except RepoError:
        return "no mirror yet: nothing to clean"
    with ctx.db.session() as session:
        query = select(Task.branch).where(
            Task.repository_id == repo.id,
            col(Task.status).in_(list(TERMINAL)),
            col(Task.branch).is_not(None),
        )
        branches = {b for b in session.exec(query) if b}
    in_use = {w.branch for w in ctx.worktrees.list() if w.repo.resolve() == mirror.path.resolve()}
    deleted = []
    with mirror.locked():
        for branch in sorted(branches - in_use):
            if mirror.has_branch(branch):
                mirror.git("update-ref", "-d", f"refs/heads/{branch}")
                deleted.append(branch)
            mirror.release_branch(branch)
    ctx.details["deleted"] = deleted
    return f"deleted {len(deleted)} branch(es) of finished tasks from the mirror"


def _mtime(path: os.PathLike[str]) -> datetime | None:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        return None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


KINDS = {
    "reindex": reindex,
    "deps": deps,
    "retention": retention,
    "branch_cleanup": branch_cleanup,
}

__all__ = ["KINDS", "branch_cleanup", "deps", "reindex", "retention"]
