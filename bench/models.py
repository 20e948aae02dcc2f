"""Model-serving benchmark: client overhead, decode and prefill speed, time to first token.

By default it starts llama.cpp's OpenAI-compatible server on the CPU with the SmolLM2-135M
GGUF (:class:`models.llamacpp.LlamaCppServer`); ``--base-url``/``--model`` point it at a
server that is already running instead (a vLLM one on a GPU machine, say). It measures:

1. **Client overhead.** ``--calls`` identical tiny requests (same prompt, ``max_tokens=1``,
   temperature 0, so the server's work is the same each time) sent through
   :meth:`models.client.ModelClient.chat` and, interleaved with them (the order alternates),
   as a raw ``httpx.AsyncClient.post`` to ``/v1/chat/completions`` with the same JSON body.
   Both warm up first. Overhead = median(client) - median(raw); target < 5 ms.
2. **Decode.** ``--reps`` streamed requests for ``--decode-tokens`` tokens (``ignore_eos``
   so the model cannot stop early; raw httpx, since the client does not pass that field).
   Time to first token (TTFT) is the time to the first chunk with content; the measured rate
   is (tokens - 1) / (time from the first to the last content chunk), tokens being the
   server's ``usage.completion_tokens`` (else the content chunks). llama.cpp also reports its
   own ``timings.predicted_per_second``; both are printed.
3. **Prefill.** ``--reps`` streamed requests with a ~``--prefill-tokens`` prompt and
   ``max_tokens=1``; rate = prompt tokens / TTFT, and llama.cpp's
   ``timings.prompt_per_second``. Every decode and prefill prompt starts with a distinct
   prefix (and llama.cpp is sent ``cache_prompt: false``) so no prompt cache shortens it.

Figures are medians over the repetitions. On a GPU server, the bytes of weights read per
decoded token (``--variant KEY`` takes them from the catalog, ``--weights-gib`` gives them by
hand) and ``--hbm-gbps`` (one GPU's memory bandwidth, GB/s) give the memory-bandwidth limit of
single-stream decode, limit tokens/s = tp x bandwidth / bytes per token, and decode tokens/s
as a fraction of it; target >= 70 %. With ``--tp N`` each of the N GPUs reads its 1/N of the
weights at once, so the bandwidth scales with N. A mixture-of-experts model (DeepSeek-Coder-V2-
Lite) reads only its active parameters per token: ``--variant`` counts those bytes
(weight bytes x active / total parameters). Without these options that target is reported as
not measured.

Missed targets are reported, not fatal. Exit status: 0 when the run completed, 2 when the
server could not be started or reached, 1 when the harness itself broke.

    .venv/bin/python bench/models.py                       # llama.cpp + SmolLM2 on the CPU
    .venv/bin/python bench/models.py --calls 10 --reps 2 --json
    .venv/bin/python bench/models.py --base-url http://127.0.0.1:8000/v1 --model qwen \\
        --kind vllm --weights-gib 15.2 --hbm-gbps 3350
    .venv/bin/python bench/models.py --base-url http://127.0.0.1:8000/v1 --model qwen \\
        --kind vllm --variant qwen2.5-coder-32b:awq --tp 2 --hbm-gbps 1008
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on sys.path: put the repository root there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench.figures import ms_text, percentile, rounded
from models.catalog import VARIANTS, Variant, variant
from models.client import Endpoint, Kind, ModelClient
from models.errors import LlamaCppError
from models.llamacpp import LlamaCppServer, default_threads, smollm2_gguf

TARGET_OVERHEAD_MS = 5.0
TARGET_BANDWIDTH_FRACTION = 0.70

TINY_PROMPT = [{"role": "user", "content": "Say OK."}]
DECODE_PROMPT = "Write a long story about a lighthouse keeper and the sea."
# common words, most one token each in BPE vocabularies; the real count comes from the server
FILLER_TEXT = (
    "the river runs past the old mill and the town where people meet at the market each "
    "morning to trade bread fish salt and cloth while children play near the water"
)


class ServerUnavailable(RuntimeError):
    """The server under test could not be started or did not answer."""


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary_ms(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": rounded(median(values), 2),
        "p90_ms": rounded(percentile(values, 90), 2),
        "min_ms": rounded(min(values), 2) if values else None,
        "max_ms": rounded(max(values), 2) if values else None,
    }


def long_prompt(tokens: int, tag: str) -> str:
    filler = FILLER_TEXT.split()
    words = [filler[i % len(filler)] for i in range(max(1, tokens - 50))]
    return f"[{tag}] Summarise this text in one sentence.\n\n" + " ".join(words)


# --- measurements --------------------------------------------------------------------


@dataclass
class StreamRun:
    ttft_s: float | None
    tokens: int  # completion tokens (server usage, else content chunks)
    chunks: int  # chunks with content
    span_s: float  # first to last content chunk
    prompt_tokens: int | None
    timings: dict[str, Any] | None  # llama.cpp's own timings block, when sent

    @property
    def decode_tps(self) -> float | None:
        if self.tokens < 2 or self.span_s <= 0:
            return None
        return (self.tokens - 1) / self.span_s


def headers(ep: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}


def base_body(ep: Endpoint, content: str, max_tokens: int, *, stream: bool) -> dict[str, Any]:
    """The body ModelClient.chat/stream sends, plus what keeps the measurement honest."""
    body: dict[str, Any] = {
        "model": ep.model,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0.0,
        "stream": stream,
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def overhead(
    client: ModelClient, raw: httpx.AsyncClient, ep: Endpoint, calls: int, warmup: int
) -> dict[str, Any]:
    body = {
        "model": ep.model,
        "messages": [dict(m) for m in TINY_PROMPT],
        "temperature": 0.0,
        "stream": False,
        "max_tokens": 1,
    }
    url = f"{ep.base_url}/chat/completions"

    async def via_client() -> float:
        began = time.perf_counter()
        await client.chat(TINY_PROMPT, max_tokens=1, temperature=0.0)
        return time.perf_counter() - began

    async def via_raw() -> float:
        began = time.perf_counter()
        resp = await raw.post(url, json=body, headers=headers(ep))
        resp.raise_for_status()
        resp.json()
        return time.perf_counter() - began

    for _ in range(warmup):
        await via_client()
        await via_raw()
    client_ms: list[float] = []
    raw_ms: list[float] = []
    for i in range(calls):
        if i % 2 == 0:
            client_ms.append(await via_client() * 1000)
            raw_ms.append(await via_raw() * 1000)
        else:
            raw_ms.append(await via_raw() * 1000)
            client_ms.append(await via_client() * 1000)
    c, r = median(client_ms), median(raw_ms)
    return {
        "client": summary_ms(client_ms),
        "raw": summary_ms(raw_ms),
        "overhead_ms": rounded(c - r, 2) if c is not None and r is not None else None,
    }


async def stream_once(raw: httpx.AsyncClient, ep: Endpoint, body: dict[str, Any]) -> StreamRun:
    url = f"{ep.base_url}/chat/completions"
    began = time.perf_counter()
    first: float | None = None
    last = began
    chunks = 0
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    async with raw.stream("POST", url, json=body, headers=headers(ep)) as resp:
        if resp.status_code >= 400:
            await resp.aread()
            raise RuntimeError(f"HTTP {resp.status_code} from {url}: {resp.text[:300]}")
        async for line in resp.aiter_lines():
            line = line.strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            chunk = json.loads(payload)
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            if isinstance(chunk.get("timings"), dict):
                timings = chunk["timings"]
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    last = now
                    chunks += 1
    tokens = int(usage.get("completion_tokens") or 0) if usage else 0
    prompt_tokens = int(usage["prompt_tokens"]) if usage and "prompt_tokens" in usage else None
    return StreamRun(
        ttft_s=None if first is None else first - began,
        tokens=tokens or chunks,
        chunks=chunks,
        span_s=0.0 if first is None else last - first,
        prompt_tokens=prompt_tokens,
        timings=timings,
    )


def extra_fields(ep: Endpoint, *, ignore_eos: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if ignore_eos and ep.kind in ("llamacpp", "vllm"):
        extra["ignore_eos"] = True
    if ep.kind == "llamacpp":
        extra["cache_prompt"] = False
    return extra


def timing(run: StreamRun, key: str) -> float | None:
    value = (run.timings or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def medians(values: list[float | None]) -> float | None:
    return median([v for v in values if v is not None])


async def decode(
    raw: httpx.AsyncClient, ep: Endpoint, reps: int, max_tokens: int, ignore_eos: bool
) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        body = base_body(ep, f"[{uuid.uuid4().hex[:8]}] {DECODE_PROMPT}", max_tokens, stream=True)
        body.update(extra_fields(ep, ignore_eos=ignore_eos))
        runs.append(await stream_once(raw, ep, body))
    ttft = medians([r.ttft_s for r in runs])
    return {
        "reps": reps,
        "max_tokens": max_tokens,
        "ignore_eos": ignore_eos,
        "tokens": [r.tokens for r in runs],
        "content_chunks": [r.chunks for r in runs],
        "ttft_ms": rounded(None if ttft is None else ttft * 1000, 1),
        "measured_tps": rounded(medians([r.decode_tps for r in runs]), 1),
        "server_tps": rounded(medians([timing(r, "predicted_per_second") for r in runs]), 1),
        "each_measured_tps": [rounded(r.decode_tps, 1) for r in runs],
    }


async def prefill(
    raw: httpx.AsyncClient, ep: Endpoint, reps: int, prompt_tokens: int
) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        text = long_prompt(prompt_tokens, uuid.uuid4().hex[:8])
        body = base_body(ep, text, 1, stream=True)
        body.update(extra_fields(ep, ignore_eos=False))
        runs.append(await stream_once(raw, ep, body))
    rates = [r.prompt_tokens / r.ttft_s if r.prompt_tokens and r.ttft_s else None for r in runs]
    ttft = medians([r.ttft_s for r in runs])
    return {
        "reps": reps,
        "prompt_tokens": [r.prompt_tokens for r in runs],
        "ttft_ms": rounded(None if ttft is None else ttft * 1000, 1),
        "measured_tps": rounded(medians(rates), 1),
        "server_tps": rounded(medians([timing(r, "prompt_per_second") for r in runs]), 1),
        "server_prompt_n": [timing(r, "prompt_n") for r in runs],
    }


async def measure(ep: Endpoint, args: argparse.Namespace) -> dict[str, Any]:
    async with (
        ModelClient([ep], timeout=args.timeout, max_retries=0) as client,
        httpx.AsyncClient(timeout=args.timeout) as raw,
    ):
        try:
            resp = await raw.get(f"{ep.base_url}/models", headers=headers(ep))
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"{ep.base_url} did not answer: {exc!r}") from exc
        if resp.status_code != 200:
            raise ServerUnavailable(f"GET {ep.base_url}/models answered {resp.status_code}")
        return {
            "overhead": await overhead(client, raw, ep, args.calls, args.warmup),
            "decode": await decode(raw, ep, args.reps, args.decode_tokens, not args.allow_eos),
            "prefill": await prefill(raw, ep, args.reps, args.prefill_tokens),
        }


# --- the memory-bandwidth limit --------------------------------------------------------


def bytes_per_token(v: Variant) -> float:
    """Weight bytes one decoded token reads: all weights of a dense model, the active
    parameters' share of them for a mixture of experts."""
    return v.weight_bytes * v.model.active_params / v.model.params


def bandwidth_limit_tps(weight_bytes_per_token: float, hbm_gbps: float, tp: int = 1) -> float:
    """Single-stream decode limit: ``tp`` GPUs each read 1/tp of the weights per token in
    parallel at ``hbm_gbps`` GB/s, so tokens/s = tp x bandwidth / bytes per token."""
    if weight_bytes_per_token <= 0 or hbm_gbps <= 0 or tp <= 0:
        raise ValueError("bytes per token, bandwidth and tp must be positive")
    return tp * hbm_gbps * 1e9 / weight_bytes_per_token


def weight_source(args: argparse.Namespace) -> tuple[float, str] | None:
    """Bytes per token and where they came from, or None when not given."""
    if args.variant:
        chosen = variant(args.variant)
        moe = chosen.model.active_params != chosen.model.params
        what = f"catalog {chosen.key}" + (" (active parameters, MoE)" if moe else "")
        return bytes_per_token(chosen), what
    if args.weights_gib:
        return args.weights_gib * 2**30, f"--weights-gib {args.weights_gib:g}"
    return None


# --- the report ----------------------------------------------------------------------


def figures(
    measured: dict[str, Any], server: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    dec = measured["decode"]
    decode_tps = dec["server_tps"] if dec["server_tps"] is not None else dec["measured_tps"]
    bandwidth: dict[str, Any]
    weights = weight_source(args)
    if weights is not None and args.hbm_gbps:
        weight_bytes, source = weights
        limit = bandwidth_limit_tps(weight_bytes, args.hbm_gbps, args.tp)
        fraction = decode_tps / limit if decode_tps is not None else None
        bandwidth = {
            "bytes_per_token_gb": round(weight_bytes / 1e9, 3),
            "weights_from": source,
            "hbm_gbps": args.hbm_gbps,
            "tp": args.tp,
            "limit_tps": round(limit, 1),
            "decode_tps": decode_tps,
            "fraction": rounded(fraction, 3),
        }
    else:
        bandwidth = {"fraction": None, "note": "not measured: no GPU here"}
    ovh = measured["overhead"]["overhead_ms"]
    frac = bandwidth["fraction"]
    targets: dict[str, dict[str, Any]] = {
        f"client overhead p50 < {TARGET_OVERHEAD_MS:.0f} ms": {
            "value_ms": ovh,
            "met": ovh is not None and ovh < TARGET_OVERHEAD_MS,
        },
        f"decode >= {TARGET_BANDWIDTH_FRACTION:.0%} of bandwidth limit": {
            "value": None if frac is None else f"{frac:.1%}",
            "met": None if frac is None else frac >= TARGET_BANDWIDTH_FRACTION,
        },
    }
    judged = [t["met"] for t in targets.values() if t["met"] is not None]
    return {
        "config": {
            "calls": args.calls,
            "warmup": args.warmup,
            "reps": args.reps,
            "decode_tokens": args.decode_tokens,
            "prefill_tokens": args.prefill_tokens,
            "cpus": os.cpu_count(),
        },
        "server": server,
        **measured,
        "bandwidth": bandwidth,
        "targets": targets,
        "all_targets_met": all(judged),
    }


def render(fig: dict[str, Any]) -> str:
    cfg, srv, ovh = fig["config"], fig["server"], fig["overhead"]
    dec, pre, bw = fig["decode"], fig["prefill"], fig["bandwidth"]

    def num(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value:.1f}{unit}"

    out = [
        f"model server: {srv['kind']} {srv['model']} at {srv['base_url']}"
        + (f" ({srv['detail']})" if srv.get("detail") else ""),
        f"{cfg['cpus']} CPUs; {cfg['calls']} overhead calls after {cfg['warmup']} warm-up "
        f"pairs; {cfg['reps']} decode and prefill repetitions",
        "",
        "client overhead (identical requests, max_tokens=1, interleaved):",
        f"  {'path':<22}{'count':>7}{'p50 ms':>10}{'p90 ms':>10}{'min ms':>10}{'max ms':>10}",
    ]
    for name, key in (("ModelClient.chat", "client"), ("raw httpx POST", "raw")):
        row = ovh[key]
        out.append(
            f"  {name:<22}{row['count']:>7}{ms_text(row['p50_ms']):>10}"
            f"{ms_text(row['p90_ms']):>10}{ms_text(row['min_ms']):>10}{ms_text(row['max_ms']):>10}"
        )
    out += [
        f"  overhead = median(client) - median(raw) = {ovh['overhead_ms']} ms",
        "",
        f"{'':<10}{'TTFT ms':>10}{'measured tok/s':>16}{'server tok/s':>14}  tokens",
        f"{'decode':<10}{ms_text(dec['ttft_ms']):>10}{num(dec['measured_tps']):>16}"
        f"{num(dec['server_tps']):>14}  {dec['tokens']} generated "
        f"(max_tokens {dec['max_tokens']}, ignore_eos {dec['ignore_eos']})",
        f"{'prefill':<10}{ms_text(pre['ttft_ms']):>10}{num(pre['measured_tps']):>16}"
        f"{num(pre['server_tps']):>14}  {pre['prompt_tokens']} prompt",
        "  (decode measured: tokens after the first / first-to-last chunk time; prefill "
        "measured: prompt tokens / TTFT; server: llama.cpp's timings block)",
        f"  decode per run (measured tok/s): {dec['each_measured_tps']}",
        "",
    ]
    if bw["fraction"] is None:
        out.append(f"memory-bandwidth limit: {bw['note']}")
    else:
        out.append(
            f"memory-bandwidth limit: {bw['tp']} x {bw['hbm_gbps']:g} GB/s / "
            f"{bw['bytes_per_token_gb']:g} GB per token ({bw['weights_from']}) = "
            f"{bw['limit_tps']:.1f} tok/s; decode {num(bw['decode_tps'])} tok/s = "
            f"{bw['fraction']:.1%} of it"
        )
    out += ["", "targets:"]
    for name, target in fig["targets"].items():
        if target["met"] is None:
            mark, shown = "n/a   ", "not measured: no GPU here"
        else:
            mark = "met   " if target["met"] else "MISSED"
            shown = f"{ms_text(target['value_ms'])} ms" if "value_ms" in target else target["value"]
        out.append(f"  {mark}  {name:<40} ({shown})")
    out.append(f"all measured targets met: {'yes' if fig['all_targets_met'] else 'NO'}")
    return "\n".join(out)


# --- entry point ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/models.py",
        description=(
            "Measure ModelClient's overhead per call against a raw HTTP request to the same "
            "server (target < 5 ms median), decode and prefill tokens/s and time to first "
            "token. Starts llama.cpp with SmolLM2-135M on the CPU unless --base-url names a "
            "running server; with --weights-gib and --hbm-gbps it also reports decode as a "
            "fraction of the memory-bandwidth limit (target >= 70 %%). Missed targets are "
            "reported, not fatal: the exit status is 0 unless the server could not be "
            "started or reached (2) or the harness broke (1)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=30, help="overhead calls per path")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up calls per path")
    parser.add_argument("--reps", type=int, default=3, help="decode and prefill repetitions")
    parser.add_argument("--decode-tokens", type=int, default=128, help="max_tokens for decode")
    parser.add_argument(
        "--prefill-tokens", type=int, default=1000, help="approximate prefill prompt tokens"
    )
    parser.add_argument(
        "--allow-eos",
        action="store_true",
        help="do not send ignore_eos (the model may stop before --decode-tokens)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="HTTP timeout, seconds")
    parser.add_argument("--threads", type=int, default=default_threads(), help="llama.cpp threads")
    parser.add_argument("--ctx", type=int, default=4096, help="llama.cpp context size")
    parser.add_argument(
        "--base-url", default=None, help="use this running server (…/v1) instead of llama.cpp"
    )
    parser.add_argument("--model", default=None, help="model id on --base-url (required there)")
    parser.add_argument(
        "--kind",
        choices=["vllm", "llamacpp", "openai"],
        default="vllm",
        help="what --base-url is (vllm and llamacpp get ignore_eos)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("BENCH_API_KEY"), help="bearer token for --base-url"
    )
    parser.add_argument(
        "--weights-gib", type=float, default=None, help="model weight size, GiB (GPU server)"
    )
    parser.add_argument(
        "--variant",
        default=None,
        choices=[v.key for v in VARIANTS],
        metavar="KEY",
        help="catalog variant served (e.g. qwen2.5-coder-32b:fp8): weight bytes per token "
        "from the catalog, active parameters only for MoE (instead of --weights-gib)",
    )
    parser.add_argument(
        "--tp", type=int, default=1, help="tensor-parallel GPUs (bandwidth scales with them)"
    )
    parser.add_argument(
        "--hbm-gbps", type=float, default=None, help="one GPU's memory bandwidth, GB/s"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if min(args.calls, args.reps, args.decode_tokens, args.prefill_tokens, args.threads) <= 0:
        parser.error("counts must be positive")
    if args.warmup < 0 or args.timeout <= 0:
        parser.error("--warmup must be >= 0 and --timeout positive")
    if args.base_url and not args.model:
        parser.error("--base-url needs --model")
    if args.weights_gib is not None and args.variant is not None:
        parser.error("give --variant or --weights-gib, not both")
    weights_given = args.weights_gib is not None or args.variant is not None
    if weights_given != (args.hbm_gbps is not None):
        parser.error("give --hbm-gbps with --variant or --weights-gib, or none of them")
    if args.hbm_gbps is not None and args.hbm_gbps <= 0:
        parser.error("--hbm-gbps must be positive")
    if args.weights_gib is not None and args.weights_gib <= 0:
        parser.error("--weights-gib must be positive")
    if args.tp <= 0:
        parser.error("--tp must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server: LlamaCppServer | None = None
    kind: Kind
    try:
        if args.base_url:
            kind = args.kind
            ep = Endpoint(args.base_url, args.model, kind=kind, api_key=args.api_key)
            info: dict[str, Any] = {"kind": kind, "model": ep.model, "base_url": ep.base_url}
        else:
            try:
                server = LlamaCppServer(smollm2_gguf(), ctx=args.ctx, threads=args.threads)
                server.start()
            except LlamaCppError as exc:
                print(f"models bench: {exc}", file=sys.stderr)
                return 2
            kind = "llamacpp"
            ep = Endpoint(server.base_url, server.model, kind=kind)
            info = {
                "kind": kind,
                "model": server.model,
                "base_url": server.base_url,
                "detail": f"CPU, {server.threads} threads, ctx {server.ctx}, "
                f"started in {server.startup_seconds or 0:.1f} s",
            }
        try:
            measured = asyncio.run(measure(ep, args))
        except ServerUnavailable as exc:
            print(f"models bench: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"models bench: the harness broke: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    finally:
        if server is not None:
            server.stop()
    fig = figures(measured, info, args)
    print(json.dumps(fig) if args.json else render(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
