"""Node graphs for benchmarks: cheap, deterministic stand-ins for the agent pipeline.

An ``appliance serve`` subprocess loads one with
``APPLIANCE_RUNNER__GRAPH=bench.graphs:ticker_graph`` (``PYTHONPATH`` = the repo root).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from appliance.runner import Done, Graph, Next, NodeContext, Outcome, State
from appliance.states import TaskStatus

# Per node: this many log events, each after a pause drawn from this range (seconds).
TICKS_PER_NODE = 5
TICK_DELAY_S = (0.02, 0.05)


@dataclass
class Ticker:
    """Emits ``ticks`` log events a few tens of milliseconds apart, then goes on to
    ``then`` (or finishes the task when ``then`` is None)."""

    name: str
    status: TaskStatus
    then: str | None
    ticks: int = TICKS_PER_NODE

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        for i in range(self.ticks):
            await asyncio.sleep(random.uniform(*TICK_DELAY_S))
            # Keyed, so a node re-run after a crash does not repeat its events.
            await ctx.emit(
                "log",
                {"message": f"{self.name} tick {i + 1}/{self.ticks}", "node": self.name, "tick": i},
                key=f"{self.name}-tick-{i}",
            )
        if self.then is None:
            return Done(summary=f"ticked through to {self.name}")
        return Next(self.then, {**state, self.name: self.ticks})


def ticker_graph() -> Graph:
    """preparing → planning → implementing → done; about 0.5 s and ~20 events a task."""
    return Graph(
        start="preparing",
        nodes={
            "preparing": Ticker("preparing", TaskStatus.preparing, "planning"),
            "planning": Ticker("planning", TaskStatus.planning, "implementing"),
            "implementing": Ticker("implementing", TaskStatus.implementing, None),
        },
    )
