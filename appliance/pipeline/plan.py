"""``planning``: understand the request, gather context, ask the model for a plan.

1. **Understanding** (schema :class:`Understanding`): intent, files to avoid, conventions,
   search terms. An ambiguous request pauses the task with the model's question; the
   answer comes back in ``state["human"]`` and planning starts again with it.
2. **Context**: hybrid search over the index seeded by the request (stack-trace frames
   and identifiers count most), the search terms, and a repo map centred on the hits.
3. **Plan** (schema :class:`Plan`), recorded as a ``plan`` event. With the repository
   setting ``plan_approval`` the task waits for a person to approve the plan.

A model that cannot produce a valid understanding or plan after its retries does not end
the task: the request itself becomes the one-step plan, and implementing goes on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from appliance.index.query import analyse
from appliance.index.repomap import render_repo_map
from appliance.index.search import search
from appliance.pipeline.prompting import render
from appliance.pipeline.schemas import Plan, PlanStep, Understanding
from appliance.pipeline.workspace import appliance_of, model_client, repository
from appliance.runner.graph import REJECT, Next, NodeContext, Outcome, Pause, State
from appliance.states import TaskStatus
from models.errors import FormatError

log = logging.getLogger(__name__)
FORMAT_RETRIES = 2


@dataclass
class Planning:
    name: str = "planning"
    status: TaskStatus = TaskStatus.planning

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        state = dict(state)
        human = state.pop("human", None) or {}
        appliance = appliance_of(ctx)
        repo = await asyncio.to_thread(repository, ctx)
        client = model_client(ctx)
        info = analyse(ctx.task.prompt)
        rounds = state.get("plan_rounds", 0)
        if human.get("action") == "answer":
            state["answer"] = human.get("answer", "")
            state.pop("understanding", None)
        if human.get("action") == "request_changes":  # the plan was not approved as is
            state["plan_feedback"] = human.get("message", "")
            state.pop("plan", None)

        if "understanding" not in state:
            await ctx.progress(0.1, "understanding the request")
            prompt = render(
                "understand",
                repository=repo.name,
                request=ctx.task.prompt,
                frames=info.frames[:8],
                answer=state.get("answer"),
                question=state.get("question", ""),
            )
            understanding = await self._ask(ctx, client, prompt, Understanding)
            if understanding is None:
                understanding = Understanding(
                    intent="bugfix" if info.frames else "feature",
                    summary=ctx.task.prompt[:600],
                    ambiguous=False,
                )
            state["understanding"] = understanding.model_dump()
            await ctx.emit(
                "agent_thought",
                {"text": f"{understanding.intent}: {understanding.summary}"},
                key=f"understanding-{rounds}-{bool(state.get('answer'))}",
            )
            if understanding.ambiguous and understanding.question and "answer" not in state:
                state["question"] = understanding.question
                return Pause(
                    "the request needs an answer",
                    state,
                    question=understanding.question,
                    resume={"answer": "planning"},
                )
        understanding = Understanding.model_validate(state["understanding"])
        # The request's own file rules and those the model read out of it: the tools
        # enforce both, and the implementing prompt states both.
        constraints = dict(state.get("constraints", {}))
        avoid = {*ctx.task.constraints.get("avoid_files", []), *understanding.avoid_files}
        if avoid:
            constraints["avoid_files"] = sorted(avoid)
        if ctx.task.constraints.get("max_files_changed"):
            constraints["max_files_changed"] = ctx.task.constraints["max_files_changed"]
        state["constraints"] = constraints

        if "plan" not in state:
            await ctx.progress(0.4, "gathering context")
            index = await asyncio.to_thread(appliance.index.open, repo.name)
            query = " ".join([ctx.task.prompt, *understanding.search_terms])
            hits = await asyncio.to_thread(search, index, query, 10)
            focus = [h.path for h in hits[:5]]
            ranked = await asyncio.to_thread(
                index.graph.rank,
                {p: 1.0 for p in focus},
                seed_names=[*info.identifiers[:10], *understanding.search_terms],
            )
            symbols = {p: s for p in ranked if (s := index.symbols_of(p)) is not None}
            budget = max(400, min(2000, client.context_length // 6))
            repo_map = render_repo_map(
                ranked, symbols, token_budget=budget, focus_names=info.identifiers[:10]
            )
            notes = [*understanding.patterns, *ctx.task.constraints.get("notes", [])]
            if state.get("plan_feedback"):
                notes.append(f"Reviewer's feedback on the last plan: {state['plan_feedback']}")
            answer = state.get("answer")
            request = ctx.task.prompt + (f"\n(Answer to your question: {answer})" if answer else "")
            prompt = render(
                "plan",
                intent=understanding.intent,
                request=request,
                notes=notes,
                hits=hits,
                repo_map=repo_map or "(empty)",
                test_command=state.get("test_command"),
                max_steps=8,
            )
            await ctx.progress(0.6, "planning")
            plan = await self._ask(ctx, client, prompt, Plan)
            if plan is None:
                plan = Plan(
                    steps=[PlanStep(title=understanding.summary[:200], files=focus[:3])],
                    test_strategy="run the repository's tests",
                )
            state["plan"] = plan.model_dump()
            state["context_files"] = [h.path for h in hits]
            state["plan_rounds"] = rounds + 1
            await ctx.emit(
                "plan",
                {"intent": understanding.intent, **plan.model_dump()},
                key=f"plan-{rounds}",
            )
        if (repo.settings or {}).get("plan_approval"):  # approve goes straight to implementing
            return Pause(
                "the plan waits for approval",
                state,
                wait=TaskStatus.awaiting_approval,
                resume={"approve": "implementing", "request_changes": "planning", "reject": REJECT},
            )
        return Next("implementing", state)

    async def _ask(self, ctx: NodeContext, client: Any, prompt: str, schema: Any) -> Any:
        messages = [
            {"role": "system", "content": "You are a careful senior software engineer."},
            {"role": "user", "content": prompt},
        ]
        # The reply is capped like every other: without a cap a model that rambles inside
        # a JSON string generates until its context is full (minutes on a CPU).
        max_tokens = appliance_of(ctx).settings.pipeline.reply_tokens
        try:
            return await client.action(
                messages,
                schema,
                task_id=ctx.task.id,
                max_tokens=max_tokens,
                format_retries=FORMAT_RETRIES,
            )
        except FormatError as exc:
            await ctx.emit(
                "error",
                {
                    "severity": "warning",
                    "message": f"the model's {schema.__name__} was unusable: {exc}",
                    "recoverable": True,
                },
            )
            log.warning("task %s: %s reply unusable: %s", ctx.task.id, schema.__name__, exc)
            return None
