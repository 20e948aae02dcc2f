"""Small node graphs that drive the runner in tests (the real pipeline comes later).

They are loaded in-process or, by ``APPLIANCE_RUNNER__GRAPH=tests.graphs:NAME``, by
an ``appliance serve`` subprocess.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from appliance.runner import Done, Graph, Next, NodeContext, Outcome, Pause, State
from appliance.runner.graph import REJECT
from appliance.states import TaskStatus


@dataclass
class Step:
    """Emits one keyed event, then goes on to ``then`` (or finishes)."""

    name: str
    status: TaskStatus
    then: str | None

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        await ctx.emit("log", {"message": f"{self.name} ran"}, key=f"{self.name}-ran")
        if self.then is None:
            return Done(summary=f"finished after {self.name}")
        return Next(self.then, {**state, self.name: True})


@dataclass
class GateFile:
    """Blocks until a file named after the task appears in ``APPLIANCE_TEST_GATE_DIR``."""

    name: str
    status: TaskStatus
    then: str

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        await ctx.emit("log", {"message": "waiting at the gate"}, key="gate-waiting")
        gate = Path(os.environ["APPLIANCE_TEST_GATE_DIR"]) / ctx.task.id
        while not gate.exists():  # noqa: ASYNC110 - another process makes the file
            await asyncio.sleep(0.05)
        await ctx.progress(0.5, "gate opened")
        return Next(self.then, {**state, "gate": "open"})


@dataclass
class Gated:
    """In-process: records the order tasks start in, and waits for their gate."""

    name: str = "preparing"
    status: TaskStatus = TaskStatus.preparing
    started: list[str] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    blocking: set[str] = field(default_factory=set)
    running: int = 0
    max_running: int = 0

    def gate(self, task_id: str) -> asyncio.Event:
        return self.gates.setdefault(task_id, asyncio.Event())

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        self.started.append(ctx.task.id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if ctx.task.id in self.blocking or ctx.task.prompt.startswith("block"):
                await self.gate(ctx.task.id).wait()
        finally:
            self.running -= 1
        return Done(summary="gated")


def scripted_graph() -> Graph:
    return Graph(
        start="preparing",
        nodes={
            "preparing": Step("preparing", TaskStatus.preparing, "planning"),
            "planning": Step("planning", TaskStatus.planning, "implementing"),
            "implementing": Step("implementing", TaskStatus.implementing, None),
        },
    )


def blocking_graph() -> Graph:
    """preparing → planning → implementing (waits for its gate file) → validating → done."""
    return Graph(
        start="preparing",
        nodes={
            "preparing": Step("preparing", TaskStatus.preparing, "planning"),
            "planning": Step("planning", TaskStatus.planning, "implementing"),
            "implementing": GateFile("implementing", TaskStatus.implementing, "validating"),
            "validating": Step("validating", TaskStatus.validating, None),
        },
    )


def broken_graph() -> Graph:
    """Its first node jumps to a status the state machine forbids (queued → done is fine,
    preparing → publishing is not): the runner must fail the task, not hang."""
    return Graph(
        start="preparing",
        nodes={
            "preparing": Step("preparing", TaskStatus.preparing, "publishing"),
            "publishing": Step("publishing", TaskStatus.publishing, None),
        },
    )


def gated_graph(node: Gated) -> Graph:
    return Graph(start=node.name, nodes={node.name: node})


@dataclass
class Ask:
    """Pauses with a clarifying question until it is answered, then goes on."""

    name: str = "planning"
    status: TaskStatus = TaskStatus.planning

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        human = state.get("human") or {}
        if human.get("action") != "answer":
            return Pause(
                "which file?",
                state,
                question="Which module should change?",
                resume={"answer": "planning"},
            )
        return Next("implementing", {"answer": human["answer"], "rounds": 0})


@dataclass
class Work:
    name: str = "implementing"
    status: TaskStatus = TaskStatus.implementing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        human = state.get("human") or {}
        rounds = state.get("rounds", 0) + (human.get("action") == "request_changes")
        await ctx.emit("log", {"message": f"round {rounds}"})
        return Next("reviewing", {"answer": state["answer"], "rounds": rounds})


@dataclass
class Gate:
    """The human gate: approve (→ publishing), request changes (→ implementing), reject."""

    name: str = "reviewing"
    status: TaskStatus = TaskStatus.reviewing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        return Pause(
            "diff ready",
            state,
            wait=TaskStatus.awaiting_approval,
            resume={"approve": "publishing", "request_changes": "implementing", "reject": REJECT},
        )


@dataclass
class Publish:
    name: str = "publishing"
    status: TaskStatus = TaskStatus.publishing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        who = (state.get("human") or {}).get("by")
        return Done(summary=f"published after {state.get('rounds', 0)} round(s), approved by {who}")


def decision_graph() -> Graph:
    return Graph(
        start="preparing",
        nodes={
            "preparing": Step("preparing", TaskStatus.preparing, "planning"),
            "planning": Ask(),
            "implementing": Work(),
            "reviewing": Gate(),
            "publishing": Publish(),
        },
    )
