"""A node graph that walks a task through every state and emits every event kind the
pipeline emits, for the UI tests (in-process, and in ``appliance serve`` subprocesses via
``APPLIANCE_RUNNER__GRAPH=tests.ui.graph:ui_graph``).

The request steers it: "ask" pauses with a clarifying question, "fail" fails with a test
failure. ``UI_TEST_STEP_DELAY`` (seconds) spaces the implementing events out, so a
browser can watch them arrive.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from appliance.runner import Done, Fail, Graph, Next, Node, NodeContext, Outcome, Pause, State
from appliance.runner.graph import REJECT
from appliance.states import FailureCategory, TaskStatus

DIFF = """diff --git a/app/calc.py b/app/calc.py
--- a/app/calc.py
+++ b/app/calc.py
@@ -1,6 +1,8 @@
 def add(a: int, b: int) -> int:
-    return a - b
+    \"\"\"Sum of a and b.\"\"\"
+    return a + b
~
~
 def mul(a: int, b: int) -> int:
+    # the product
     return a * b
diff --git a/tests/test_calc.py b/tests/test_calc.py
new file mode 100644
--- /dev/null
+++ b/tests/test_calc.py
@@ -0,0 +1,4 @@
+from app.calc import add
+
+def test_add():
+    assert add(2, 3) == 5
""".replace("~", " ")  # blank context lines are one space
STATS = [
    {"path": "app/calc.py", "added": 3, "removed": 1, "status": "modified"},
    {"path": "tests/test_calc.py", "added": 4, "removed": 0, "status": "added"},
]


def _delay() -> float:
    return float(os.environ.get("UI_TEST_STEP_DELAY", "0") or 0)


@dataclass
class Prepare:
    name: str = "preparing"
    status: TaskStatus = TaskStatus.preparing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        await ctx.progress(0.1, "cloning")
        await ctx.emit("checkpoint_reached", {"node": "preparing"}, key="ckpt-prep")
        return Next("planning", state)


@dataclass
class Plan:
    name: str = "planning"
    status: TaskStatus = TaskStatus.planning

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        human = state.get("human") or {}
        if "ask" in ctx.task.prompt and human.get("action") != "answer" and "answer" not in state:
            return Pause(
                "the request needs an answer",
                state,
                question="Should add() also accept floats?",
                resume={"answer": "planning"},
            )
        if human.get("action") == "answer":
            state = {**state, "answer": human["answer"]}
        await ctx.emit("agent_thought", {"text": "bugfix: add() subtracts"}, key="thought")
        await ctx.emit(
            "plan",
            {
                "intent": "bugfix",
                "steps": [
                    {"title": "Fix add()", "files": ["app/calc.py"], "detail": "use +"},
                    {"title": "Test add()", "files": ["tests/test_calc.py"], "detail": ""},
                ],
                "risks": ["callers relying on the bug"],
                "test_strategy": "pytest tests/test_calc.py",
            },
            key="plan",
        )
        return Next("implementing", {**state, "round": state.get("round", 0)})


@dataclass
class Implement:
    name: str = "implementing"
    status: TaskStatus = TaskStatus.implementing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        rnd = int(state.get("round", 0)) + 1
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "tool_call",
                {
                    "tool": "read_file",
                    "args": {"path": "app/calc.py"},
                    "ok": True,
                    "output_snippet": "def add(a, b): return a - b",
                },
            ),
            ("file_modified", {"path": "app/calc.py", "diff_stat": {"added": 3, "removed": 1}}),
            (
                "file_modified",
                {"path": "tests/test_calc.py", "diff_stat": {"added": 4, "removed": 0}},
            ),
            (
                "command_executed",
                {"command": "pytest -q", "exit_code": 0, "output_snippet": "1 passed in 0.01s"},
            ),
            (
                "error",
                {"severity": "warning", "message": "ruff: line too long", "recoverable": True},
            ),
            ("mystery_kind", {"anything": 1}),
        ]
        for i, (kind, payload) in enumerate(events):
            if _delay():
                await asyncio.sleep(_delay())
            await ctx.emit(kind, payload, key=f"impl-{rnd}-{i}")
        if "fail" in ctx.task.prompt:
            return Fail(FailureCategory.code_logic, "tests fail: test_add (assert 1 == 5)")
        return Next("validating", {**state, "round": rnd})


@dataclass
class Validate:
    name: str = "validating"
    status: TaskStatus = TaskStatus.validating

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        rnd = int(state["round"])
        await ctx.emit(
            "iteration",
            {
                "round": rnd,
                "diff": DIFF,
                "tests": {
                    "passed": 11,
                    "failed": 1 if rnd == 1 else 0,
                    "new_failures": ["test_mul"] if rnd == 1 else [],
                },
            },
            key=f"iteration-{rnd}",
        )
        return Next("reviewing", state)


@dataclass
class Review:
    name: str = "reviewing"
    status: TaskStatus = TaskStatus.reviewing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        await ctx.emit(
            "review_ready",
            {
                "diff": DIFF,
                "stats": STATS,
                "pr_title": "Fix add()",
                "pr_body": "Fixes add().",
                "findings": [
                    {
                        "path": "app/calc.py",
                        "line": 3,
                        "rule": "docstring",
                        "severity": "low",
                        "excerpt": "new docstring",
                    }
                ],
            },
            key=f"review-{state['round']}",
        )
        return Pause(
            "the change waits for review",
            state,
            wait=TaskStatus.awaiting_approval,
            resume={"approve": "publishing", "request_changes": "implementing", "reject": REJECT},
        )


@dataclass
class Publish:
    name: str = "publishing"
    status: TaskStatus = TaskStatus.publishing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        branch = f"appliance/{ctx.task.id[:8]}-fix-add"
        url = f"https://forge.example/team/svc/pull/{ctx.task.id[:4]}"
        await ctx.emit("published", {"branch": branch, "url": url}, key="published")
        return Done(summary=f"published {branch}")


def ui_graph() -> Graph:
    nodes: list[Node] = [Prepare(), Plan(), Implement(), Validate(), Review(), Publish()]
    return Graph(start="preparing", nodes={n.name: n for n in nodes})
