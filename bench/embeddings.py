"""Embedding benchmark: MiniLM on torch (the baseline) against MiniLM int8 on ONNX Runtime.

On ``--chunks`` real code chunks of about 250 tokens (40-line spans of the ``.py`` files in
this interpreter's site-packages, kept when the tokenizer counts 200-300 tokens; the same
chunks for every run) it measures:

1. **One-time export.** :class:`appliance.index.embed.OnnxMiniLm` built on an empty cache
   folder: load the torch model, export to ONNX, quantize to int8 (``--cache-dir`` reuses
   a folder instead, and then reports 0 when the export was already there).
2. **Throughput**, chunks/s over a pass after a short warm-up (``--reps`` passes, in
   rounds, median), for each step: the torch baseline (batches of 32 in input order,
   256-token cap); ONNX float32 (export only); int8 ONNX in input order; int8 ONNX with
   length-sorted batches (the default: all cores, no busy-waiting threads); and the
   default with a single thread, and with ONNX Runtime's spinning threads, to show what
   the thread settings give. Target: the default >= 3x the baseline.
   The machine should be otherwise idle: on 2 cores any other process skews every row.
3. **Agreement**: the cosine between each chunk's ONNX and torch vectors (mean and min;
   target min >= 0.98), and whether every chunk's nearest torch vector is its own.

Missed targets are reported, not fatal; exit status 0 when the run completed.

    .venv/bin/python bench/embeddings.py               # 512 chunks
    .venv/bin/python bench/embeddings.py --chunks 128 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on sys.path: put the repository root there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import random
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from appliance.index.embed import MAX_TOKENS, OnnxMiniLm, TorchMiniLm, cpu_count, minilm_dir
from appliance.index.types import Embedder
from bench.figures import rounded

TARGET_SPEEDUP = 3.0
TARGET_MIN_COSINE = 0.98
CHUNK_LINES = 40
TOKENS_RANGE = (200, 300)
BASELINE = "torch baseline (input order, batch 32)"
DEFAULT = "onnx int8, length-sorted (default)"


def code_chunks(count: int, seed: int) -> tuple[list[str], list[int]]:
    """``count`` 40-line spans of site-packages source of 200-300 tokens, and their sizes."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    files = sorted(Path(sysconfig.get_paths()["purelib"]).glob("*/*.py"))
    random.Random(seed).shuffle(files)
    chunks: list[str] = []
    sizes: list[int] = []
    for path in files:
        lines = path.read_text(errors="replace").splitlines()
        for start in range(0, len(lines) - CHUNK_LINES, CHUNK_LINES * 5):
            text = "\n".join(lines[start : start + CHUNK_LINES])
            size = len(tokenizer.encode(text).ids)
            if TOKENS_RANGE[0] <= size <= TOKENS_RANGE[1]:
                chunks.append(text)
                sizes.append(size)
        if len(chunks) >= count:
            return chunks[:count], sizes[:count]
    raise SystemExit(f"only {len(chunks)} chunks of {TOKENS_RANGE} tokens in site-packages")


def throughput(embedder: Embedder, chunks: Sequence[str]) -> tuple[float, list[list[float]]]:
    began = time.perf_counter()
    vectors = embedder.embed(chunks)
    return len(chunks) / (time.perf_counter() - began), vectors


def measure(args: argparse.Namespace) -> dict[str, Any]:
    chunks, sizes = code_chunks(args.chunks, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        cache = Path(args.cache_dir) if args.cache_dir else Path(scratch)
        began = time.perf_counter()
        onnx = OnnxMiniLm(cache)
        build_s = time.perf_counter() - began
        export_s = onnx.export_seconds
        variants: dict[str, Embedder] = {
            BASELINE: TorchMiniLm(),
            "onnx float32, length-sorted": OnnxMiniLm(cache, quantize=False),
            "onnx int8, input order": OnnxMiniLm(cache, sort_by_length=False),
            DEFAULT: onnx,
            "onnx int8, length-sorted, 1 thread": OnnxMiniLm(cache, threads=1),
            "onnx int8, length-sorted, spinning threads": OnnxMiniLm(cache, spin=True),
        }
        for embedder in variants.values():
            embedder.embed(chunks[:16])  # warm-up: first-call allocations, thread pools
        rates: dict[str, list[float]] = {name: [] for name in variants}
        vectors: dict[str, list[list[float]]] = {}
        for _ in range(args.reps):  # rounds, so a noisy neighbour hits every variant alike
            for name, embedder in variants.items():
                cps, vectors[name] = throughput(embedder, chunks)
                rates[name].append(cps)
    torch_cps = statistics.median(rates[BASELINE])
    default_cps = statistics.median(rates[DEFAULT])
    onnx_vecs, torch_vecs = vectors[DEFAULT], vectors[BASELINE]
    fast, slow = np.asarray(onnx_vecs), np.asarray(torch_vecs)
    cosines = np.sum(fast * slow, axis=1)
    own_nearest = float(np.mean((fast @ slow.T).argmax(axis=1) == np.arange(len(chunks))))
    speedup = default_cps / torch_cps
    return {
        "config": {
            "chunks": len(chunks),
            "tokens_mean": round(statistics.mean(sizes), 1),
            "tokens_range": [min(sizes), max(sizes)],
            "max_tokens": MAX_TOKENS,
            "cpus": cpu_count(),
            "reps": args.reps,
            "onnx_model": str(onnx.model_path),
        },
        "export_s": rounded(export_s, 2) if export_s is not None else 0.0,
        "onnx_start_s": rounded(build_s, 2),
        "chunks_per_s": {name: rounded(statistics.median(r)) for name, r in rates.items()},
        "each_chunks_per_s": {name: [rounded(x) for x in r] for name, r in rates.items()},
        "speedup": rounded(speedup, 2),
        "cosine": {
            "mean": rounded(float(cosines.mean()), 4),
            "min": rounded(float(cosines.min()), 4),
        },
        "own_nearest_fraction": own_nearest,
        "targets": {
            f"onnx >= {TARGET_SPEEDUP:g}x torch": speedup >= TARGET_SPEEDUP,
            f"min cosine >= {TARGET_MIN_COSINE}": float(cosines.min()) >= TARGET_MIN_COSINE,
        },
    }


def render(fig: dict[str, Any]) -> str:
    cfg = fig["config"]
    out = [
        f"{cfg['chunks']} code chunks from site-packages, {cfg['tokens_mean']} tokens on "
        f"average ({cfg['tokens_range'][0]}-{cfg['tokens_range'][1]}), cut at "
        f"{cfg['max_tokens']}; {cfg['cpus']} CPUs; median of {cfg['reps']} pass(es)",
        f"one-time ONNX export + int8 quantization: {fig['export_s']:.1f} s "
        f"(first OnnxMiniLm start {fig['onnx_start_s']:.1f} s; model {cfg['onnx_model']})",
        "",
        f"  {'embedder':<44}{'chunks/s':>10}{'x torch':>9}",
    ]
    base = next(iter(fig["chunks_per_s"].values()))
    for name, cps in fig["chunks_per_s"].items():
        out.append(f"  {name:<44}{cps:>10.1f}{cps / base:>9.2f}")
    out += [
        "",
        f"agreement with torch: cosine mean {fig['cosine']['mean']:.4f}, "
        f"min {fig['cosine']['min']:.4f}; own nearest neighbour for "
        f"{fig['own_nearest_fraction']:.1%} of chunks",
        "",
        "targets:",
    ]
    for name, met in fig["targets"].items():
        out.append(f"  {'met   ' if met else 'MISSED'}  {name}")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/embeddings.py",
        description=(
            "Chunks/s of all-MiniLM-L6-v2 on torch (baseline) and int8 on ONNX Runtime "
            "(length-sorted batches, all cores) on real ~250-token code chunks, their "
            "ratio (target >= 3x), cosine agreement, and the one-time export time."
        ),
    )
    parser.add_argument("--chunks", type=int, default=512, help="code chunks (default 512)")
    parser.add_argument(
        "--reps", type=int, default=1, help="passes per embedder, median reported (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="which files chunks come from")
    parser.add_argument(
        "--cache-dir",
        help="model cache folder to use (default: a fresh temporary one, so the export is timed)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fig = measure(args)
    print(json.dumps(fig, indent=2) if args.json else render(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
