"""bench/models.py's memory-bandwidth limit: weight bytes per token from the catalog (active
parameters for MoE), bandwidth scaled by tensor parallelism, and the figures built from them."""

from __future__ import annotations

from typing import Any

import pytest

from bench.models import bandwidth_limit_tps, bytes_per_token, figures, parse_args, render
from models.catalog import variant

BASE = ["--base-url", "http://127.0.0.1:8000/v1", "--model", "coder"]


def measured(decode_tps: float) -> dict[str, Any]:
    """What measure() returns, for a run that decoded at ``decode_tps``."""
    return {
        "overhead": {
            "overhead_ms": 1.2,
            **{
                key: {"count": 1, "p50_ms": 1.0, "p90_ms": 1.0, "min_ms": 1.0, "max_ms": 1.0}
                for key in ("client", "raw")
            },
        },
        "decode": {
            "reps": 1,
            "max_tokens": 128,
            "ignore_eos": True,
            "tokens": [128],
            "content_chunks": [128],
            "ttft_ms": 40.0,
            "measured_tps": decode_tps,
            "server_tps": None,
            "each_measured_tps": [decode_tps],
        },
        "prefill": {
            "reps": 1,
            "prompt_tokens": [1000],
            "ttft_ms": 90.0,
            "measured_tps": 11000.0,
            "server_tps": None,
            "server_prompt_n": [None],
        },
    }


SERVER = {"kind": "vllm", "model": "coder", "base_url": "http://127.0.0.1:8000/v1"}


def test_a_dense_model_reads_all_its_weights_per_token() -> None:
    fp8_32b = variant("qwen2.5-coder-32b:fp8")
    assert bytes_per_token(fp8_32b) == fp8_32b.weight_bytes == 34_060_000_000


def test_a_mixture_of_experts_reads_only_its_active_parameters() -> None:
    lite = variant("deepseek-coder-v2-lite:bf16")
    # 31.4 GB of weights, 2.4B of 15.7B parameters active per token
    assert bytes_per_token(lite) == pytest.approx(31.4e9 * 2.4 / 15.7)
    assert bytes_per_token(lite) == pytest.approx(4.8e9, rel=1e-3)


def test_bandwidth_limit_scales_with_tensor_parallelism() -> None:
    # one H100 SXM (3,350 GB/s) over 34.06 GB per token: 98.4 tokens/s
    assert bandwidth_limit_tps(34.06e9, 3350) == pytest.approx(98.356, abs=1e-3)
    assert bandwidth_limit_tps(34.06e9, 3350, tp=2) == pytest.approx(196.711, abs=1e-3)
    with pytest.raises(ValueError, match="positive"):
        bandwidth_limit_tps(34.06e9, 3350, tp=0)


def test_figures_from_a_catalog_variant_on_two_gpus() -> None:
    args = parse_args(
        [*BASE, "--variant", "qwen2.5-coder-32b:awq", "--tp", "2", "--hbm-gbps", "1008"]
    )
    limit = 2 * 1008e9 / 19_190_000_000  # 105.1 tokens/s
    fig = figures(measured(decode_tps=80.0), SERVER, args)
    bw = fig["bandwidth"]
    assert bw["limit_tps"] == pytest.approx(limit, abs=0.05)
    assert bw["fraction"] == pytest.approx(80.0 / limit, abs=5e-4)
    assert bw["tp"] == 2
    assert bw["weights_from"] == "catalog qwen2.5-coder-32b:awq"
    target = fig["targets"]["decode >= 70% of bandwidth limit"]
    assert target["met"] is True  # 76 %
    text = render(fig)
    assert "2 x 1008 GB/s / 19.19 GB per token (catalog qwen2.5-coder-32b:awq)" in text
    assert "= 105.1 tok/s" in text


def test_figures_for_the_moe_variant_say_active_parameters() -> None:
    args = parse_args([*BASE, "--variant", "deepseek-coder-v2-lite:bf16", "--hbm-gbps", "3350"])
    fig = figures(measured(decode_tps=300.0), SERVER, args)
    bw = fig["bandwidth"]
    assert bw["weights_from"].endswith("(active parameters, MoE)")
    assert bw["limit_tps"] == pytest.approx(3350e9 / (31.4e9 * 2.4 / 15.7), abs=0.05)
    assert fig["targets"]["decode >= 70% of bandwidth limit"]["met"] is False  # 43 %


def test_weights_by_hand_still_work_and_conflicting_options_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse_args([*BASE, "--weights-gib", "16", "--hbm-gbps", "1000"])
    fig = figures(measured(decode_tps=50.0), SERVER, args)
    assert fig["bandwidth"]["limit_tps"] == pytest.approx(1000e9 / (16 * 2**30), abs=0.05)
    for bad, says in (
        (
            ["--variant", "qwen2.5-coder-7b:bf16", "--weights-gib", "14", "--hbm-gbps", "1"],
            "not both",
        ),
        (["--variant", "qwen2.5-coder-7b:bf16"], "--hbm-gbps"),
        (["--variant", "no-such-model:bf16", "--hbm-gbps", "1"], "invalid choice"),
        (["--variant", "qwen2.5-coder-7b:bf16", "--hbm-gbps", "1", "--tp", "0"], "--tp"),
    ):
        with pytest.raises(SystemExit):
            parse_args([*BASE, *bad])
        assert says in capsys.readouterr().err
