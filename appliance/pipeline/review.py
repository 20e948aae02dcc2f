"""``reviewing``: check the final diff and put it in front of a person.

1. The diff of the worktree against the base commit, its per-file stats.
2. Secret scan of the added lines: a critical finding aborts the task (category security),
   quarantines the worktree (:mod:`appliance.review.quarantine`: marked, kept for an admin
   by the retention job, never pushed), writes an audit record and raises an alert event;
   lesser findings are shown to the reviewer.
3. The edit policy (protected paths, the request's files to avoid, ``.git/``,
   ``max_files_changed``) over the final diff's paths: the write tools enforce it, but a
   command in the sandbox writes the worktree directly. A breach goes back to implementing
   with the reason (the files that may not change put back as the base commit has them)
   while validation rounds remain; otherwise the task fails (category security). Either
   way nothing is published.
4. The pull request's text, written by the model (schema :class:`PullRequestText`), with
   the test evidence (before/after counts), the risks (the plan's when the model names
   none) and, for features, an architectural decision record (built from the plan when the
   model writes none); a deterministic body when the model's reply is unusable.
5. A ``review_ready`` event, then the human gate: the task waits (awaiting_approval) for
   approve → publishing, request changes → implementing (same branch), reject.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError, RepoError
from appliance.pipeline.events import report_usage
from appliance.pipeline.prompting import render
from appliance.pipeline.schemas import Plan, PullRequestText, Understanding
from appliance.pipeline.workspace import (
    appliance_of,
    edit_policy,
    model_client,
    repository,
    task_constraints,
    task_worktree,
    worktrees,
)
from appliance.repos.mirror import GitRepo
from appliance.review import (
    DiffUnreadable,
    FileStat,
    diff_stats,
    is_blocking,
    scan_diff,
    summarize,
)
from appliance.review.quarantine import quarantine
from appliance.runner.graph import (
    REJECT,
    Done,
    Fail,
    Next,
    NodeContext,
    Outcome,
    Pause,
    State,
)
from appliance.runner.runner import RUNNER_ACTOR
from appliance.states import FailureCategory, TaskStatus
from appliance.store import audit
from appliance.store.models import Repository
from appliance.tools.changeset import put_back
from models.errors import FormatError

log = logging.getLogger(__name__)


@dataclass
class Reviewing:
    name: str = "reviewing"
    status: TaskStatus = TaskStatus.reviewing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        state = dict(state)
        state.pop("human", None)
        rnd = state.get("round", 0)
        trees = worktrees(appliance)
        worktree = task_worktree(appliance, ctx)
        try:
            diff = await asyncio.to_thread(trees.diff, worktree, state["base"])
        except RepoError as exc:  # e.g. a nested repository a command made: not published
            return Fail(FailureCategory.security, f"the diff could not be made: {exc.message}")
        if not diff.strip():
            return Done(summary="No change was needed: the agent finished without edits.")
        repo = await asyncio.to_thread(repository, ctx)
        allow = list((repo.settings or {}).get("secret_allowlist", []))
        try:
            findings = scan_diff(diff, allow=allow)
            stats = diff_stats(diff)
        except DiffUnreadable as exc:  # fail closed: an unreadable diff is not published
            return Fail(FailureCategory.security, f"the diff could not be checked: {exc.message}")
        if is_blocking(findings):
            summary = summarize(findings)
            await asyncio.to_thread(_quarantine, appliance, ctx.task.id, worktree, summary)
            await ctx.emit(
                "error",
                {"severity": "critical", "message": "secrets in the diff: " + summary,
                 "recoverable": False, "alert": True},
                key=f"secrets-{rnd}",
            )  # fmt: skip
            return Fail(
                FailureCategory.security,
                "The change contains what looks like secrets; the worktree is quarantined and "
                "nothing was pushed. " + summary,
            )
        breach = await self._policy(ctx, state, repo, stats, worktree)
        if breach is not None:
            return breach
        text = await self._pr_text(ctx, state, diff)
        await report_usage(ctx, model_client(ctx), state, key=f"review-{rnd}-usage")
        body = pr_body(text, state, stats=[asdict(s) for s in stats])
        state["pr"] = {"title": text.title, "body": body}
        await ctx.emit(
            "review_ready",
            {
                "diff": diff[:500_000],
                "stats": [asdict(s) for s in stats],
                "pr_title": text.title,
                "pr_body": body,
                "findings": [
                    {
                        "path": f.path,
                        "line": f.line,
                        "rule": f.rule,
                        "severity": str(f.severity),
                        "excerpt": f.excerpt,
                    }
                    for f in findings
                ],
            },
            key=f"review-{rnd}",
        )
        return Pause(
            "the change waits for review",
            state,
            wait=TaskStatus.awaiting_approval,
            resume={"approve": "publishing", "request_changes": "implementing", "reject": REJECT},
        )

    async def _policy(
        self,
        ctx: NodeContext,
        state: State,
        repo: Repository,
        stats: list[FileStat],
        worktree: Path,
    ) -> Outcome | None:
        """None when the final diff keeps to the edit policy; else back to implementing
        (rounds remain) or failed."""
        appliance = appliance_of(ctx)
        rnd = state.get("round", 0)
        # what the task itself changed: for a repair, since the job's commit it started on
        start = state.get("policy_base") or state["base"]
        if start != state["base"]:
            own = await asyncio.to_thread(worktrees(appliance).diff, worktree, start)
            stats = diff_stats(own)
        changed = {s.path for s in stats} | {s.old_path for s in stats if s.old_path}
        policy = edit_policy(repo, task_constraints(ctx, state))  # the write tools' policy
        refused, too_many = policy.breaches(changed)
        if not refused and too_many is None:
            return None
        reasons = [*refused.values(), *([too_many] if too_many else [])]
        message = "The change breaks the edit policy:\n" + "\n".join(f"- {r}" for r in reasons)
        last = rnd + 1 >= appliance.settings.pipeline.max_rounds
        await ctx.emit(
            "error",
            {"severity": "error", "message": message, "recoverable": not last},
            key=f"policy-{rnd}",
        )
        if last:
            return Fail(FailureCategory.security, message + "\nNothing was pushed.")
        try:
            await asyncio.to_thread(
                _put_back_from_base, appliance, worktree, start, sorted(refused)
            )
        except ApplianceError as exc:
            return Fail(
                FailureCategory.security,
                f"{message}\nThe files could not be put back ({exc.message}); nothing was pushed.",
            )
        notes = [message]
        if refused:
            notes.append(
                "These files were put back as they were before the task (they may not be "
                "changed, not even by a command): " + ", ".join(sorted(refused))
            )
        if too_many:
            notes.append("Undo the changes to the files that do not need to change.")
        state.update(round=rnd + 1, feedback="\n".join(notes), finished=False)
        return Next("implementing", state)

    async def _pr_text(self, ctx: NodeContext, state: State, diff: str) -> PullRequestText:
        understanding = Understanding.model_validate(state["understanding"])
        plan = Plan.model_validate(state["plan"])
        evidence = _evidence_line(state)
        client = model_client(ctx)
        room = max(2000, (client.context_length - 1500) * 3)
        prompt = render(
            "pr",
            intent=understanding.intent,
            request=ctx.task.prompt,
            plan=plan,
            tests=evidence,
            diff=diff[:room],
        )
        try:
            text: PullRequestText = await client.action(
                [{"role": "user", "content": prompt}],
                PullRequestText,
                task_id=ctx.task.id,
                max_tokens=appliance_of(ctx).settings.pipeline.reply_tokens,
                format_retries=1,
            )
            return text
        except FormatError as exc:
            log.warning("task %s: pull request text unusable: %s", ctx.task.id, exc)
            return PullRequestText(
                title=ctx.task.prompt.splitlines()[0][:72],
                summary=state.get("summary") or understanding.summary,
            )


def _quarantine(appliance: Any, task_id: str, worktree: Path, summary: str) -> None:
    """Mark the task quarantined and audit it (once, also when the node is re-run)."""
    marker = quarantine(appliance.settings.data_dir, task_id, summary)
    subject = f"task:{task_id}"
    with appliance.db.write() as session:
        if audit.read(session, action="task.quarantine", subject=subject, limit=1):
            return
        audit.append(
            session,
            actor=RUNNER_ACTOR,
            action="task.quarantine",
            subject=subject,
            details={"worktree": str(worktree), "marker": str(marker), "findings": summary},
        )


def _put_back_from_base(appliance: Any, worktree: Path, base: str, paths: list[str]) -> None:
    """Give each of ``paths`` its content and mode in ``base`` (delete it where ``base`` has
    no such file)."""
    if not paths:
        return
    mirror = GitRepo(worktrees(appliance).get(Path(worktree).name).repo)
    for rel in paths:
        listed = mirror.git("--literal-pathspecs", "ls-tree", "-z", base, "--", rel)
        entry = listed.stdout.decode("utf-8", "replace").rstrip("\0")
        if not entry:
            put_back(worktree, rel, None, None)
            continue
        meta, _, _name = entry.partition("\t")
        mode, kind, sha = meta.split()
        if kind != "blob" or mode not in ("100644", "100755"):
            raise RepoError(f"{rel} is not a regular file in the base commit")
        data = mirror.git("cat-file", "blob", sha).stdout
        put_back(worktree, rel, data, int(mode[-3:], 8))


def _evidence(state: State) -> str:
    """Before/after counts of the test run, in a few lines of markdown."""
    baseline = list(state.get("baseline") or [])
    tests = state.get("tests") or {}
    if not tests:
        return "No test suite ran; the change was checked by the linter only."
    counts = state.get("baseline_counts") or {}
    before_passed = counts.get("passed")
    after_failing = list(tests.get("failing") or [])
    fixed = sorted(set(baseline) - set(after_failing))
    fresh = list(tests.get("new_failures") or [])
    lines = [
        f"`{tests.get('command')}`",
        "",
        "| | passing | failing |",
        "|---|---|---|",
        f"| before the change | {'n/a' if before_passed is None else before_passed} "
        f"| {len(baseline)} |",
        f"| after the change | {tests.get('passed')} | {tests.get('failed')} |",
        "",
        f"Fixed: {len(fixed)} test(s) that failed before pass now"
        + (f" ({', '.join(fixed[:10])})" if fixed else "")
        + f". New failures: {len(fresh)}.",
    ]
    return "\n".join(lines)


def _evidence_line(state: State) -> str:
    """The evidence in one line, for the model's prompt."""
    tests = state.get("tests") or {}
    if not tests:
        return "no test suite ran"
    before = f"{len(state.get('baseline') or [])} failing before the change"
    after = f"{tests.get('passed')} passed, {tests.get('failed')} failed after"
    return f"{tests.get('command')}: {before}; {after}"


def _decision_record(understanding: Understanding, plan: Plan) -> str:
    """A decision record from the plan, for a feature whose PR text has none."""
    decision = "; ".join(step.title for step in plan.steps)
    consequences = "; ".join(plan.risks) or "none identified in the plan"
    lines = [
        f"- Context: {understanding.summary.strip()}",
        f"- Decision: {decision}.",
        f"- Consequences: {consequences}.",
    ]
    if plan.test_strategy:
        lines.append(f"- Verification: {plan.test_strategy.strip()}")
    return "\n".join(lines)


def pr_body(text: PullRequestText, state: State, *, stats: list[dict[str, Any]]) -> str:
    """The pull request's markdown: summary, plan, changes per file, test evidence,
    risks, rollback, architectural decision record (features)."""
    plan = Plan.model_validate(state["plan"])
    understanding = Understanding.model_validate(state["understanding"])
    lines = ["## Summary", text.summary.strip(), "", "## Plan"]
    lines += [f"{i}. {s.title}" for i, s in enumerate(plan.steps, 1)]
    lines += ["", "## Changes"]
    described = {c.path: c.change for c in text.changes}
    for s in stats:
        note = described.get(s["path"], "")
        lines.append(
            f"- `{s['path']}` (+{s['added']} -{s['removed']}){': ' + note if note else ''}"
        )
    lines += ["", "## Test evidence", _evidence(state)]
    risks = text.risks.strip() or "\n".join(f"- {r}" for r in plan.risks)
    lines += ["", "## Risks", risks or "None identified in the plan or by the agent."]
    lines += ["", "## Rollback", (text.rollback or "Revert this pull request's commit.").strip()]
    if understanding.intent == "feature":
        record = text.decision_record.strip() or _decision_record(understanding, plan)
        lines += ["", "## Architectural decision record", record]
    lines += ["", "_Prepared by the coding agent appliance; approved by a person before push._"]
    return "\n".join(lines)
