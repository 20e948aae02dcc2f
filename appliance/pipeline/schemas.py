"""What the pipeline asks the model for, as pydantic models (their JSON schemas constrain
decoding: ``response_format`` json_schema on vLLM and llama.cpp).

Small models do best with flat, short schemas: every field has a description written for
the model, lists are bounded, and free text is capped so a runaway reply cannot fill the
context.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Intent = Literal["feature", "bugfix", "refactor", "docs", "dependency_update"]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Understanding(_Reply):
    """How the request reads: what kind of change, what it must not touch, and whether
    it is clear enough to start."""

    intent: Intent = Field(description="The kind of change asked for.")
    summary: str = Field(max_length=600, description="The request in one or two sentences.")
    ambiguous: bool = Field(
        description="True only if the request cannot be done without asking the user."
    )
    question: str = Field(
        "", max_length=400, description="If ambiguous: the one question to ask the user."
    )
    avoid_files: list[str] = Field(
        default_factory=list, max_length=20, description="Paths the request says not to touch."
    )
    patterns: list[str] = Field(
        default_factory=list, max_length=10, description="Conventions the request asks to follow."
    )
    search_terms: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Identifiers, file names or words to search the code for.",
    )


class PlanStep(_Reply):
    title: str = Field(max_length=200, description="What this step does.")
    files: list[str] = Field(default_factory=list, max_length=10, description="Files it touches.")
    detail: str = Field("", max_length=600, description="How, briefly.")


class Plan(_Reply):
    """An ordered plan for the change."""

    steps: list[PlanStep] = Field(min_length=1, max_length=10, description="Ordered steps.")
    risks: list[str] = Field(default_factory=list, max_length=6, description="What could break.")
    test_strategy: str = Field("", max_length=600, description="How the change will be tested.")


class Action(_Reply):
    """The next action: one tool call, with a short reason."""

    thought: str = Field("", max_length=800, description="Why this action, briefly.")
    tool: str = Field(description="The tool to call.")
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments.")


def action_model(tool_names: list[str]) -> type[Action]:
    """:class:`Action` with ``tool`` limited to ``tool_names`` (so decoding cannot invent one).
    Built once per tool set: making a pydantic model costs milliseconds."""
    return _action_model(tuple(tool_names))


@functools.cache
def _action_model(tool_names: tuple[str, ...]) -> type[Action]:
    literal = Literal[tuple(tool_names)]  # type: ignore[valid-type]

    class ToolAction(Action):
        """The next action: one tool call, with a short reason."""

        tool: literal = Field(description="The tool to call.")  # type: ignore[valid-type]

    ToolAction.__name__ = "Action"
    return ToolAction


class FileChange(_Reply):
    path: str = Field(max_length=500)
    change: str = Field(max_length=400, description="What changed in this file and why.")


class PullRequestText(_Reply):
    """The pull request's text, written for the reviewer."""

    title: str = Field(max_length=120, description="Imperative, under 72 characters.")
    summary: str = Field(max_length=1500, description="What and why, for a reviewer.")
    changes: list[FileChange] = Field(default_factory=list, max_length=30)
    risks: str = Field("", max_length=800, description="What could go wrong.")
    rollback: str = Field("", max_length=400, description="How to undo it.")
    decision_record: str = Field(
        "", max_length=1500, description="For features: context, decision, consequences."
    )
