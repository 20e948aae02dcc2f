"""The conversation the implementing loop sends the model, kept inside a token budget.

Each step adds the model's action and the tool's observation. Observations are cut to
``max_observation_chars`` with a note saying so. Before each call the history is fitted to
the budget (the model's context minus room for its reply): the system prompt, the task
(request + plan + latest feedback) and the last ``keep_last`` steps always stay; older
steps are condensed into one line each ("step 3: read_file shop/orders.py → ok, 120
lines"), oldest first, and when even that does not fit the oldest condensed lines go.
The history is plain JSON, saved in the task's checkpoint, so a resumed task continues
the same conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.actions import estimate_tokens

Message = dict[str, str]


@dataclass
class Turn:
    step: int
    action: dict[str, Any]  # {"thought", "tool", "args"}
    ok: bool
    observation: str

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "action": self.action, "ok": self.ok, "obs": self.observation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(data["step"], data["action"], data["ok"], data["obs"])

    def condensed(self) -> str:
        args = self.action.get("args") or {}
        target = args.get("path") or args.get("pattern") or args.get("query") or ""
        first = self.observation.strip().splitlines()[0][:100] if self.observation.strip() else ""
        mark = "ok" if self.ok else "error"
        return f"step {self.step}: {self.action.get('tool')} {target} -> {mark}: {first}".strip()


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit:,} more characters cut; narrow the request]"


@dataclass
class History:
    turns: list[Turn] = field(default_factory=list)
    max_observation_chars: int = 6000
    keep_last: int = 4

    def add(self, step: int, action: dict[str, Any], ok: bool, observation: str) -> None:
        self.turns.append(Turn(step, action, ok, cut(observation, self.max_observation_chars)))

    def to_state(self) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.turns]

    @classmethod
    def from_state(cls, data: list[dict[str, Any]] | None) -> History:
        return cls([Turn.from_dict(d) for d in data or []])

    def messages(
        self,
        system: str,
        task: str,
        *,
        budget_tokens: int,
        count: Callable[[str], int] = estimate_tokens,
    ) -> list[Message]:
        """The messages for the next call, fitted to ``budget_tokens``."""
        head: list[Message] = [{"role": "system", "content": system}]
        recent = self.turns[-self.keep_last :] if self.keep_last else []
        older = self.turns[: len(self.turns) - len(recent)]
        tail: list[Message] = []
        for turn in recent:
            tail.append({"role": "assistant", "content": json.dumps(turn.action)})
            label = "Result" if turn.ok else "Error"
            tail.append({"role": "user", "content": f"{label} of {turn.action.get('tool')}:\n"
                         f"{turn.observation}"})  # fmt: skip
        fixed = sum(count(m["content"]) + 4 for m in (*head, *tail)) + count(task) + 8
        lines = [t.condensed() for t in older]
        while lines and fixed + count("\n".join(lines)) > budget_tokens:
            lines.pop(0)  # the oldest condensed steps go first
        summary = ""
        if lines:
            dropped = len(older) - len(lines)
            summary = "\n\nEarlier steps" + (f" ({dropped} oldest omitted)" if dropped else "")
            summary += ":\n" + "\n".join(lines)
        user: Message = {"role": "user", "content": task + summary}
        return [*head, user, *tail]
