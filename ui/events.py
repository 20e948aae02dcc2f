"""How each pipeline event reads as one line of the task's terminal-style log.

:func:`describe` turns ``{seq, kind, payload, ts}`` into a :class:`LogLine`: a short
coloured tag (phase or tool), the text, and an optional detail block (command output,
a tool's result). Kinds this module does not know render generically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: kinds that change the task page's panels (plan, question, diff, tests, review…)
PANEL_KINDS = frozenset(
    {
        "status",
        "plan",
        "waiting",
        "iteration",
        "review_ready",
        "file_modified",
        "published",
        "constraint_added",
        "review_comment",
        "error",
        "resumed",
    }
)


@dataclass(frozen=True)
class LogLine:
    seq: int
    ts: str
    tag: str
    tone: str  # css class suffix: phase, tool, edit, cmd, ok, bad, warn, wait, note, plain
    text: str
    detail: str | None = None


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    to = str(p.get("status", "?"))
    src = p.get("from")
    text = f"{src} → {to}" if src else to
    if p.get("step"):
        text += f" (at {p['step']})"
    tone = {"failed": "bad", "done": "ok", "cancelled": "warn", "rejected": "warn"}.get(to, "phase")
    return "status", tone, text, p.get("message")


def _tool(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    ok = p.get("ok", True)
    return (
        str(p.get("tool", "tool")),
        "tool" if ok else "bad",
        _short(p.get("args", {})) + ("" if ok else "  ✗ failed"),
        p.get("output_snippet") or None,
    )


def _file(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    stat = p.get("diff_stat") or {}
    return (
        "edit",
        "edit",
        f"{p.get('path', '?')}  +{stat.get('added', 0)} \u2212{stat.get('removed', 0)}",
        None,
    )


def _command(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    code = p.get("exit_code")
    tone = "cmd" if code == 0 else "bad"
    return "cmd", tone, f"$ {p.get('command', '')}  → exit {code}", p.get("output_snippet") or None


def _error(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    severity = str(p.get("severity", "error"))
    tail = " (recoverable)" if p.get("recoverable") else ""
    return severity, "bad" if severity == "error" else "warn", f"{p.get('message', '')}{tail}", None


def _plan(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    steps = p.get("steps") or []
    return "plan", "phase", f"{p.get('intent', 'plan')}: {len(steps)} step(s)", None


def _waiting(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    text = p.get("question") or p.get("reason") or "waiting"
    actions = ", ".join(p.get("actions") or [])
    return "wait", "wait", f"{text}" + (f"  [{actions}]" if actions else ""), None


def _iteration(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    tests = p.get("tests") or {}
    failed = int(tests.get("failed", 0) or 0)
    text = f"round {p.get('round', '?')}: {tests.get('passed', 0)} passed, {failed} failed"
    new = tests.get("new_failures") or []
    if new:
        text += f", new failures: {', '.join(map(str, new[:5]))}"
    return "round", "bad" if failed else "ok", text, None


def _review(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    stats = p.get("stats") or []
    findings = p.get("findings") or []
    text = f"{len(stats)} file(s) ready for review"
    if findings:
        text += f", {len(findings)} finding(s)"
    return "review", "ok", text, None


def _published(p: dict[str, Any]) -> tuple[str, str, str, str | None]:
    url = p.get("url")
    return "publish", "ok", f"branch {p.get('branch', '?')}" + (f" → {url}" if url else ""), None


Renderer = Callable[[dict[str, Any]], tuple[str, str, str, str | None]]
_KINDS: dict[str, Renderer] = {
    "status": _status,
    "tool_call": _tool,
    "file_modified": _file,
    "command_executed": _command,
    "error": _error,
    "plan": _plan,
    "waiting": _waiting,
    "iteration": _iteration,
    "review_ready": _review,
    "published": _published,
    "step": lambda p: ("step", "phase", str(p.get("step", "")), None),
    "progress": lambda p: (
        "progress",
        "plain",
        f"{p.get('step') or ''} {round(float(p['progress']) * 100)}%".strip()
        if isinstance(p.get("progress"), int | float)
        else str(p.get("step") or ""),
        None,
    ),
    "agent_thought": lambda p: ("think", "think", str(p.get("text", "")), None),
    "checkpoint_reached": lambda p: ("ckpt", "plain", f"checkpoint at {p.get('node', '?')}", None),
    "constraint_added": lambda p: ("note", "note", f"constraint added: {p.get('text', '')}", None),
    "review_comment": lambda p: (
        "comment",
        "note",
        f"{p.get('by', '?')} on {p.get('path') or 'the change'}"
        + (f":{p['line']}" if p.get("line") else "")
        + f": {p.get('body', '')}",
        None,
    ),
    "resumed": lambda p: ("resume", "phase", f"resumed at {p.get('step', '?')}", None),
    "log": lambda p: ("log", "plain", str(p.get("message", "")), None),
    "output": lambda p: (
        "out",
        "cmd",
        str(p.get("note") or f"{p.get('stream', 'stdout')} output"),
        str(p.get("text") or "") or None,
    ),
}


def describe(event: dict[str, Any]) -> LogLine:
    payload = event.get("payload") or {}
    kind = str(event.get("kind", "?"))
    render = _KINDS.get(kind)
    try:
        tag, tone, text, detail = (
            render(payload) if render else (kind, "plain", _short(payload), None)
        )
    except (TypeError, ValueError, KeyError, AttributeError):
        tag, tone, text, detail = kind, "plain", _short(payload), None
    ts = str(event.get("ts", ""))
    return LogLine(
        seq=int(event.get("seq", 0)),
        ts=ts[11:19] if len(ts) >= 19 else ts,
        tag=tag[:24],
        tone=tone,
        text=text,
        detail=_short(detail, 4000) if detail else None,
    )
