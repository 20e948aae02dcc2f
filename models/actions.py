"""Structured actions: parsing and validating a model's JSON reply, and token estimates."""

from __future__ import annotations

import json
import math
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from models.errors import FormatError

M = TypeVar("M", bound=BaseModel)
#: characters per token of the fallback estimate (conservative: real code averages ~3.5-4)
CHARS_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """Safe (over-)estimate used when the server cannot tokenize: ``ceil(len / 3)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*)\n```\s*$", re.DOTALL)


def parse_action(raw: str, schema_model: type[M]) -> M:
    """Parse and validate a structured reply; :class:`FormatError` says what is wrong."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 200 else text[:200] + "…"
        raise FormatError(
            f"Your reply is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{shown!r}. Reply with exactly one JSON object matching the "
            f"{schema_model.__name__} schema and nothing else.",
            raw=raw,
        ) from exc
    try:
        return schema_model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or '(root)'}': {err['msg']}"
            for err in exc.errors()
        )
        raise FormatError(
            f"Your reply does not match the {schema_model.__name__} schema: {problems}. "
            "Reply again with a corrected JSON object.",
            raw=raw,
        ) from exc


def schema_name(schema_model: type[BaseModel]) -> str:
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", schema_model.__name__)[:64]
    return name or "action"
