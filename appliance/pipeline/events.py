"""The shapes of the pipeline's events (the UI and API render them by ``kind``)."""

from __future__ import annotations

from typing import Any


def command_event(command: str, exit_code: int, details: dict[str, Any] | str) -> dict[str, Any]:
    snippet = details if isinstance(details, str) else ""
    payload: dict[str, Any] = {"command": command, "exit_code": exit_code}
    if isinstance(details, dict):
        payload["tests"] = details
        snippet = details.get("note") or ""
    payload["output_snippet"] = snippet[:500]
    return payload


async def report_usage(ctx: Any, client: Any, state: dict[str, Any], key: str) -> None:
    """A ``usage`` event with the tokens spent since the last report (the analytics page sums
    them per task). Counting lives in the client's memory: after a restart it starts again,
    and nothing is reported until the new count passes the last one."""
    used = client.usage_for(ctx.task.id)
    reported = int(state.get("tokens_reported", 0))
    if used.total_tokens <= reported:
        return
    await ctx.emit(
        "usage",
        {
            "prompt_tokens": used.prompt_tokens,
            "completion_tokens": used.completion_tokens,
            "total_tokens": used.total_tokens - reported,
        },
        key=key,
    )
    state["tokens_reported"] = used.total_tokens
