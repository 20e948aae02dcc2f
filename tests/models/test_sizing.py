"""Sizing picks the documented model for the issue's known GPU inventories."""

from __future__ import annotations

import pytest

from models.catalog import variants
from models.errors import GpuInventoryError, ModelsError, NoModelFits
from models.sizing import Gpu, kv_tokens_needed, parse_nvidia_smi, plan

H100 = Gpu("NVIDIA H100 80GB HBM3", 81_559)
RTX4090 = Gpu("NVIDIA GeForce RTX 4090", 24_564)
A6000 = Gpu("NVIDIA RTX A6000", 49_140)
L40S = Gpu("NVIDIA L40S", 46_068)


def test_one_h100_serves_32b_fp8_at_32k() -> None:
    p = plan([H100])
    assert p.variant.key == "qwen2.5-coder-32b:fp8"
    assert (p.max_model_len, p.tensor_parallel_size) == (32_768, 1)
    assert p.kv_cache_dtype == "auto"  # bf16 KV fits, so no fp8 KV
    assert p.total_bytes_per_gpu <= p.budget_bytes_per_gpu


def test_24gb_serves_7b_bf16_at_32k() -> None:
    p = plan([RTX4090])
    assert p.variant.key == "qwen2.5-coder-7b:bf16"
    assert (p.max_model_len, p.tensor_parallel_size) == (32_768, 1)


@pytest.mark.parametrize("gpu", [A6000, L40S], ids=lambda g: g.name)
def test_48gb_serves_32b_awq_at_32k(gpu: Gpu) -> None:
    p = plan([gpu])
    assert p.variant.key == "qwen2.5-coder-32b:awq"
    assert p.max_model_len == 32_768


def test_two_24gb_gpus_use_tensor_parallel() -> None:
    p = plan([RTX4090, RTX4090])
    assert p.tensor_parallel_size == 2
    assert p.variant.key == "qwen2.5-coder-32b:awq"
    assert "--tensor-parallel-size" in p.vllm_args()
    i = p.vllm_args().index("--tensor-parallel-size")
    assert p.vllm_args()[i + 1] == "2"


def test_fp8_kv_cache_only_when_needed_and_only_with_fp8_weights() -> None:
    for g in (H100, RTX4090, A6000, L40S):
        p = plan([g], sessions=8)
        assert p.kv_cache_dtype == "auto" or p.variant.precision == "fp8"
    # three GPUs: tp is a power of two, so two of them
    assert plan([RTX4090] * 3).tensor_parallel_size == 2


def test_kv_demand_is_one_full_session_plus_the_rest_at_half() -> None:
    assert kv_tokens_needed(32_768, 4) == 81_920
    assert kv_tokens_needed(32_768, 1) == 32_768


def test_mixed_gpus_plan_each_identical_set_and_all_at_the_smallest() -> None:
    # the H100 alone beats both GPUs at 24 GB each
    p = plan([RTX4090, H100])
    assert p.variant.key == "qwen2.5-coder-32b:fp8"
    assert p.tensor_parallel_size == 1
    assert p.gpu_name == H100.name
    # two different 24 GB cards together, at the smaller memory, give tp=2
    p = plan([RTX4090, Gpu("NVIDIA GeForce RTX 3090", 24_576)])
    assert p.tensor_parallel_size == 2
    assert p.gpu_memory_mib == 24_564
    assert p.gpu_name.startswith("mixed")


def test_nothing_fits_4gb_says_the_largest_context_of_the_smallest_model() -> None:
    with pytest.raises(NoModelFits) as info:
        plan([Gpu("NVIDIA T400 4GB", 4_096)])
    assert info.value.largest_context == 7_168
    assert "Qwen2.5-Coder-1.5B-Instruct awq" in info.value.message
    assert "7,168" in info.value.message
    assert "CPU default" in info.value.message
    # and that context does fit
    assert plan([Gpu("NVIDIA T400 4GB", 4_096)], context=7_168).max_model_len == 7_168


def test_nothing_fits_tiny_gpu_or_none_suggests_cpu() -> None:
    with pytest.raises(NoModelFits) as info:
        plan([Gpu("tiny", 2_048)])
    assert info.value.largest_context is None
    assert "CPU default" in info.value.message
    with pytest.raises(ModelsError, match="CPU default"):
        plan([])


def test_context_above_every_model_is_refused() -> None:
    with pytest.raises(NoModelFits, match="at most 32,768"):
        plan([H100, H100], context=65_536)


def test_candidates_can_include_other_families() -> None:
    # DeepSeek-Coder-33B has 16k context: it is a candidate only at 16k, where its AWQ
    # (33.3B > 32.5B) wins on one 48 GB GPU
    p = plan([A6000], context=16_384, candidates=variants(None))
    assert p.variant.key == "deepseek-coder-33b:awq"


def test_explanation_contains_the_key_numbers() -> None:
    text = plan([H100]).explain()
    for number in ("31.72 GiB", "256.0 KiB", "81,920 tokens", "20.00 GiB", "2.00 GiB"):
        assert number in text
    assert "53.72 GiB per GPU of 71.68 GiB available" in text
    assert "0.90 x 79.65 GiB" in text


def test_parse_nvidia_smi() -> None:
    text = "NVIDIA H100 80GB HBM3, 81559\n\nNVIDIA GeForce RTX 4090, 24564\n"
    assert parse_nvidia_smi(text) == [H100, RTX4090]
    assert parse_nvidia_smi("") == []


@pytest.mark.parametrize(
    "line",
    [
        "No devices were found",
        "NVIDIA H100, [N/A]",
        ", 81559",
        "NVIDIA H100, 0",
        "NVIDIA H100, 80 GB",
    ],
)
def test_parse_nvidia_smi_refuses_garbage(line: str) -> None:
    with pytest.raises(GpuInventoryError, match="line 2") as info:
        parse_nvidia_smi(f"NVIDIA H100 80GB HBM3, 81559\n{line}\n")
    assert repr(line) in info.value.message
