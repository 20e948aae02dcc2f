"""``appliance models``: size a model for this host's GPUs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.common import fail, friendly
from models.errors import ModelsError
from models.sizing import DEFAULT_CONTEXT, DEFAULT_SESSIONS, parse_nvidia_smi, plan

models_app = typer.Typer(help="Model sizing and serving.", no_args_is_help=True)
_QUERY = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]


def _inventory(gpus_file: Path | None) -> str:
    if gpus_file is not None:
        return gpus_file.read_text()
    if shutil.which("nvidia-smi") is None:
        raise fail(
            "no nvidia-smi on this host: pass --gpus-file with lines like "
            "'NVIDIA H100 80GB HBM3, 81559' (name, MiB), or use the CPU default"
        )
    result = subprocess.run(_QUERY, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise fail(f"nvidia-smi failed: {result.stderr.strip()[:300]}")
    return result.stdout


@models_app.command("plan")
@friendly
def plan_command(
    gpus_file: Annotated[
        Path | None,
        typer.Option(
            "--gpus-file",
            help="nvidia-smi CSV (name, memory MiB) instead of asking nvidia-smi here.",
        ),
    ] = None,
    context: Annotated[
        int, typer.Option(min=1024, help="Target context, tokens.")
    ] = DEFAULT_CONTEXT,
    sessions: Annotated[
        int, typer.Option(min=1, help="Concurrent agent sessions.")
    ] = DEFAULT_SESSIONS,
) -> None:
    """Choose the model, quantization, context, tensor parallelism and memory use that fit
    this host's GPUs, and show the arithmetic."""
    try:
        chosen = plan(parse_nvidia_smi(_inventory(gpus_file)), context=context, sessions=sessions)
    except ModelsError as exc:
        raise fail(str(exc)) from exc
    typer.echo(chosen.explain())
    typer.echo("\nvllm serve arguments: " + " ".join(chosen.vllm_args()))


@models_app.command("serve")
@friendly
def serve_command(
    cpu: Annotated[
        bool,
        typer.Option("--cpu", help="llama.cpp on the CPU (the only mode without the gpu extra)."),
    ] = False,
    gguf: Annotated[
        Path | None, typer.Option(help="GGUF model file (default: the SmolLM2 demo model).")
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8001,
    ctx: Annotated[int, typer.Option(min=512, help="Context window, tokens.")] = 4096,
) -> None:
    """Serve a model with an OpenAI-compatible API until interrupted (Ctrl-C)."""
    import signal
    import threading

    from models.llamacpp import LlamaCppServer, smollm2_gguf

    if not cpu:
        raise fail(
            "GPU serving starts vLLM from the plan (`appliance models plan`); this build "
            "serves --cpu only"
        )
    model = gguf or smollm2_gguf()
    if gguf is None:
        typer.secho(
            "Serving SmolLM2-135M: a demonstration model that proves the path; "
            "it is not a coding model.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with LlamaCppServer(model, port=port, ctx=ctx) as server:
            typer.echo(f"serving {server.model} at {server.base_url} (Ctrl-C stops it)")
            while not stop.wait(1.0):
                if not server.running():
                    raise fail(f"the model server exited; its log is {server.log_path}")
    except KeyboardInterrupt:
        pass
    except ModelsError as exc:
        raise fail(str(exc)) from exc
