"""The conversation the implementing loop sends the model, kept inside a token budget.

Each step adds the model's action and the tool's observation. Observations are cut to
``max_observation_chars`` with a note saying so; :func:`observation_chars` derives that cap
from the token budget (the model's context minus room for its reply), so that the last
``keep_last`` observations together take at most about half of it. Before each call the
history is fitted to the budget: the system prompt, the task (request + plan + latest
feedback) and the last ``keep_last`` steps always stay; older steps are condensed into one
line each ("step 3: read_file shop/orders.py → ok, 120 lines"), oldest first, and when even
that does not fit the oldest condensed lines go. When the fixed part alone is over the
budget (a small model, long observations), the recent observations are cut further, and as
a last resort the longest message; the messages sent never exceed the budget.
The history is plain JSON, saved in the task's checkpoint, so a resumed task continues
the same conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.actions import CHARS_PER_TOKEN, estimate_tokens

Message = dict[str, str]
#: tokens a chat message costs beyond its text (role, separators)
MESSAGE_OVERHEAD = 4
#: the shortest a recent observation is cut to before anything else is cut
MIN_OBSERVATION_CHARS = 200


def observation_chars(budget_tokens: int, keep_last: int = 4) -> int:
    """The cap on one observation, in characters, for a call budget in tokens: the last
    ``keep_last`` observations fit in half the budget (at ``CHARS_PER_TOKEN``, the client's
    conservative estimate), between 400 and 12,000 characters."""
    share = budget_tokens * CHARS_PER_TOKEN // (2 * max(1, keep_last))
    return max(400, min(12_000, share))


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

    def messages(self, limit: int | None = None) -> list[Message]:
        label = "Result" if self.ok else "Error"
        observation = self.observation if limit is None else cut(self.observation, limit)
        return [
            {"role": "assistant", "content": json.dumps(self.action)},
            {"role": "user", "content": f"{label} of {self.action.get('tool')}:\n{observation}"},
        ]


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

        def size(messages: list[Message]) -> int:
            return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages)

        recent = self.turns[-self.keep_last :] if self.keep_last else []
        older = self.turns[: len(self.turns) - len(recent)]
        head: list[Message] = [{"role": "system", "content": system}]
        tail = [m for t in recent for m in t.messages()]
        task_cost = count(task) + MESSAGE_OVERHEAD
        # The recent observations are cut harder, oldest first, until the fixed part fits.
        limit = max((len(t.observation) for t in recent), default=0)
        while recent and size(head) + task_cost + size(tail) > budget_tokens:
            if limit <= MIN_OBSERVATION_CHARS:
                break
            limit = max(MIN_OBSERVATION_CHARS, limit // 2)
            tail = [m for t in recent for m in t.messages(limit)]
        fixed = size(head) + task_cost + size(tail)
        lines = [t.condensed() for t in older]
        while lines and fixed + count("\n".join(lines)) + 8 > budget_tokens:
            lines.pop(0)  # the oldest condensed steps go first
        summary = ""
        if lines:
            dropped = len(older) - len(lines)
            summary = "\n\nEarlier steps" + (f" ({dropped} oldest omitted)" if dropped else "")
            summary += ":\n" + "\n".join(lines)
        user: Message = {"role": "user", "content": task + summary}
        return _fit([*head, user, *tail], budget_tokens, count)


def _fit(messages: list[Message], budget: int, count: Callable[[str], int]) -> list[Message]:
    """Last resort: cut the longest message until the whole fits ``budget``."""
    messages = [dict(m) for m in messages]
    for _ in range(20):
        total = sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages)
        if total <= budget:
            break
        longest = max(messages, key=lambda m: len(m["content"]))
        text = longest["content"]
        over_chars = (total - budget) * CHARS_PER_TOKEN + 200  # room for the note
        keep = max(0, len(text) - over_chars)
        note = f"\n[... {len(text) - keep:,} characters cut to fit the model's context]"
        if keep == 0 and len(text) <= len(note):
            break  # nothing left to cut: the budget is smaller than the messages' frame
        longest["content"] = text[:keep] + note
    return messages
