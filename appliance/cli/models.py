"""``appliance models``: size a model for this host's GPUs, serve it, write its unit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.common import fail, friendly
from appliance.config import load_settings
from models.errors import ModelsError
from models.sizing import (
    DEFAULT_CONTEXT,
    DEFAULT_SESSIONS,
    Gpu,
    Plan,
    parse_nvidia_smi,
    plan,
)
from models.vllm import quadlet_unit

models_app = typer.Typer(help="Model sizing and serving.", no_args_is_help=True)
_QUERY = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]


def _inventory(gpus_file: Path | None) -> list[Gpu]:
    """The GPUs to plan for: --gpus-file when given, else models.gpus from the settings,
    else what nvidia-smi reports."""
    if gpus_file is not None:
        return parse_nvidia_smi(gpus_file.read_text())
    configured = load_settings().models.gpus
    if configured:
        return [Gpu(name=g.name, memory_mib=round(g.memory_gib * 1024)) for g in configured]
    if shutil.which("nvidia-smi") is None:
        raise fail(
            "no nvidia-smi on this host: list the GPUs in the settings (models.gpus, e.g. "
            'APPLIANCE_MODELS__GPUS=\'[{"name": "NVIDIA H100", "memory_gib": 79.6}]\'), '
            "pass --gpus-file with lines like 'NVIDIA H100 80GB HBM3, 81559' (name, MiB), "
            "or use the CPU default"
        )
    result = subprocess.run(_QUERY, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise fail(f"nvidia-smi failed: {result.stderr.strip()[:300]}")
    return parse_nvidia_smi(result.stdout)


_GpusFile = Annotated[
    Path | None,
    typer.Option(
        "--gpus-file",
        help="nvidia-smi CSV (name, memory MiB) instead of models.gpus from the settings or "
        "asking nvidia-smi here.",
    ),
]
_Context = Annotated[int, typer.Option(min=1024, help="Target context, tokens.")]
_Sessions = Annotated[int, typer.Option(min=1, help="Concurrent agent sessions.")]
_ModelDir = Annotated[
    Path | None,
    typer.Option(help="Directory with the model's weights (copied there; never downloaded)."),
]
_ServedName = Annotated[str, typer.Option(help="Model name the API answers to.")]
_Ngram = Annotated[bool, typer.Option("--ngram", help="N-gram speculative decoding (helps edits).")]


def _plan(gpus_file: Path | None, context: int, sessions: int) -> Plan:
    try:
        return plan(_inventory(gpus_file), context=context, sessions=sessions)
    except ModelsError as exc:
        raise fail(str(exc)) from exc


@models_app.command("plan")
@friendly
def plan_command(
    gpus_file: _GpusFile = None,
    context: _Context = DEFAULT_CONTEXT,
    sessions: _Sessions = DEFAULT_SESSIONS,
) -> None:
    """Choose the model, quantization, context, tensor parallelism and memory use that fit
    this host's GPUs, and show the arithmetic."""
    chosen = _plan(gpus_file, context, sessions)
    typer.echo(chosen.explain())
    typer.echo("\nvllm serve arguments: " + " ".join(chosen.vllm_args()))


@models_app.command("unit")
@friendly
def unit_command(
    model_dir: Annotated[Path, typer.Option(help="Weights directory on the host (absolute).")],
    image: Annotated[str, typer.Option(help="vLLM container image (from the local registry).")],
    served_name: _ServedName = "coder",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Host port on 127.0.0.1.")] = 8001,
    gpus_file: _GpusFile = None,
    context: _Context = DEFAULT_CONTEXT,
    sessions: _Sessions = DEFAULT_SESSIONS,
    ngram: _Ngram = False,
    container_name: Annotated[
        str | None,
        typer.Option(help="Podman container name (default: vllm-<served name>)."),
    ] = None,
) -> None:
    """Print the Podman Quadlet .container unit that serves the planned model with vLLM
    (it needs Podman 5.0 or newer)."""
    chosen = _plan(gpus_file, context, sessions)
    try:
        unit = quadlet_unit(
            chosen,
            image=image,
            model_dir=model_dir,
            served_name=served_name,
            port=port,
            container_name=container_name,
            ngram_speculation=ngram,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    typer.echo(unit, nl=False)


@models_app.command("serve")
@friendly
def serve_command(
    cpu: Annotated[
        bool,
        typer.Option("--cpu", help="llama.cpp on the CPU instead of vLLM on the GPUs."),
    ] = False,
    gguf: Annotated[
        Path | None, typer.Option(help="--cpu: GGUF model file (default: the SmolLM2 demo).")
    ] = None,
    ctx: Annotated[int, typer.Option(min=512, help="--cpu: context window, tokens.")] = 4096,
    model_dir: _ModelDir = None,
    served_name: _ServedName = "coder",
    gpus_file: _GpusFile = None,
    context: _Context = DEFAULT_CONTEXT,
    sessions: _Sessions = DEFAULT_SESSIONS,
    ngram: _Ngram = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8001,
    log_file: Annotated[
        Path | None, typer.Option(help="Server log (default: <data dir>/logs/model-server.log).")
    ] = None,
) -> None:
    """Serve a model with an OpenAI-compatible API until interrupted (Ctrl-C), restarting
    it if it dies: vLLM on the GPUs from the sizing plan, or llama.cpp with --cpu."""
    import signal
    import threading

    from models.llamacpp import LlamaCppServer, smollm2_gguf
    from models.process import ModelServer, supervise
    from models.vllm_server import VllmServer

    log_path = log_file or load_settings().data_dir / "logs" / "model-server.log"
    server: ModelServer
    if cpu:
        if gguf is None:
            typer.secho(
                "Serving SmolLM2-135M: a demonstration model that proves the path; "
                "it is not a coding model.",
                fg=typer.colors.YELLOW,
                err=True,
            )
        try:
            server = LlamaCppServer(gguf or smollm2_gguf(), port=port, ctx=ctx, log_path=log_path)
        except ModelsError as exc:
            raise fail(str(exc)) from exc
    else:
        if model_dir is None:
            raise fail(
                "vLLM serves local weights: pass --model-dir DIR (or --cpu for the CPU demo)"
            )
        chosen = _plan(gpus_file, context, sessions)
        typer.echo(chosen.explain())
        try:
            server = VllmServer(
                chosen,
                model_dir=model_dir,
                served_name=served_name,
                port=port,
                ngram_speculation=ngram,
                log_path=log_path,
            )
        except ModelsError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"starting vLLM (loading weights can take minutes; log: {log_path})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready(s: ModelServer) -> None:
        typer.echo(f"serving at {s.base_url} (Ctrl-C stops it)")

    try:
        supervise(server, stop, on_ready=ready)
    except KeyboardInterrupt:
        pass
    except ModelsError as exc:
        raise fail(str(exc)) from exc
