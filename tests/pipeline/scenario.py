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


def make_calc_without_tests(tmp_path: Path) -> Upstream:
    """The calc package alone: no test suite, so the task needs no sandbox."""
    up = make_upstream(tmp_path, "calc")
    up.commit(
        {"README.md": "# calc\n\nStatistics helpers.\n", "calc/__init__.py": "",
         "calc/stats.py": STATS},
        "calc with a bug in average",
    )  # fmt: skip
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


def raw(text: str, tokens: int = 50) -> Reply:
    """A reply whose content is ``text`` as is (not necessarily JSON)."""
    return Reply(json=completion(text, prompt_tokens=400, completion_tokens=tokens))


def recovery() -> list[Reply]:
    """What follows a malformed step: the fix, the test run, finish and the PR text."""
    return [reply(READ), reply(EDIT), reply(TEST), reply(FINISH), reply(PR)]


# --- a small TypeScript project --------------------------------------------------------
# The node sandbox image has Debian's Node 18 with Babel 7 (node-babel7) but no tsc: the
# project runs its TypeScript through @babel/register with preset-typescript (types are
# stripped, as ts-node --transpile-only or tsx do) under Node's own test runner.

TS_REGISTER = """// Run TypeScript through Babel: types stripped, no type check (like tsx).
require("@babel/register")({
  extensions: [".ts", ".js"],
  presets: ["@babel/preset-typescript"],
  plugins: ["@babel/plugin-transform-modules-commonjs"],
  cache: false,
});
"""

TS_PACKAGE = """{
  "name": "shapes",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "test": "node --require ./scripts/ts-register.js --test test/area.test.ts"
  }
}
"""

TS_AREA = """export interface Rect {
  width: number;
  height: number;
}

export function area(r: Rect): number {
  return r.width + r.height;
}

export function perimeter(r: Rect): number {
  return 2 * (r.width + r.height);
}
"""

TS_TEST = """import { test } from "node:test";
import assert from "node:assert/strict";
import { area, perimeter, Rect } from "../src/area";

const r: Rect = { width: 3, height: 4 };

test("area of a rectangle", () => {
  assert.equal(area(r), 12);
});

test("perimeter of a rectangle", () => {
  assert.equal(perimeter(r), 14);
});
"""

TS_REQUEST = "area() in src/area.ts adds width and height; it must multiply them (3x4 is 12)"
NODE_IMAGE = "localhost/appliance-sandbox-node:1"


def make_shapes(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path, "shapes")
    up.commit(
        {
            "README.md": "# shapes\n\nGeometry helpers in TypeScript.\n",
            "package.json": TS_PACKAGE,
            "scripts/ts-register.js": TS_REGISTER,
            "src/area.ts": TS_AREA,
            "test/area.test.ts": TS_TEST,
        },
        "shapes with a bug in area",
    )
    return up


def ts_edit(new: str, thought: str) -> dict[str, Any]:
    return {
        "thought": thought,
        "tool": "edit_file",
        "args": {"path": "src/area.ts", "old": "return r.width + r.height;", "new": new},
    }


TS_UNDERSTANDING = {
    "intent": "bugfix",
    "summary": "area() adds the sides instead of multiplying them.",
    "ambiguous": False,
    "search_terms": ["area"],
}
TS_PLAN = {
    "steps": [{"title": "Multiply width by height in area()", "files": ["src/area.ts"]}],
    "risks": [],
    "test_strategy": "npm test; the area test must pass",
}
TS_PR = {
    "title": "Fix area() of a rectangle",
    "summary": "area() added width and height; it now multiplies them.",
    "changes": [{"path": "src/area.ts", "change": "multiply the sides"}],
}
