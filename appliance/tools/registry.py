"""A tool registry: name → (description, pydantic argument model, function).

The model asks for a tool by name with JSON arguments. :meth:`ToolRegistry.call` is the one
door every call goes through, and it never raises:

- the arguments are validated by the tool's pydantic model (unknown fields are refused, so
  a misspelt argument is reported rather than ignored); a failure names the field;
- an :class:`~appliance.errors.ApplianceError` raised by the tool (a refused path, a bad
  regex) becomes ``ok=False`` with its message, which says what to do instead;
- any other exception is a bug in the tool: it is logged with its traceback and the model
  gets ``internal error in tool X``;
- the output is capped (20,000 characters by default) with a note saying how much was cut
  and how to ask for the rest.

:meth:`ToolRegistry.schemas` gives each tool's JSON schema, for an OpenAI ``tools`` list
(:meth:`ToolRegistry.openai_tools`) or a JSON-schema union of actions for guided decoding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from appliance.index.indexer import RepoIndex
    from appliance.pipeline.execution import TaskSandbox
    from appliance.tools.changeset import EditSession

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_CAP = 20_000

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True)
class ToolContext:
    """What a tool may reach: the task's worktree, the repository's index, the task's edit
    transaction and its sandbox. Every field but the worktree has a default, so read-only
    tools and their tests build it as ``ToolContext(worktree=path)``.
    """

    worktree: Path
    index: RepoIndex | None = None  # the index of the task's base commit, when built
    edits: EditSession | None = None  # the task's edit transaction; None: read-only tools
    sandbox: TaskSandbox | None = None  # where run_command/run_tests/run_linter execute
    #: told of each command run (command, exit code, output snippet), for the task's events
    on_command: Callable[[str, int, str], None] | None = None


@dataclass(frozen=True)
class ToolResult:
    """What the model sees: whether the call worked, and the text it produced."""

    ok: bool
    output: str


@dataclass(frozen=True)
class Tool(Generic[ArgsT]):
    """One tool. ``fn`` gets validated arguments and returns the text for the model.

    ``more_hint`` finishes the note written when the output is cut ("use line_start/line_end
    to read the rest").
    """

    name: str
    description: str
    args: type[ArgsT]
    fn: Callable[[ToolContext, ArgsT], str]
    more_hint: str = "narrow the request to see the rest"

    def schema(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}`` with the arguments' JSON schema."""
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        return {"name": self.name, "description": self.description, "parameters": parameters}


class ToolRegistry:
    """Tools by name, in the order they were registered."""

    def __init__(
        self, tools: Iterable[Tool[Any]] = (), *, output_cap: int = DEFAULT_OUTPUT_CAP
    ) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._schemas: list[dict[str, Any]] | None = None
        self.output_cap = output_cap
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[Any]) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def get(self, name: str) -> Tool[Any]:
        """The tool called ``name``; ``KeyError`` if there is none."""
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        if self._schemas is None:  # JSON schemas are costly to build and never change
            self._schemas = [tool.schema() for tool in self._tools.values()]
        return self._schemas

    def openai_tools(self) -> list[dict[str, Any]]:
        """The ``tools`` list of an OpenAI chat-completions request."""
        return [{"type": "function", "function": schema} for schema in self.schemas()]

    def call(self, name: str, raw_args: object, ctx: ToolContext) -> ToolResult:
        """Run tool ``name`` with the model's JSON arguments; never raises."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools)
            return ToolResult(False, f"unknown tool {name!r}; the tools are: {known}")
        if raw_args is None:
            raw_args = {}
        if not isinstance(raw_args, dict):
            return ToolResult(
                False, f"the arguments of {name} must be a JSON object, not {_json_type(raw_args)}"
            )
        try:
            args = tool.args.model_validate(raw_args)
        except ValidationError as exc:
            return ToolResult(False, f"invalid arguments for {name}: {_describe(exc)}")
        try:
            output = tool.fn(ctx, args)
        except ApplianceError as exc:
            return ToolResult(False, exc.message)
        except Exception:
            logger.exception("tool %s failed", name, extra={"tool": name})
            return ToolResult(
                False,
                f"internal error in tool {name}; it was logged. Try another approach or tool.",
            )
        return ToolResult(True, cap_output(output, self.output_cap, tool.more_hint))


def cap_output(text: str, cap: int, hint: str) -> str:
    """``text`` cut to at most ``cap`` characters (at a line end when one is near)."""
    if len(text) <= cap:
        return text
    cut = text.rfind("\n", 0, cap)
    if cut < cap // 2:
        cut = cap
    return (
        text[:cut].rstrip("\n") + f"\n[output cut: showed {cut:,} of {len(text):,} characters; "
        f"{hint}]"
    )


def _describe(exc: ValidationError) -> str:
    """The first few problems, each as ``field: what is wrong``."""
    problems = []
    for error in exc.errors()[:3]:
        field = ".".join(str(part) for part in error["loc"]) or "arguments"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown argument; remove it"
        elif error["type"] == "missing":
            message = "required argument is missing"
        problems.append(f"{field!r}: {message}")
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a bool"}
    return names.get(type(value), type(value).__name__)
