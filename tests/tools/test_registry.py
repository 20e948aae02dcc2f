"""ToolRegistry: schemas the model is given, and every way a call can go wrong."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import PathRefused
from appliance.tools.files import READ_TOOLS
from appliance.tools.project import PROJECT_TOOLS
from appliance.tools.registry import Tool, ToolContext, ToolRegistry


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="What to say back.")
    times: int = Field(1, ge=1, le=5)


def echo(ctx: ToolContext, args: EchoArgs) -> str:
    if args.text == "refuse":
        raise PathRefused("'/etc' is an absolute path; give a relative one")
    if args.text == "crash":
        raise ZeroDivisionError("boom")
    return "\n".join([args.text] * args.times)


ECHO = Tool(name="echo", description="Say it back.", args=EchoArgs, fn=echo, more_hint="ask less")


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(worktree=tmp_path)


def test_schemas_describe_each_tool_for_openai_and_json_schema() -> None:
    registry = ToolRegistry([*READ_TOOLS, *PROJECT_TOOLS])
    schemas = {schema["name"]: schema for schema in registry.schemas()}
    assert list(schemas) == ["read_file", "list_directory", "search_code", "detect_project"]
    read = schemas["read_file"]["parameters"]
    assert read["type"] == "object"
    assert read["required"] == ["path"]
    assert read["additionalProperties"] is False
    assert set(read["properties"]) == {"path", "line_start", "line_end"}
    assert read["properties"]["line_start"]["minimum"] == 1
    assert "description" in read["properties"]["path"]
    openai = registry.openai_tools()
    assert openai[0]["type"] == "function"
    assert openai[0]["function"]["name"] == "read_file"


def test_a_registered_name_is_unique() -> None:
    registry = ToolRegistry([ECHO])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ECHO)
    assert registry.get("echo") is ECHO


def test_bad_arguments_name_the_field(ctx: ToolContext) -> None:
    registry = ToolRegistry([ECHO])
    missing = registry.call("echo", {}, ctx)
    assert not missing.ok
    assert "'text'" in missing.output
    assert "missing" in missing.output
    too_many = registry.call("echo", {"text": "a", "times": 9}, ctx)
    assert not too_many.ok
    assert "'times'" in too_many.output
    assert "less than or equal to 5" in too_many.output
    extra = registry.call("echo", {"text": "a", "colour": "red"}, ctx)
    assert "'colour'" in extra.output
    assert "unknown argument" in extra.output
    not_object = registry.call("echo", ["a"], ctx)
    assert not not_object.ok
    assert "JSON object, not an array" in not_object.output


def test_unknown_tool_lists_the_real_ones(ctx: ToolContext) -> None:
    result = ToolRegistry([ECHO]).call("eco", {"text": "a"}, ctx)
    assert not result.ok
    assert "unknown tool 'eco'" in result.output
    assert "echo" in result.output


def test_an_appliance_error_is_a_failed_call_with_its_message(ctx: ToolContext) -> None:
    result = ToolRegistry([ECHO]).call("echo", {"text": "refuse"}, ctx)
    assert not result.ok
    assert result.output == "'/etc' is an absolute path; give a relative one"


def test_a_bug_in_a_tool_is_logged_and_reported_as_internal(
    ctx: ToolContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = ToolRegistry([ECHO]).call("echo", {"text": "crash"}, ctx)
    assert not result.ok
    assert result.output.startswith("internal error in tool echo")
    assert "boom" not in result.output
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_long_output_is_cut_with_a_note_saying_how_much(ctx: ToolContext) -> None:
    registry = ToolRegistry([ECHO], output_cap=100)
    result = registry.call("echo", {"text": "x" * 30, "times": 5}, ctx)
    assert result.ok
    body, note = result.output.rsplit("\n", 1)
    assert len(body) <= 100
    assert body.endswith("x" * 30)  # cut at a line end
    assert note == "[output cut: showed 92 of 154 characters; ask less]"
    short = registry.call("echo", {"text": "hi"}, ctx)
    assert short.output == "hi"
