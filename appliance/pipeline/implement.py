"""``implementing``: the tool loop, one step per node run.

A step asks the model for one :class:`~appliance.pipeline.schemas.Action` (JSON constrained
by a schema whose ``tool`` is one of the registered tools), runs it through the tool
registry (which validates the arguments and enforces the edit policy), records the result
in the history, and checkpoints. ``finish`` ends the round: the task goes to validating.

Whatever the model emits, the task goes on: invalid JSON, a schema violation, an unknown
tool, a refused path or an edit that matches twice becomes an error observation the model
sees next step. The guards end the task as handed over (failed, category code_logic, with
notes of what was tried), never as a crash: the step limit, the wall clock, the token
budget, and stuck detection (the same action, or the same error, three times running).
The wall clock counts active time only: the time the task waited for a person (an answer,
an approval, a review) is not counted. Constraints added while the task runs pause it at
its next step (see :meth:`~appliance.runner.runner.TaskRunner.add_note`): their words
(``constraints.notes``) go into the prompt, their file rules into the tools' policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.pipeline.context import History, observation_chars
from appliance.pipeline.events import command_event, report_usage
from appliance.pipeline.prompting import render
from appliance.pipeline.schemas import Plan, Understanding, action_model
from appliance.pipeline.workspace import (
    Workspace,
    appliance_of,
    model_client,
    open_workspace,
    task_constraints,
)
from appliance.runner.graph import Fail, Next, NodeContext, Outcome, State
from appliance.runner.runner import WAITED_KEY
from appliance.states import FailureCategory, TaskStatus
from appliance.store import tasks as task_store
from models.errors import FormatError

log = logging.getLogger(__name__)
STUCK_REPEATS = 3
WRITE_TOOLS = {"edit_file", "create_file", "delete_file", "apply_diff", "rollback"}


def handover(state: State, why: str) -> Fail:
    """End the task as handed over to a person, with what was tried."""
    history = History.from_state(state.get("history"))
    tried = [t.condensed() for t in history.turns[-12:]]
    changed = state.get("changed_files", [])
    notes = [f"Handed over: {why}."]
    if changed:
        notes.append("Files changed so far (kept on the task branch): " + ", ".join(changed))
    if tried:
        notes.append("Last steps:\n" + "\n".join(tried))
    return Fail(FailureCategory.code_logic, "\n".join(notes))


def active_minutes(state: State, now: datetime | None = None) -> float | None:
    """Minutes the task has been worked on: since ``started_at`` (set by preparing), less
    the time it waited for a person (the runner adds each wait to ``WAITED_KEY`` when the
    person decides). None before preparing recorded a start."""
    started = state.get("started_at")
    if not started:
        return None
    elapsed = ((now or datetime.now(UTC)) - datetime.fromisoformat(started)).total_seconds()
    return max(0.0, elapsed - float(state.get(WAITED_KEY, 0.0))) / 60


def _signature(action: dict[str, Any]) -> str:
    return json.dumps({"tool": action.get("tool"), "args": action.get("args")}, sort_keys=True)


def stuck(history: History) -> str | None:
    """Why the loop is stuck, or None: the same action, or the same error, N times running."""
    last = history.turns[-STUCK_REPEATS:]
    if len(last) < STUCK_REPEATS:
        return None
    if len({_signature(t.action) for t in last}) == 1:
        return f"the same action ({last[-1].action.get('tool')}) {STUCK_REPEATS} times running"
    errors = [t.observation.strip().splitlines()[0] if t.observation.strip() else "" for t in last]
    if all(not t.ok for t in last) and len(set(errors)) == 1:
        return f"the same error {STUCK_REPEATS} times running: {errors[0][:200]}"
    return None


@dataclass
class Implementing:
    name: str = "implementing"
    status: TaskStatus = TaskStatus.implementing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        limits = appliance.settings.pipeline
        state = dict(state)
        human = state.pop("human", None) or {}
        if human.get("action") == "request_changes":
            state["feedback"] = _review_feedback(human)
            state["round"] = state.get("round", 0) + 1
            state["finished"] = False
        client = model_client(ctx)
        step = state.get("step", 0)
        budget = client.context_length - limits.reply_tokens
        history = History.from_state(state.get("history"))
        history.max_observation_chars = observation_chars(budget, history.keep_last)

        why = self._guard(state, history, client, ctx.task.id, limits)
        if why is not None:
            return handover(state, why)

        ws = await open_workspace(ctx, state)
        events: list[tuple[str, dict[str, Any]]] = []
        ws.on_command = lambda c, code, out: events.append(
            ("command_executed", command_event(c, code, out))
        )
        if not state.get("iteration_open"):
            ws.edits.begin_iteration()
            state["iteration_open"] = True
        notes = await asyncio.to_thread(_notes, appliance, ctx.task.id)
        system = render(
            "system",
            repository=ws.repo.name,
            user=ctx.task.created_by,
            constraints=[*_constraint_lines(task_constraints(ctx, state)), *notes],
            tools=[
                {
                    "name": s["name"],
                    "description": s["description"],
                    "arguments": json.dumps(s["parameters"].get("properties", {})),
                }
                for s in ws.tools.schemas()
            ],
        )
        task_text = render(
            "task",
            intent=Understanding.model_validate(state["understanding"]).intent,
            request=ctx.task.prompt,
            plan=Plan.model_validate(state["plan"]),
            test_command=state.get("test_command"),
            baseline_failures=state.get("baseline") or [],
            feedback=state.get("feedback", ""),
        )
        messages = history.messages(system, task_text, budget_tokens=budget)
        schema = action_model(ws.tools.names())
        step += 1
        key = f"r{state.get('round', 0)}s{step}"
        try:
            action = await client.action(
                messages,
                schema,
                task_id=ctx.task.id,
                max_tokens=limits.reply_tokens,
                format_retries=1,
            )
            act: dict[str, Any] = {
                "thought": action.thought,
                "tool": action.tool,
                "args": action.args,
            }
        except FormatError as exc:
            act = {"thought": "", "tool": "(invalid reply)", "args": {}}
            history.add(step, act, False, f"Your reply was not a valid action: {exc.message}")
            await ctx.emit(
                "error",
                {"severity": "warning", "message": f"invalid model reply: {exc.message[:300]}",
                 "recoverable": True},
                key=f"{key}-format",
            )  # fmt: skip
            return Next("implementing", self._save(state, history, ws, step))

        if act["thought"]:
            await ctx.emit("agent_thought", {"text": act["thought"][:2000]}, key=f"{key}-thought")
        # the files a rollback will restore (its arguments name none)
        pending = ws.edits.pending if act["tool"] == "rollback" else []
        result = await asyncio.to_thread(ws.tools.call, act["tool"], act["args"], ws.tool_context())
        history.add(step, act, result.ok, result.output)
        await ctx.emit(
            "tool_call",
            {"tool": act["tool"], "args": _short_args(act["args"]), "ok": result.ok,
             "output_snippet": result.output[:500]},
            key=f"{key}-tool",
        )  # fmt: skip
        for i, (kind, payload) in enumerate(events):
            await ctx.emit(kind, payload, key=f"{key}-cmd{i}")
        if result.ok and act["tool"] in WRITE_TOOLS:
            stats = {s.path: s for s in ws.edits.diff_stat()}
            for path in _touched_paths(act) or pending:
                stat = stats.get(path)
                diff_stat = {"added": stat.added, "removed": stat.removed} if stat else {}
                await ctx.emit(
                    "file_modified", {"path": path, "diff_stat": diff_stat}, key=f"{key}-{path}"
                )
        state = self._save(state, history, ws, step)
        await report_usage(ctx, client, state, key=f"{key}-usage")
        if act["tool"] == "finish" and result.ok:
            state["finished"] = True
            state["summary"] = result.output
            return Next("validating", state)
        return Next("implementing", state)

    def _guard(
        self, state: State, history: History, client: Any, task_id: str, limits: Any
    ) -> str | None:
        if state.get("step", 0) >= limits.max_steps:
            return f"the step limit ({limits.max_steps} tool calls) was reached"
        minutes = active_minutes(state)
        if minutes is not None and minutes > limits.max_minutes:
            return f"the time limit ({limits.max_minutes:g} min) was reached"
        if client.usage_for(task_id).total_tokens > limits.max_tokens:
            return f"the token budget ({limits.max_tokens:,}) was spent"
        return stuck(history)

    @staticmethod
    def _save(state: State, history: History, ws: Workspace, step: int) -> State:
        return {
            **state,
            "step": step,
            "history": history.to_state(),
            "edits": ws.edits.to_state(),
            "changed_files": ws.edits.changed_files(),
        }


def _constraint_lines(constraints: dict[str, Any]) -> list[str]:
    lines = []
    if constraints.get("avoid_files"):
        lines.append("Do not change: " + ", ".join(constraints["avoid_files"]))
    if constraints.get("max_files_changed"):
        lines.append(f"Change at most {constraints['max_files_changed']} files.")
    return lines


def _notes(appliance: Any, task_id: str) -> list[str]:
    """Constraints a person added to the task, also while it runs."""
    with appliance.db.session() as session:
        task = task_store.get_task(session, task_id)
        return [str(n) for n in dict(task.constraints).get("notes", [])]


def _review_feedback(human: dict[str, Any]) -> str:
    lines = [f"A reviewer ({human.get('by')}) asked for changes:"]
    if human.get("message"):
        lines.append(str(human["message"]))
    for c in human.get("comments", []):
        where = f"{c.get('path')}:{c.get('line')}" if c.get("path") else "general"
        lines.append(f"- {where}: {c.get('body')}")
    return "\n".join(lines)


def _short_args(args: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v[:300] + "…" if isinstance(v, str) and len(v) > 300 else v) for k, v in args.items()
    }


def _touched_paths(action: dict[str, Any]) -> list[str]:
    args = action.get("args") or {}
    if action.get("tool") == "apply_diff":
        diff = str(args.get("diff", ""))
        return sorted({line[6:].strip() for line in diff.splitlines() if line.startswith("+++ b/")})
    path = args.get("path")
    return [str(path)] if path else []
