"""The in-process task runner and the graph protocol it executes."""

from appliance.runner.graph import (
    Done,
    Fail,
    Graph,
    Next,
    Node,
    NodeContext,
    Outcome,
    Pause,
    State,
    TaskInfo,
    load_graph,
)
from appliance.runner.hub import EventHub
from appliance.runner.runner import TaskRunner

__all__ = [
    "Done",
    "EventHub",
    "Fail",
    "Graph",
    "Next",
    "Node",
    "NodeContext",
    "Outcome",
    "Pause",
    "State",
    "TaskInfo",
    "TaskRunner",
    "load_graph",
]
