"""What the runner executes: a graph of nodes, each a step of a task's life.

A node is entered with the state saved in the task's last checkpoint and returns
an outcome: go on to another node with new state, finish, fail, or pause. The
runner writes a checkpoint at every edge, so a node may be re-run after a crash
from the state it was entered with: nodes record their side effects (an event
with a ``key``, a field in the state) so that a re-run does not repeat them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from appliance.errors import ConfigError
from appliance.states import FailureCategory, TaskStatus

State = dict[str, Any]


@dataclass(frozen=True)
class TaskInfo:
    """What a node may know of its task (a snapshot; the store holds the truth)."""

    id: str
    repository_id: int
    prompt: str
    constraints: Mapping[str, Any]
    priority: str
    created_by: str


class NodeContext(Protocol):
    task: TaskInfo
    services: Mapping[str, Any]

    async def emit(self, kind: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        """Append an event to the task's stream; with ``key``, at most once per task."""

    async def progress(self, fraction: float | None, step: str | None = None) -> None:
        """Report how far the current node is (0..1) and what it is doing."""


@dataclass(frozen=True)
class Next:
    node: str
    state: State = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    summary: str | None = None


@dataclass(frozen=True)
class Fail:
    category: FailureCategory
    message: str


#: a :attr:`Pause.resume` target that ends the task as rejected instead of running a node
REJECT = "!rejected"


@dataclass(frozen=True)
class Pause:
    """Stop and wait for a person.

    ``wait`` is the status while waiting: ``paused`` (a question, a guard) or
    ``awaiting_approval`` (the human gate). ``resume`` maps each action a person may take
    (``answer``, ``approve``, ``request_changes``, ``reject``…) to the node the task goes on
    at, or :data:`REJECT`; the node then finds the person's input in ``state["human"]``.
    Without ``resume`` the only action is ``resume``, back at this node.
    """

    reason: str
    state: State = field(default_factory=dict)
    wait: TaskStatus = TaskStatus.paused
    resume: Mapping[str, str] = field(default_factory=dict)
    question: str | None = None


Outcome = Next | Done | Fail | Pause


@runtime_checkable
class Node(Protocol):
    name: str
    status: TaskStatus

    async def run(self, ctx: NodeContext, state: State) -> Outcome: ...


@dataclass(frozen=True)
class Graph:
    start: str
    nodes: Mapping[str, Node]

    def __post_init__(self) -> None:
        if self.start not in self.nodes:
            raise ConfigError(f"graph start node {self.start!r} is not one of its nodes")
        for name, node in self.nodes.items():
            if node.name != name:
                raise ConfigError(f"graph node registered as {name!r} calls itself {node.name!r}")

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise ConfigError(
                f"the task's checkpoint names node {name!r}, which this graph lacks"
            ) from None


# Registered graphs by name. The agent pipeline registers "pipeline" when it lands.
GRAPHS: dict[str, str] = {
    "pipeline": "appliance.pipeline:pipeline_graph",
}


def load_graph(spec: str) -> Graph:
    """Resolve a registered name or ``module:attr`` (a Graph or a callable returning one)."""
    target = GRAPHS.get(spec, spec)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ConfigError(
            f"runner graph {spec!r} is neither a registered name ({', '.join(GRAPHS)}) "
            "nor 'module:attr'"
        )
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load runner graph {spec!r}: {exc}") from exc
    graph = obj() if callable(obj) and not isinstance(obj, Graph) else obj
    if not isinstance(graph, Graph):
        raise ConfigError(f"runner graph {spec!r} is a {type(graph).__name__}, not a Graph")
    return graph
