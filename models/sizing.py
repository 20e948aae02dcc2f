"""GPU sizing: pick the catalog variant and the vLLM settings a GPU inventory can serve.

Rules (one rule each, tuned only through these stated numbers):

* **Memory budget per GPU** = ``gpu_memory_utilization`` (0.90, vLLM's default) x GPU memory.
  The 10 % outside is headroom for fragmentation and other processes on the GPU (a desktop, a
  second CUDA context).
* **Overhead per GPU** = 2 GiB inside that budget for activations of a prefill batch, CUDA
  graphs and the CUDA context. Fixed, not proportional: activations depend on the batched
  tokens, not on the weights.
* **KV cache demand**: ``sessions`` (default 4) agent sessions at the target context (default
  32,768) need ``context x (sessions + 1) / 2`` tokens: one session at the full context (vLLM
  refuses to start unless one whole ``max_model_len`` sequence fits) and the other ones at half
  of it on average (agent sessions grow from a short prompt). When all sessions peak at once
  vLLM queues or preempts a request; it does not fail. Defaults: 32,768 x 2.5 = 81,920 tokens.
* **KV bytes per token** = 2 (K and V) x layers x KV heads x head dim x dtype bytes (2 for
  bf16; 1 with ``--kv-cache-dtype fp8``, used only with FP8 weights and only when bf16 KV does
  not fit). MLA models: see ``models.catalog``.
* **Tensor parallel** across identical GPUs divides weights and (non-MLA) KV cache by ``tp``;
  the overhead is per GPU. ``tp`` is a power of two <= the GPU count that divides the attention
  and KV heads; the smallest ``tp`` that fits is used.
* **Preference**: the largest model (total parameters) that fits wins, then the highest
  precision bf16 > FP8 > AWQ for it: a bigger model in AWQ beats a smaller one in bf16. A model
  whose native context is below the target is not a candidate.
* **Mixed GPUs**: each set of identical GPUs (same name and memory) is planned on its own, and
  so are all GPUs together taken at the smallest memory among them; the best plan by the
  preference above wins (then fewer GPUs).

With these rules: one H100 80 GB -> Qwen2.5-Coder-32B FP8; 24 GB -> 7B bf16 (14B AWQ's KV for
81,920 tokens does not fit); 48 GB -> 32B AWQ; two 24 GB -> 32B AWQ with tp=2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from models.catalog import PRECISION_ORDER, Variant, variants
from models.errors import GpuInventoryError, NoModelFits

KvCacheDtype = Literal["auto", "fp8"]

MIB = 1 << 20
GIB = 1 << 30

DEFAULT_SESSIONS = 4
DEFAULT_CONTEXT = 32_768
GPU_MEMORY_UTILIZATION = 0.90
OVERHEAD_PER_GPU_BYTES = 2 * GIB
#: below this context a plan is not worth suggesting; the CPU default is.
MIN_USEFUL_CONTEXT = 4_096
#: suggested contexts are rounded down to a multiple of this
CONTEXT_STEP = 1_024


@dataclass(frozen=True)
class Gpu:
    """One GPU of the inventory."""

    name: str
    memory_mib: int

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits``.

    Each non-blank line is ``<name>, <MiB>``. Anything else raises ``GpuInventoryError`` naming
    the line, rather than planning on a partial inventory.
    """
    gpus: list[Gpu] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, sep, memory = line.rpartition(",")
        name, memory = name.strip(), memory.strip()
        if not sep or not name or not memory.isdigit() or int(memory) <= 0:
            raise GpuInventoryError(
                f"nvidia-smi output line {number} is not '<name>, <memory MiB>': {line!r} "
                "(expected --query-gpu=name,memory.total --format=csv,noheader,nounits)"
            )
        gpus.append(Gpu(name=name, memory_mib=int(memory)))
    return gpus


@dataclass(frozen=True)
class Plan:
    """A variant and the vLLM settings that fit it, with the arithmetic behind them."""

    variant: Variant
    max_model_len: int
    tensor_parallel_size: int
    gpu_memory_utilization: float
    kv_cache_dtype: KvCacheDtype
    sessions: int
    gpu_name: str
    gpu_memory_mib: int
    gpu_count: int  # GPUs in the pool planned on (tp of them are used)

    @property
    def kv_dtype_bytes(self) -> int:
        return 1 if self.kv_cache_dtype == "fp8" else 2

    @property
    def kv_tokens(self) -> int:
        return kv_tokens_needed(self.max_model_len, self.sessions)

    @property
    def weight_bytes_per_gpu(self) -> float:
        return self.variant.weight_bytes / self.tensor_parallel_size

    @property
    def kv_bytes_per_token_per_gpu(self) -> float:
        return _kv_bytes_per_token_per_gpu(
            self.variant, self.tensor_parallel_size, self.kv_dtype_bytes
        )

    @property
    def kv_bytes_per_gpu(self) -> float:
        return self.kv_tokens * self.kv_bytes_per_token_per_gpu

    @property
    def budget_bytes_per_gpu(self) -> float:
        return self.gpu_memory_utilization * self.gpu_memory_mib * MIB

    @property
    def total_bytes_per_gpu(self) -> float:
        return self.weight_bytes_per_gpu + self.kv_bytes_per_gpu + OVERHEAD_PER_GPU_BYTES

    def vllm_args(self) -> tuple[str, ...]:
        args = [
            *self.variant.vllm_args(),
            "--max-model-len",
            str(self.max_model_len),
            "--tensor-parallel-size",
            str(self.tensor_parallel_size),
            "--gpu-memory-utilization",
            f"{self.gpu_memory_utilization:.2f}",
        ]
        if self.kv_cache_dtype != "auto":
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        return tuple(args)

    def explain(self) -> str:
        """The arithmetic of the plan, one fact a line."""
        m = self.variant.model
        tp = self.tensor_parallel_size
        kv_dtype = "fp8" if self.kv_cache_dtype == "fp8" else "bf16"
        if m.attention == "mla":
            per_token = (
                f"{m.layers} layers x {m.head_dim} latent x {self.kv_dtype_bytes} bytes "
                "(MLA, not split by TP)"
            )
        else:
            per_token = (
                f"2 x {m.layers} layers x {m.kv_heads} KV heads x {m.head_dim} head dim"
                f" x {self.kv_dtype_bytes} bytes / tp {tp}"
            )
        return "\n".join(
            [
                f"GPUs: {tp} of {self.gpu_count} x {self.gpu_name} "
                f"({_gib(self.gpu_memory_mib * MIB)} GiB each), tensor_parallel_size={tp}",
                f"Model: {m.name} {self.variant.precision} ({self.variant.repo_id})",
                f"Weights: {_gib(self.variant.weight_bytes)} GiB, "
                f"{_gib(self.weight_bytes_per_gpu)} GiB per GPU",
                f"KV cache ({kv_dtype}): {self.kv_bytes_per_token_per_gpu / 1024:.1f} KiB "
                f"per token per GPU = {per_token}",
                f"KV tokens: {self.sessions} sessions at {self.max_model_len:,} context -> "
                f"{self.kv_tokens:,} tokens (one full, the rest at half) = "
                f"{_gib(self.kv_bytes_per_gpu)} GiB per GPU",
                f"Overhead: {_gib(OVERHEAD_PER_GPU_BYTES)} GiB per GPU "
                "(activations, CUDA graphs, CUDA context)",
                f"Total: {_gib(self.total_bytes_per_gpu)} GiB per GPU of "
                f"{_gib(self.budget_bytes_per_gpu)} GiB available "
                f"({self.gpu_memory_utilization:.2f} x {_gib(self.gpu_memory_mib * MIB)} GiB)",
            ]
        )


def kv_tokens_needed(context: int, sessions: int) -> int:
    """One session at the full context, the other ``sessions - 1`` at half of it."""
    return math.ceil(context * (sessions + 1) / 2)


def plan(
    gpus: Sequence[Gpu],
    *,
    context: int = DEFAULT_CONTEXT,
    sessions: int = DEFAULT_SESSIONS,
    candidates: Iterable[Variant] | None = None,
) -> Plan:
    """The best plan for ``gpus`` (see the module docstring), or ``NoModelFits``."""
    if context <= 0 or sessions <= 0:
        raise ValueError("context and sessions must be positive")
    ranked = _ranked(variants() if candidates is None else candidates)
    if not ranked:
        raise ValueError("no candidate variants")
    if not gpus:
        raise NoModelFits("No GPU found: use the CPU default (llama.cpp).")
    best: tuple[tuple[int, int], Plan] | None = None
    for name, memory_mib, count in _pools(gpus):
        for index, v in enumerate(ranked):
            found = _fit(v, name, memory_mib, count, context, sessions)
            if found is not None:
                key = (index, found.tensor_parallel_size)
                if best is None or key < best[0]:
                    best = (key, found)
                break
    if best is not None:
        return best[1]
    raise _nothing_fits(gpus, ranked, context, sessions)


def _ranked(candidates: Iterable[Variant]) -> list[Variant]:
    """Largest model first, then bf16 > FP8 > AWQ."""
    return sorted(candidates, key=lambda v: (-v.model.params, PRECISION_ORDER.index(v.precision)))


def _pools(gpus: Sequence[Gpu]) -> list[tuple[str, int, int]]:
    """(name, memory MiB, count): every identical set, plus all GPUs at the smallest memory."""
    groups: dict[tuple[str, int], int] = {}
    for g in gpus:
        groups[(g.name, g.memory_mib)] = groups.get((g.name, g.memory_mib), 0) + 1
    pools = [(name, mem, count) for (name, mem), count in groups.items()]
    if len(groups) > 1:
        smallest = min(g.memory_mib for g in gpus)
        pools.append((f"mixed GPUs at the smallest {smallest} MiB", smallest, len(gpus)))
    return pools


def _tps(count: int) -> list[int]:
    return [1 << i for i in range(count.bit_length()) if 1 << i <= count]


def _kv_bytes_per_token_per_gpu(v: Variant, tp: int, dtype_bytes: int) -> float:
    per_token = v.model.kv_bytes_per_token(dtype_bytes)
    return per_token / tp if v.model.kv_split_by_tp else float(per_token)


def _kv_room_bytes(v: Variant, memory_mib: int, tp: int) -> float:
    budget = GPU_MEMORY_UTILIZATION * memory_mib * MIB
    return budget - OVERHEAD_PER_GPU_BYTES - v.weight_bytes / tp


def _fit(
    v: Variant, name: str, memory_mib: int, count: int, context: int, sessions: int
) -> Plan | None:
    if context > v.model.native_context:
        return None
    dtypes: list[KvCacheDtype] = ["auto", "fp8"] if v.precision == "fp8" else ["auto"]
    tokens = kv_tokens_needed(context, sessions)
    for tp in _tps(count):
        if not v.model.tp_allowed(tp):
            continue
        for dtype in dtypes:
            kv = tokens * _kv_bytes_per_token_per_gpu(v, tp, 1 if dtype == "fp8" else 2)
            if kv <= _kv_room_bytes(v, memory_mib, tp):
                return Plan(
                    variant=v,
                    max_model_len=context,
                    tensor_parallel_size=tp,
                    gpu_memory_utilization=GPU_MEMORY_UTILIZATION,
                    kv_cache_dtype=dtype,
                    sessions=sessions,
                    gpu_name=name,
                    gpu_memory_mib=memory_mib,
                    gpu_count=count,
                )
    return None


def _nothing_fits(
    gpus: Sequence[Gpu], ranked: Sequence[Variant], context: int, sessions: int
) -> NoModelFits:
    smallest = min(ranked, key=lambda v: v.weight_bytes)
    best_tokens = 0.0
    for _name, memory_mib, count in _pools(gpus):
        for tp in _tps(count):
            if not smallest.model.tp_allowed(tp):
                continue
            dtype_bytes = 1 if smallest.precision == "fp8" else 2
            room = _kv_room_bytes(smallest, memory_mib, tp)
            per_token = _kv_bytes_per_token_per_gpu(smallest, tp, dtype_bytes)
            best_tokens = max(best_tokens, room / per_token)
    # invert kv_tokens_needed, cap at the model's context, round down to CONTEXT_STEP
    largest = min(int(2 * best_tokens / (sessions + 1)), smallest.model.native_context)
    largest -= largest % CONTEXT_STEP
    inventory = ", ".join(f"{g.name} ({g.memory_mib} MiB)" for g in gpus)
    head = f"No model fits {inventory} at {context:,} tokens of context for {sessions} sessions."
    if largest >= MIN_USEFUL_CONTEXT:
        return NoModelFits(
            f"{head} The smallest model, {smallest.model.name} {smallest.precision}, would fit "
            f"at most {largest:,} tokens of context; lower the context to that, or use the CPU "
            "default (llama.cpp).",
            largest_context=largest,
        )
    return NoModelFits(
        f"{head} Even the smallest model, {smallest.model.name} {smallest.precision}, does not "
        f"fit a useful context ({MIN_USEFUL_CONTEXT:,} tokens): use the CPU default (llama.cpp)."
    )


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"
