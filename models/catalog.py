"""The coder-model catalog: architecture numbers, checkpoints and vLLM arguments. Data, not code.

Every number below is copied from the model's ``config.json`` / model card as published on the
Hugging Face hub (Qwen2.5-Coder, DeepSeek-Coder, DeepSeek-Coder-V2-Lite); numbers marked
``# unsure`` are recalled, not checked against the hub, and should be verified before relying on
them.

Weight bytes (what the checkpoint occupies in GPU memory, decimal bytes):

* ``bf16``: 2 bytes per parameter.
* ``fp8``: 1 byte per parameter for the linear layers; the input embedding and the LM head stay
  16-bit (vLLM does not quantize them), so ``embedding_params`` cost 2 bytes. Per-tensor scales
  are negligible (< 0.1 %).
* ``awq``: 4-bit weights (0.5 byte per parameter) plus, per group of 128 weights, a 16-bit scale
  and a 4-bit zero point: +2.5 bytes per 64 bytes = +3.9 %. Embeddings and LM head stay 16-bit.
  That is why small models carry a large "overhead" over ``params x 0.5`` (+50 % for the 1.5B,
  whose vocabulary is a sixth of its parameters) and large ones a small one (+18 % for the 32B).

``weight_bytes`` are literals computed with exactly these rules (see ``expected_weight_bytes``;
the catalog tests check them). They agree with the published checkpoint sizes to a few percent
as far as I remember those sizes (e.g. Qwen2.5-Coder-32B-Instruct-AWQ ~19.3 GB).

KV cache model:

* ``gqa`` / ``mha`` attention caches K and V for every layer and KV head:
  ``2 x layers x kv_heads x head_dim`` elements per token, split across tensor-parallel ranks.
* ``mla`` (DeepSeek-V2 multi-head latent attention) caches one compressed latent per layer:
  ``kv_lora_rank + qk_rope_head_dim`` elements (512 + 64 = 576) per layer per token, with no
  separate K and V and no per-head copies. vLLM keeps this latent whole on every
  tensor-parallel rank (it is not split by heads), so TP does not shrink it.

Action mode: Qwen2.5-Coder and DeepSeek-Coder drive the agent through schema-constrained JSON
(``json_schema``) with native tool calling off: vLLM's ``hermes`` tool parser does not parse the
tool-call format Qwen2.5-Coder actually emits, and no vLLM tool parser is documented for
DeepSeek-Coder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Precision = Literal["bf16", "fp8", "awq"]
ActionMode = Literal["json_schema", "native_tools"]
Attention = Literal["mha", "gqa", "mla"]

#: Preference order when the same model fits in several precisions: first is best.
PRECISION_ORDER: tuple[Precision, ...] = ("bf16", "fp8", "awq")

#: Bytes per quantized (linear-layer) parameter, before scale overhead.
BYTES_PER_PARAM: dict[Precision, float] = {"bf16": 2.0, "fp8": 1.0, "awq": 0.5}

#: Extra fraction on the quantized linear weights for scales/zero points (see module docstring).
SCALE_OVERHEAD: dict[Precision, float] = {"bf16": 0.0, "fp8": 0.0, "awq": 2.5 / 64}

#: Bytes of the parameters that stay 16-bit in every precision (embeddings, LM head).
EMBEDDING_BYTES_PER_PARAM = 2.0


@dataclass(frozen=True)
class ModelSpec:
    """One model's architecture, as far as serving and sizing need it."""

    key: str
    name: str
    family: str
    params: int  # total parameters
    active_params: int  # parameters used per token (differs from params for MoE)
    embedding_params: int  # input embedding + untied LM head, kept 16-bit when quantized
    layers: int
    attention_heads: int
    kv_heads: int  # for MLA: 1 (one shared latent)
    head_dim: int  # for MLA: the latent width kv_lora_rank + rope dim
    attention: Attention
    native_context: int  # max_model_len without rope scaling
    extended_context: int  # with the card's rope scaling (YaRN); not used by sizing yet
    action_mode: ActionMode
    native_tools: bool
    vllm_args: tuple[str, ...]

    def kv_elements_per_token(self) -> int:
        """Cache elements one token occupies across all layers (all TP ranks together)."""
        if self.attention == "mla":
            return self.layers * self.head_dim  # one latent, no separate K and V
        return 2 * self.layers * self.kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_dtype_bytes: int) -> int:
        return self.kv_elements_per_token() * kv_dtype_bytes

    @property
    def kv_split_by_tp(self) -> bool:
        """Whether tensor parallelism divides the KV cache between ranks (not for MLA)."""
        return self.attention != "mla"

    def tp_allowed(self, tp: int) -> bool:
        """TP must divide the attention heads, and the KV heads where the cache is split."""
        if self.attention_heads % tp:
            return False
        return not (self.kv_split_by_tp and self.kv_heads % tp)


@dataclass(frozen=True)
class Variant:
    """One servable checkpoint of a model in one precision."""

    model: ModelSpec
    precision: Precision
    repo_id: str
    weight_bytes: int
    #: extra vLLM arguments this precision needs (e.g. on-the-fly FP8 of a bf16 checkpoint)
    precision_args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.model.key}:{self.precision}"

    def vllm_args(self) -> tuple[str, ...]:
        return ("--model", self.repo_id, *self.precision_args, *self.model.vllm_args)


def expected_weight_bytes(model: ModelSpec, precision: Precision) -> float:
    """The weight-bytes rule of the module docstring, for checking the literals."""
    quantized = (model.params - model.embedding_params) * BYTES_PER_PARAM[precision]
    quantized *= 1 + SCALE_OVERHEAD[precision]
    if precision == "bf16":
        return model.params * BYTES_PER_PARAM["bf16"]
    return quantized + model.embedding_params * EMBEDDING_BYTES_PER_PARAM


_QWEN_ARGS = ("--enable-prefix-caching",)


def _qwen25_coder(
    size: str,
    *,
    params: int,
    embedding_params: int,
    layers: int,
    attention_heads: int,
    kv_heads: int,
    extended_context: int = 131_072,  # YaRN factor 4
) -> ModelSpec:
    """A dense Qwen2.5-Coder-Instruct: what the family shares is filled in here."""
    return ModelSpec(
        key=f"qwen2.5-coder-{size.lower()}",
        name=f"Qwen2.5-Coder-{size}-Instruct",
        family="qwen2.5-coder",
        params=params,
        active_params=params,
        embedding_params=embedding_params,
        layers=layers,
        attention_heads=attention_heads,
        kv_heads=kv_heads,
        head_dim=128,
        attention="gqa",
        native_context=32_768,
        extended_context=extended_context,
        action_mode="json_schema",
        native_tools=False,
        vllm_args=_QWEN_ARGS,
    )


QWEN25_CODER_1_5B = _qwen25_coder(
    "1.5B",
    params=1_540_000_000,
    embedding_params=151_936 * 1536,  # tied embeddings: counted once
    layers=28,
    attention_heads=12,
    kv_heads=2,
    extended_context=32_768,  # the card gives 32,768 as the full context for 1.5B
)
QWEN25_CODER_7B = _qwen25_coder(
    "7B",
    params=7_610_000_000,
    embedding_params=2 * 152_064 * 3584,  # untied embedding + LM head
    layers=28,
    attention_heads=28,
    kv_heads=4,
)
QWEN25_CODER_14B = _qwen25_coder(
    "14B",
    params=14_700_000_000,
    embedding_params=2 * 152_064 * 5120,
    layers=48,
    attention_heads=40,
    kv_heads=8,
)
QWEN25_CODER_32B = _qwen25_coder(
    "32B",
    params=32_500_000_000,
    embedding_params=2 * 152_064 * 5120,
    layers=64,
    attention_heads=40,
    kv_heads=8,
)

DEEPSEEK_CODER_6_7B = ModelSpec(
    key="deepseek-coder-6.7b",
    name="deepseek-coder-6.7b-instruct",
    family="deepseek-coder",
    params=6_740_000_000,
    active_params=6_740_000_000,
    embedding_params=2 * 32_256 * 4096,
    layers=32,
    attention_heads=32,
    kv_heads=32,  # plain multi-head attention, no GQA
    head_dim=128,
    attention="mha",
    native_context=16_384,  # linear rope scaling factor 4 is already in config.json
    extended_context=16_384,
    action_mode="json_schema",
    native_tools=False,
    vllm_args=("--enable-prefix-caching",),
)

DEEPSEEK_CODER_33B = ModelSpec(
    key="deepseek-coder-33b",
    name="deepseek-coder-33b-instruct",
    family="deepseek-coder",
    params=33_300_000_000,  # 33.3B from the architecture (62 x 530M + embeddings); card: "33B"
    active_params=33_300_000_000,
    embedding_params=2 * 32_256 * 7168,
    layers=62,
    attention_heads=56,
    kv_heads=8,
    head_dim=128,
    attention="gqa",
    native_context=16_384,
    extended_context=16_384,
    action_mode="json_schema",
    native_tools=False,
    vllm_args=("--enable-prefix-caching",),
)

DEEPSEEK_CODER_V2_LITE = ModelSpec(
    key="deepseek-coder-v2-lite",
    name="DeepSeek-Coder-V2-Lite-Instruct",
    family="deepseek-coder-v2",
    params=15_700_000_000,  # MoE: 16B total (15.7B per the card)
    active_params=2_400_000_000,
    embedding_params=2 * 102_400 * 2048,
    layers=27,
    attention_heads=16,
    kv_heads=1,  # MLA: one compressed latent per layer, shared by all heads
    head_dim=512 + 64,  # kv_lora_rank + qk_rope_head_dim
    attention="mla",
    native_context=131_072,  # card: 128k; config max_position_embeddings is 163,840 (unsure)
    extended_context=131_072,
    action_mode="json_schema",
    native_tools=False,
    vllm_args=("--trust-remote-code", "--enable-prefix-caching"),
)

MODELS: tuple[ModelSpec, ...] = (
    QWEN25_CODER_1_5B,
    QWEN25_CODER_7B,
    QWEN25_CODER_14B,
    QWEN25_CODER_32B,
    DEEPSEEK_CODER_6_7B,
    DEEPSEEK_CODER_33B,
    DEEPSEEK_CODER_V2_LITE,
)

# Qwen publishes bf16 and AWQ checkpoints of Qwen2.5-Coder but no FP8 one; the FP8 variants
# serve the bf16 checkpoint with vLLM's on-the-fly FP8 (``--quantization fp8``, dynamic
# per-tensor scales). Caveat (unsure): vLLM may hold the bf16 weights of a layer before
# quantizing it; peak load memory was not measured here.
_FP8_ONLINE = ("--quantization", "fp8")

VARIANTS: tuple[Variant, ...] = (
    Variant(QWEN25_CODER_1_5B, "bf16", "Qwen/Qwen2.5-Coder-1.5B-Instruct", 3_080_000_000),
    Variant(
        QWEN25_CODER_1_5B, "fp8", "Qwen/Qwen2.5-Coder-1.5B-Instruct", 1_770_000_000, _FP8_ONLINE
    ),
    Variant(QWEN25_CODER_1_5B, "awq", "Qwen/Qwen2.5-Coder-1.5B-Instruct-AWQ", 1_150_000_000),
    Variant(QWEN25_CODER_7B, "bf16", "Qwen/Qwen2.5-Coder-7B-Instruct", 15_220_000_000),
    Variant(QWEN25_CODER_7B, "fp8", "Qwen/Qwen2.5-Coder-7B-Instruct", 8_700_000_000, _FP8_ONLINE),
    Variant(QWEN25_CODER_7B, "awq", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 5_570_000_000),
    Variant(QWEN25_CODER_14B, "bf16", "Qwen/Qwen2.5-Coder-14B-Instruct", 29_400_000_000),
    Variant(
        QWEN25_CODER_14B, "fp8", "Qwen/Qwen2.5-Coder-14B-Instruct", 16_260_000_000, _FP8_ONLINE
    ),
    Variant(QWEN25_CODER_14B, "awq", "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", 9_940_000_000),
    Variant(QWEN25_CODER_32B, "bf16", "Qwen/Qwen2.5-Coder-32B-Instruct", 65_000_000_000),
    Variant(
        QWEN25_CODER_32B, "fp8", "Qwen/Qwen2.5-Coder-32B-Instruct", 34_060_000_000, _FP8_ONLINE
    ),
    Variant(QWEN25_CODER_32B, "awq", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", 19_190_000_000),
    Variant(
        DEEPSEEK_CODER_6_7B, "bf16", "deepseek-ai/deepseek-coder-6.7b-instruct", 13_480_000_000
    ),
    # TheBloke's community AWQ quantizations (repo ids recalled, unsure)
    Variant(DEEPSEEK_CODER_6_7B, "awq", "TheBloke/deepseek-coder-6.7B-instruct-AWQ", 3_890_000_000),
    Variant(DEEPSEEK_CODER_33B, "bf16", "deepseek-ai/deepseek-coder-33b-instruct", 66_600_000_000),
    Variant(DEEPSEEK_CODER_33B, "awq", "TheBloke/deepseek-coder-33B-instruct-AWQ", 17_980_000_000),
    Variant(
        DEEPSEEK_CODER_V2_LITE,
        "bf16",
        "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct",
        31_400_000_000,
    ),
)

#: The family sizing picks from by default: the strongest coder per size of the catalog, 32k
#: native context for every size, and one action mode and tokenizer across sizes.
DEFAULT_FAMILY = "qwen2.5-coder"


def variants(family: str | None = DEFAULT_FAMILY) -> tuple[Variant, ...]:
    """The catalog's variants, of one family (default) or all (``None``)."""
    return tuple(v for v in VARIANTS if family is None or v.model.family == family)


def variant(key: str) -> Variant:
    """A variant by ``model-key:precision``, e.g. ``qwen2.5-coder-32b:awq``."""
    for v in VARIANTS:
        if v.key == key:
            return v
    raise KeyError(key)
