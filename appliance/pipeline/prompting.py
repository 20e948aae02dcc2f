"""Prompts are data: Jinja templates in ``appliance/pipeline/prompts``, rendered with
``StrictUndefined`` so a missing variable is an error, never an empty hole in a prompt."""

from __future__ import annotations

import functools
from typing import Any

import jinja2


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("appliance.pipeline", "prompts"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - prompts for a model, not HTML
        keep_trailing_newline=False,
    )


def render(name: str, **values: Any) -> str:
    """The template ``<name>.j2`` filled with ``values``."""
    return _environment().get_template(f"{name}.j2").render(**values).strip()
