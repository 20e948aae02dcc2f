"""The ``deps`` job: tonight's dependency bumps of one repository, tested and proposed.

1. Fetch the mirror, scan an exported copy of the default branch, ask the package
   indexes and plan with the repository's :class:`BumpPolicy` (open bump PRs come from
   the publisher, so a PR whose bumps did not change is left as it is).
2. For each group: a worktree on a scratch branch from the default tip, the bumps
   applied, the lockfile refreshed in the sandbox where its tool runs there, committed
   (the fingerprint as a trailer); the tests run in the sandbox.
3. Green: publish (open or update the PR). Red: hand the failure to the agent pipeline
   (:class:`RepairRunner`), wait, test again; green then: publish; still red: publish
   marked needs-human, with the diagnosis and the test output's end.

A group that fails (a push refused, a git error) is reported and the others go on; the
run fails if any group did. Worktrees and scratch branches are removed afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shlex
from pathlib import Path
from typing import Any

from appliance.deps import BumpGroup, apply_group, lockfile_command, plan, scan_worktree
from appliance.deps.plan import slug
from appliance.errors import ApplianceError, RepoError
from appliance.jobs.checkout import argv_for_tests, exported_tree, open_indexes, policy_of
from appliance.jobs.context import BumpPublisher, CommandResult, JobContext, SandboxRunner
from appliance.jobs.errors import JobError
from appliance.jobs.publish import FINGERPRINT_TRAILER, GitBranchPublisher
from appliance.repos.mirror import GitRepo
from appliance.store.models import ForgeKind, Repository

log = logging.getLogger(__name__)

JOB_WORKTREE_PREFIX = "job-"
AUTHOR = ("Coding Agent Appliance", "appliance@localhost")
OUTPUT_TAIL = 6000
OBSOLETE_NOTE = (
    "Closed by the nightly dependency job: these bumps are no longer needed (the default "
    "branch has them already, or the repository's bump policy now leaves them out)."
)
EVIDENCE_TAIL = 2000  # characters of the test output quoted in a PR
NOT_FOUND = 127  # the shell's "command not found"


async def deps(ctx: JobContext) -> str:
    repo = ctx.require_repository()
    sandbox = ctx.services.sandbox
    if sandbox is None:
        raise JobError("the deps job needs the sandbox to run tests, and none is wired")
    command = argv_for_tests(repo, ctx.settings)
    if command is None:
        raise JobError(
            f"repository {repo.name!r} has no test command: set its settings.test_command "
            "(or deps.test_command for all repositories)"
        )
    publisher = _publisher(ctx, repo)
    try:
        return await _run_groups(ctx, repo, sandbox, command, publisher)
    finally:
        await asyncio.to_thread(publisher.close)


async def _run_groups(
    ctx: JobContext,
    repo: Repository,
    sandbox: SandboxRunner,
    command: list[str],
    publisher: BumpPublisher,
) -> str:
    mirror = await asyncio.to_thread(ctx.fetch_mirror, repo)
    groups, skipped, obsolete = await asyncio.to_thread(_plan, ctx, repo, mirror, publisher)
    results: list[dict[str, Any]] = []
    failed = 0
    for key in obsolete:
        try:
            retired = await asyncio.to_thread(publisher.retire, repo, mirror, key, OBSOLETE_NOTE)
        except ApplianceError as exc:
            failed += 1
            results.append({"key": key, "status": "error", "message": exc.message})
        else:
            results.append({"key": key, "status": "retired", "pr": retired})
    for group in groups:
        try:
            result = await _bump(ctx, repo, mirror, group, sandbox, command, publisher)
        except ApplianceError as exc:
            failed += 1
            result = {"branch": group.branch, "status": "error", "message": exc.message}
            log.warning("%s: bump %s failed: %s", repo.name, group.branch, exc.message)
        results.append(result)
    ctx.details.update(groups=results, skipped=skipped)
    summary = (
        ", ".join(f"{r.get('branch', r.get('key'))} {r['status']}" for r in results)
        or "nothing to bump"
    )
    if failed:
        raise JobError(f"{failed} of {len(groups)} bump group(s) failed: {summary}")
    return f"{len(groups)} bump group(s): {summary}"


def _publisher(ctx: JobContext, repo: Repository) -> BumpPublisher:
    factory = ctx.services.publisher
    publisher = factory(repo) if factory is not None else None
    if publisher is not None:
        return publisher
    if repo.forge_kind == ForgeKind.git:
        return GitBranchPublisher()
    raise JobError(
        f"no bump publisher is wired for {repo.forge_kind.value} repositories; the bumps "
        "cannot become pull requests"
    )


def _plan(
    ctx: JobContext, repo: Repository, mirror: GitRepo, publisher: BumpPublisher
) -> tuple[list[BumpGroup], int, list[str]]:
    policy = policy_of(repo)
    open_prs = publisher.open_bump_prs(repo, mirror)
    with exported_tree(mirror, f"refs/heads/{repo.default_branch}") as tree:
        scan = scan_worktree(tree)
        with open_indexes(ctx.settings) as indexes:
            if ctx.services.package_indexes is not None:
                indexes = dict(ctx.services.package_indexes())
            result = plan(scan.dependencies, indexes, policy, ctx.now, open_prs=open_prs)
    todo = [g for g in result.groups if g.action != "unchanged"]
    # An open PR no longer planned is retired, unless a package could not be looked up:
    # then "not planned" may only mean "not known tonight".
    unsure = any(s.kind in ("no_index", "not_found") for s in result.skipped)
    return todo, len(result.skipped), [] if unsure else result.obsolete


async def _bump(
    ctx: JobContext,
    repo: Repository,
    mirror: GitRepo,
    group: BumpGroup,
    sandbox: SandboxRunner,
    command: list[str],
    publisher: BumpPublisher,
) -> dict[str, Any]:
    stamp = f"{ctx.now:%Y%m%d%H%M%S}"
    wt_id = f"{JOB_WORKTREE_PREFIX}{slug(group.key)[:80]}-{stamp}"
    scratch = f"appliance-jobs/{slug(group.key)[:80]}-{stamp}"
    path = await asyncio.to_thread(
        ctx.worktrees.create,
        mirror,
        task_id=wt_id,
        branch=scratch,
        base=f"refs/heads/{repo.default_branch}",
    )
    try:
        return await _bump_in(ctx, repo, mirror, group, sandbox, command, publisher, wt_id, path)
    finally:
        await asyncio.to_thread(_discard, ctx, mirror, wt_id, scratch)


async def _bump_in(
    ctx: JobContext,
    repo: Repository,
    mirror: GitRepo,
    group: BumpGroup,
    sandbox: SandboxRunner,
    command: list[str],
    publisher: BumpPublisher,
    wt_id: str,
    path: Path,
) -> dict[str, Any]:
    timeout = ctx.settings.deps.test_timeout_seconds
    result: dict[str, Any] = {"branch": group.branch, "title": group.title}
    await asyncio.to_thread(apply_group, path, group)
    lock_only = [b.dep.name for b in group.bumps if b.lock_only]
    lock = lockfile_command(path, group.ecosystem, update=lock_only)
    if lock is not None:
        locked = await sandbox.run(path, lock, time_limit=timeout)
        if locked.exit_code == NOT_FOUND:
            result["lockfile"] = f"{lock[0]} is not available in the sandbox; lockfile not updated"
        elif not locked.ok:
            result["lockfile"] = f"{' '.join(lock)} failed: {_tail(locked.output, 500)}"
        else:
            result["lockfile"] = "updated"
    message = f"{group.title}\n\n{group.body}\n\n{FINGERPRINT_TRAILER}: {group.fingerprint}\n"
    await asyncio.to_thread(_commit, ctx, path, message)
    tests = await sandbox.run(path, command, time_limit=timeout)
    needs_human: str | None = None
    if not tests.ok:
        needs_human, tests = await _repair(ctx, repo, group, path, wt_id, sandbox, command, tests)
    worktree = ctx.worktrees.get(wt_id)
    evidence = _evidence(command, tests, result.get("lockfile"))
    url = await asyncio.to_thread(
        functools.partial(
            publisher.publish,
            repo,
            mirror,
            worktree,
            group,
            needs_human=needs_human,
            evidence=evidence,
        )
    )
    result.update(pr=url, status="needs-human" if needs_human else "published")
    if needs_human:
        result["diagnosis"] = needs_human
    return result


async def _repair(
    ctx: JobContext,
    repo: Repository,
    group: BumpGroup,
    path: Path,
    wt_id: str,
    sandbox: SandboxRunner,
    command: list[str],
    failing: CommandResult,
) -> tuple[str | None, CommandResult]:
    """Ask the pipeline to repair; returns (needs-human diagnosis or None, last test run)."""
    output = _tail(failing.output)
    repair = ctx.services.repair
    if repair is None:
        return f"the tests fail and no repair runner is wired:\n{output}", failing
    branch = ctx.worktrees.get(wt_id).branch
    task_id = await repair.submit_repair(repo, branch, path, output)
    ctx.link_task(task_id)
    outcome = await repair.wait(task_id)
    await asyncio.to_thread(_commit, ctx, path, f"Repair the tests after {group.title}\n", True)
    again = await sandbox.run(path, command, time_limit=ctx.settings.deps.test_timeout_seconds)
    if again.ok:
        return None, again
    return (
        f"{outcome.diagnosis.strip() or 'the repair task gave no diagnosis'}\n\n"
        f"The tests still fail after the repair (task {task_id}):\n{_tail(again.output)}",
        again,
    )


def _commit(ctx: JobContext, path: Path, message: str, allow_empty: bool = False) -> None:
    try:
        ctx.worktrees.commit_all(path, message, author_name=AUTHOR[0], author_email=AUTHOR[1])
    except RepoError as exc:
        if not (allow_empty and exc.message.startswith("nothing to commit")):
            raise


def _discard(ctx: JobContext, mirror: GitRepo, wt_id: str, branch: str) -> None:
    ctx.worktrees.remove(wt_id)
    with mirror.locked():
        if mirror.has_branch(branch):
            mirror.git("branch", "-D", "--", branch)
        mirror.release_branch(branch)


def _evidence(command: list[str], tests: CommandResult, lockfile: str | None) -> str:
    """The last test run, for the PR description: the command, its outcome, the tail of
    its output."""
    outcome = "passed" if tests.ok else f"failed (exit code {tests.exit_code})"
    lines = [f"`{shlex.join(command)}` in the sandbox (no network): {outcome}."]
    if lockfile:
        lines.append(f"Lockfile: {lockfile}.")
    fence = "~~~~" if "```" in tests.output else "```"
    lines += ["", fence, _tail(tests.output, EVIDENCE_TAIL).rstrip(), fence]
    return "\n".join(lines)


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
