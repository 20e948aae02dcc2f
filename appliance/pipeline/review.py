"""``reviewing``: check the final diff and put it in front of a person.

1. The diff of the worktree against the base commit, its per-file stats.
2. Secret scan of the added lines: a critical finding aborts the task (category security),
   quarantines the worktree (marked, kept for an admin, never pushed) and raises an alert
   event; lesser findings are shown to the reviewer.
3. The pull request's text, written by the model (schema :class:`PullRequestText`), with
   the test evidence (before/after) and, for features, a decision record; a deterministic
   body when the model's reply is unusable.
4. A ``review_ready`` event, then the human gate: the task waits (awaiting_approval) for
   approve → publishing, request changes → implementing (same branch), reject.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any

from appliance.pipeline.events import report_usage
from appliance.pipeline.prompting import render
from appliance.pipeline.schemas import Plan, PullRequestText, Understanding
from appliance.pipeline.workspace import (
    appliance_of,
    model_client,
    task_dir,
    task_worktree,
    worktrees,
)
from appliance.review import DiffUnreadable, diff_stats, is_blocking, scan_diff, summarize
from appliance.runner.graph import REJECT, Done, Fail, NodeContext, Outcome, Pause, State
from appliance.states import FailureCategory, TaskStatus
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
        diff = await asyncio.to_thread(trees.diff, worktree, state["base"])
        if not diff.strip():
            return Done(summary="No change was needed: the agent finished without edits.")
        allow = list((await asyncio.to_thread(_repo_settings, ctx)).get("secret_allowlist", []))
        try:
            findings = scan_diff(diff, allow=allow)
            stats = diff_stats(diff)
        except DiffUnreadable as exc:  # fail closed: an unreadable diff is not published
            return Fail(FailureCategory.security, f"the diff could not be checked: {exc.message}")
        if is_blocking(findings):
            (task_dir(appliance, ctx.task.id)).mkdir(parents=True, exist_ok=True)
            (task_dir(appliance, ctx.task.id) / "QUARANTINED").write_text(summarize(findings))
            await ctx.emit(
                "error",
                {"severity": "critical", "message": "secrets in the diff: " + summarize(findings),
                 "recoverable": False, "alert": True},
                key=f"secrets-{rnd}",
            )  # fmt: skip
            return Fail(
                FailureCategory.security,
                "The change contains what looks like secrets; the worktree is quarantined and "
                "nothing was pushed. " + summarize(findings),
            )
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

    async def _pr_text(self, ctx: NodeContext, state: State, diff: str) -> PullRequestText:
        understanding = Understanding.model_validate(state["understanding"])
        plan = Plan.model_validate(state["plan"])
        tests = state.get("tests") or {}
        evidence = _evidence(state.get("baseline") or [], tests)
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


def _repo_settings(ctx: NodeContext) -> dict[str, Any]:
    from appliance.pipeline.workspace import repository

    return dict(repository(ctx).settings or {})


def _evidence(baseline: list[str], tests: dict[str, Any]) -> str:
    if not tests:
        return "no test suite ran"
    before = f"{len(baseline)} failing before the change"
    after = f"{tests.get('passed')} passed, {tests.get('failed')} failed after"
    return f"{tests.get('command')}: {before}; {after}"


def pr_body(text: PullRequestText, state: State, *, stats: list[dict[str, Any]]) -> str:
    """The pull request's markdown: summary, plan, changes per file, test evidence,
    risks, rollback, decision record (features)."""
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
    lines += [
        "",
        "## Test evidence",
        _evidence(state.get("baseline") or [], state.get("tests") or {}),
    ]
    if text.risks:
        lines += ["", "## Risks", text.risks.strip()]
    lines += ["", "## Rollback", (text.rollback or "Revert this pull request's commit.").strip()]
    if understanding.intent == "feature" and text.decision_record:
        lines += ["", "## Decision record", text.decision_record.strip()]
    lines += ["", "_Prepared by the coding agent appliance; approved by a person before push._"]
    return "\n".join(lines)
