"""A real fixture repository with a failing test, and a realistic scripted trajectory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.gitrepos import Upstream, make_upstream
from tests.models.scripted_server import Reply, completion

STATS = '''"""Small statistics helpers."""


def average(values: list[float]) -> float:
    """The arithmetic mean of ``values``."""
    if not values:
        raise ValueError("average of nothing")
    return sum(values) / (len(values) - 1)


def spread(values: list[float]) -> float:
    return max(values) - min(values)
'''

TESTS = """from calc.stats import average, spread


def test_average():
    assert average([1, 2, 3, 4]) == 2.5


def test_spread():
    assert spread([1, 5, 3]) == 4
"""

REQUEST = "average() returns the wrong value: average([1, 2, 3, 4]) should be 2.5"


def make_calc(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path, "calc")
    up.commit(
        {
            "README.md": "# calc\n\nStatistics helpers.\n",
            "calc/__init__.py": "",
            "calc/stats.py": STATS,
            "tests/test_stats.py": TESTS,
            "pytest.ini": "[pytest]\ntestpaths = tests\n",
        },
        "calc with a bug in average",
    )
    return up


def reply(obj: dict[str, Any], tokens: int = 50) -> Reply:
    return Reply(json=completion(json.dumps(obj), prompt_tokens=400, completion_tokens=tokens))


UNDERSTANDING = {
    "intent": "bugfix",
    "summary": "average() divides by len - 1 instead of len.",
    "ambiguous": False,
    "search_terms": ["average"],
}
PLAN = {
    "steps": [{"title": "Divide by the number of values in average()", "files": ["calc/stats.py"]}],
    "risks": ["callers relying on the wrong value"],
    "test_strategy": "run pytest; test_average must pass",
}
READ = {"thought": "Look at the function.", "tool": "read_file", "args": {"path": "calc/stats.py"}}
EDIT = {
    "thought": "The divisor is off by one.",
    "tool": "edit_file",
    "args": {
        "path": "calc/stats.py",
        "old": "return sum(values) / (len(values) - 1)",
        "new": "return sum(values) / len(values)",
    },
}
TEST = {"thought": "Check the fix.", "tool": "run_tests", "args": {}}
FINISH = {"thought": "", "tool": "finish", "args": {"summary": "Fixed the divisor; tests pass."}}
PR = {
    "title": "Fix average() divisor",
    "summary": "average() divided by len - 1; it now divides by the number of values.",
    "changes": [{"path": "calc/stats.py", "change": "divide by len(values)"}],
    "risks": "none known",
    "rollback": "revert the commit",
}


def happy_path() -> list[Reply]:
    return [reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(TEST),
            reply(FINISH), reply(PR)]  # fmt: skip
