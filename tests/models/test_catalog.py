"""The catalog is consistent with itself and with its stated weight-bytes rules."""

from __future__ import annotations

import pytest

from models.catalog import (
    BYTES_PER_PARAM,
    DEFAULT_FAMILY,
    MODELS,
    VARIANTS,
    Variant,
    expected_weight_bytes,
    variant,
    variants,
)


@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.key)
def test_weight_bytes_follow_the_stated_rule(v: Variant) -> None:
    assert v.weight_bytes == pytest.approx(expected_weight_bytes(v.model, v.precision), rel=0.01)


@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.key)
def test_weight_bytes_are_params_times_bytes_plus_bounded_overhead(v: Variant) -> None:
    plain = v.model.params * BYTES_PER_PARAM[v.precision]
    assert v.weight_bytes >= plain * 0.99
    # 16-bit embeddings plus 3.9 % AWQ scales: bounded by the embedding share of the model
    share = v.model.embedding_params / v.model.params
    limit = {"bf16": 0.01, "fp8": share + 0.01, "awq": 3 * share + 0.05}[v.precision]
    assert v.weight_bytes <= plain * (1 + limit)


@pytest.mark.parametrize("m", MODELS, ids=lambda m: m.key)
def test_architecture_numbers_are_plausible(m: object) -> None:
    from models.catalog import ModelSpec

    assert isinstance(m, ModelSpec)
    assert 0 < m.active_params <= m.params
    assert 0 < m.embedding_params < m.params / 2
    assert m.native_context <= m.extended_context
    if m.attention == "mla":
        assert m.kv_heads == 1
        assert m.head_dim == 512 + 64
        assert m.kv_elements_per_token() == m.layers * 576
    else:
        assert m.head_dim == 128
        assert m.attention_heads % m.kv_heads == 0
        assert (m.kv_heads == m.attention_heads) == (m.attention == "mha")
        # hidden size = heads x head dim is a round multiple of 512 for all of these models
        assert (m.attention_heads * m.head_dim) % 512 == 0
    assert m.action_mode == "json_schema"
    assert not m.native_tools


def test_variant_keys_and_repo_ids_are_unique() -> None:
    keys = [v.key for v in VARIANTS]
    assert len(keys) == len(set(keys))
    # a repo id is shared only by a bf16 checkpoint and its on-the-fly FP8 serving
    checkpoints = [(v.repo_id, bool(v.precision_args)) for v in VARIANTS]
    assert len(checkpoints) == len(set(checkpoints))
    for v in VARIANTS:
        if v.precision_args:
            assert variant(f"{v.model.key}:bf16").repo_id == v.repo_id


def test_known_numbers() -> None:
    q32 = variant("qwen2.5-coder-32b:awq")
    assert q32.repo_id == "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
    assert (q32.model.layers, q32.model.kv_heads, q32.model.head_dim) == (64, 8, 128)
    assert q32.model.native_context == 32_768
    assert q32.model.extended_context == 131_072
    assert q32.model.kv_bytes_per_token(2) == 256 * 1024
    ds = variant("deepseek-coder-6.7b:bf16").model
    assert (ds.layers, ds.kv_heads, ds.native_context) == (32, 32, 16_384)
    lite = variant("deepseek-coder-v2-lite:bf16").model
    assert lite.kv_bytes_per_token(2) == 27 * 576 * 2
    assert not lite.kv_split_by_tp


def test_default_family_and_vllm_args() -> None:
    assert {v.model.family for v in variants()} == {DEFAULT_FAMILY}
    assert len(variants(None)) == len(VARIANTS)
    fp8 = variant("qwen2.5-coder-7b:fp8")
    assert fp8.vllm_args()[:4] == (
        "--model",
        "Qwen/Qwen2.5-Coder-7B-Instruct",
        "--quantization",
        "fp8",
    )
    assert "--enable-auto-tool-choice" not in fp8.vllm_args()
    with pytest.raises(KeyError):
        variant("nope:bf16")
