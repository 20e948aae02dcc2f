"""Fixtures the pipeline tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.scripted_server import ScriptedServer


@pytest.fixture
def model() -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible model server serving ``coder``; tests queue its replies."""
    with ScriptedServer(models=["coder"]) as server:
        yield server
