"""The implementing loop's conversation stays inside the model's token budget: long
observations are cut with a note, older steps condensed, the plan and the last steps
kept; and prompts are rendered strictly (a missing variable is an error)."""

from __future__ import annotations

import jinja2
import pytest

from appliance.pipeline.context import History, observation_chars
from appliance.pipeline.prompting import render
from appliance.pipeline.schemas import Plan
from models.actions import estimate_tokens

PLAN_TEXT = "Plan:\n1. Divide by the number of values in average() [calc/stats.py]"
SYSTEM = "You are a careful software engineer. " * 40


def _size(messages: list[dict[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)


def _history(steps: int, observation_chars_each: int, budget: int) -> History:
    history = History()
    history.max_observation_chars = observation_chars(budget, history.keep_last)
    for n in range(1, steps + 1):
        action = {"thought": "", "tool": "read_file", "args": {"path": f"calc/m{n}.py"}}
        history.add(n, action, True, f"contents of m{n}\n" + "x" * observation_chars_each)
    return history


def test_an_8k_model_gets_messages_inside_its_budget_with_long_observations() -> None:
    # 8,192 tokens of context, 1,024 kept for the reply: four 6,000-character file reads
    # used to be sent whole (about 8,000 tokens of observations alone)
    budget = 8192 - 1024
    history = _history(10, 20_000, budget)
    messages = history.messages(SYSTEM, PLAN_TEXT, budget_tokens=budget)
    assert _size(messages) <= budget
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert messages[1]["content"].startswith(PLAN_TEXT)
    # the last four steps are there, as actions and (cut) observations
    recent = messages[2:]
    assert [m["role"] for m in recent] == ["assistant", "user"] * 4
    assert [f"m{n}.py" in recent[2 * i]["content"] for i, n in enumerate(range(7, 11))] == [
        True
    ] * 4
    assert all("more characters cut; narrow the request" in m["content"] for m in recent[1::2])
    # the six older steps are condensed into one line each
    assert (
        "Earlier steps:\nstep 1: read_file calc/m1.py -> ok: contents of m1"
        in messages[1]["content"]
    )
    assert "step 6: read_file calc/m6.py -> ok" in messages[1]["content"]


def test_the_observation_cap_follows_the_token_budget() -> None:
    small, large = observation_chars(2048 - 512), observation_chars(131_072 - 1024)
    assert small < 1000  # a 2k model: four observations fit in half its budget
    assert 4 * small / 3 <= (2048 - 512) / 2
    assert large == 12_000
    history = _history(1, 50_000, 2048 - 512)
    assert len(history.turns[0].observation) < 1200
    assert history.turns[0].observation.endswith("more characters cut; narrow the request]")


def test_recent_observations_are_cut_further_when_the_fixed_part_is_over_budget() -> None:
    # observations stored under a large model's cap, then sent to a small one
    history = _history(4, 11_000, 131_072)
    budget = 2000
    messages = history.messages(SYSTEM, PLAN_TEXT, budget_tokens=budget)
    assert _size(messages) <= budget
    assert messages[1]["content"] == PLAN_TEXT  # nothing older to condense
    assert [m["role"] for m in messages[2:]] == ["assistant", "user"] * 4
    for obs in messages[3::2]:
        assert obs["content"].startswith("Result of read_file:\ncontents of m")
        assert "more characters cut; narrow the request" in obs["content"]


def test_oldest_condensed_steps_are_omitted_first_when_even_they_do_not_fit() -> None:
    history = _history(60, 10, 8192)
    budget = _size(history.messages(SYSTEM, PLAN_TEXT, budget_tokens=10**6)) - 200
    messages = history.messages(SYSTEM, PLAN_TEXT, budget_tokens=budget)
    assert _size(messages) <= budget
    text = messages[1]["content"]
    assert "oldest omitted)" in text
    assert "step 1: read_file" not in text
    assert "step 56: read_file calc/m56.py" in text  # the newest condensed step stays


def test_a_budget_smaller_than_the_prompts_still_is_not_exceeded() -> None:
    history = _history(2, 100, 8192)
    task = PLAN_TEXT + "\n\nA reviewer asked for changes:\n" + "y" * 30_000
    messages = history.messages(SYSTEM, task, budget_tokens=3000)
    assert _size(messages) <= 3000
    assert "characters cut to fit the model's context" in messages[1]["content"]
    assert messages[1]["content"].startswith(PLAN_TEXT)


def test_a_prompt_renders_with_all_its_values() -> None:
    plan = Plan.model_validate({"steps": [{"title": "Fix average()", "files": ["calc/stats.py"]}]})
    text = render(
        "task",
        intent="bugfix",
        request="average() is wrong",
        plan=plan,
        test_command="pytest",
        baseline_failures=["tests::test_old"],
        feedback="",
    )
    assert text.startswith("Request (bugfix): average() is wrong")
    assert "1. Fix average() [calc/stats.py]" in text
    assert "Tests: pytest (already failing before any change: tests::test_old)" in text


def test_a_prompt_missing_a_value_is_an_error_not_a_hole() -> None:
    plan = Plan.model_validate({"steps": [{"title": "Fix average()"}]})
    with pytest.raises(jinja2.UndefinedError, match="feedback"):
        render(
            "task",
            intent="bugfix",
            request="average() is wrong",
            plan=plan,
            test_command="pytest",
            baseline_failures=[],
        )
