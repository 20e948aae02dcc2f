"""The agent pipeline: a task's life as runner nodes (DESIGN.md, "A task's life").

``preparing → planning → implementing ⇄ validating → reviewing → awaiting_approval →
publishing → done``; a question pauses it, the human gate waits in awaiting_approval,
guards hand it over. Each node is a module; :func:`pipeline_graph` wires them.
"""

from __future__ import annotations

from appliance.runner.graph import Graph, Node


def pipeline_graph() -> Graph:
    from appliance.pipeline.implement import Implementing
    from appliance.pipeline.plan import Planning
    from appliance.pipeline.prepare import Preparing
    from appliance.pipeline.publish import Publishing
    from appliance.pipeline.review import Reviewing
    from appliance.pipeline.validate import Validating

    nodes: list[Node] = [
        Preparing(),
        Planning(),
        Implementing(),
        Validating(),
        Reviewing(),
        Publishing(),
    ]
    return Graph(start="preparing", nodes={n.name: n for n in nodes})
