"""An OpenAI-compatible model server the client talks to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["vllm", "llamacpp", "openai"]
ActionMode = Literal["json_schema", "tools"]


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible server. ``base_url`` ends in ``/v1``."""

    base_url: str
    model: str
    kind: Kind = "openai"
    api_key: str | None = field(default=None, repr=False, compare=False)
    context_length: int = 8192
    action_mode: ActionMode = "json_schema"

    def __post_init__(self) -> None:
        url = self.base_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint base_url must be http(s)://…, got {url!r}")
        if self.context_length <= 0:
            raise ValueError("context_length must be positive")
        object.__setattr__(self, "base_url", url)

    @property
    def root(self) -> str:
        """The server root (``base_url`` without ``/v1``), where ``/tokenize`` lives."""
        return self.base_url.removesuffix("/v1")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.base_url}"
