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
