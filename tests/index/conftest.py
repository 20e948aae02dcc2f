"""Fixtures of the embedding tests: one ONNX export and one torch model per test session.

The export takes several seconds, so it is done once into a session-scoped folder; tests
that need a fresh cache make their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.index.embed import OnnxMiniLm, TorchMiniLm


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def onnx_minilm(model_cache: Path) -> OnnxMiniLm:
    return OnnxMiniLm(model_cache)


@pytest.fixture(scope="session")
def torch_minilm() -> TorchMiniLm:
    return TorchMiniLm()
