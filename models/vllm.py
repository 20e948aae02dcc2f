"""vLLM launcher: the exact ``vllm serve`` command and a Podman Quadlet unit for a sizing plan.

* **Weights** come from a local model directory, never the hub: the directory is the model
  argument of ``vllm serve``, ``--served-model-name`` gives the API name, and the offline
  environment (:func:`serve_env`) stops every hub, telemetry and usage-stats call.
* **Arguments** are the plan's (:meth:`models.sizing.Plan.vllm_args`) without ``--model <repo>``:
  quantization, prefix caching (on by default in vLLM V1; passing it explicitly is harmless),
  ``--max-model-len``, ``--tensor-parallel-size``, ``--gpu-memory-utilization`` and
  ``--kv-cache-dtype`` where the plan chose FP8 KV. N-gram speculative decoding (prompt lookup,
  no draft model) is optional: it helps edits that copy spans of the prompt.
* **Quadlet**: the unit mounts the model directory read-only at ``/models/<dir name>``, passes
  all GPUs through NVIDIA CDI (``nvidia.com/gpu=all``), publishes the API on host loopback only,
  and waits (``Notify=healthy``) for the container's health check on ``/health``; loading
  weights is slow, hence ``TimeoutStartSec=900``. ``Entrypoint=`` and ``Notify=healthy`` came
  with Podman 5.0 (Quadlet itself with 4.4): the unit needs :data:`MIN_PODMAN`, and the Ansible
  models role checks for it before installing units. Each unit's container is named after its
  served model (``vllm-<name>``), so several served models do not collide.
* **Readiness** (:func:`wait_ready`): ``/health`` answers 200 *and* ``/v1/models`` lists the
  served name. ``/health`` alone does not prove the model is loaded.
* **Metrics** (:func:`parse_metrics`): running/waiting requests, KV-cache usage and mean time to
  first token from the Prometheus text of ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from models.errors import ModelsError
from models.sizing import Plan

#: port vLLM listens on inside the container
CONTAINER_PORT = 8000
#: where model directories are mounted inside the container
CONTAINER_MODELS_DIR = "/models"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
#: n-gram (prompt lookup) speculative decoding: propose up to 5 tokens copied from the prompt
#: after a match of at most 4 tokens.
NGRAM_SPECULATIVE_CONFIG: dict[str, object] = {
    "method": "ngram",
    "num_speculative_tokens": 5,
    "prompt_lookup_max": 4,
}

_PREFIX_CACHING = "--enable-prefix-caching"

#: oldest Podman whose Quadlet knows every key of :func:`quadlet_unit` (``Entrypoint=`` and
#: ``Notify=healthy`` arrived in 5.0); the Ansible models role checks the same version
MIN_PODMAN = "5.0"


class VllmNotReady(ModelsError):
    """The vLLM server did not become ready in time; the message says what was missing."""


def serve_env() -> dict[str, str]:
    """Environment for an offline vLLM: no hub downloads, no telemetry or usage stats."""
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }


def plan_args(plan: Plan) -> list[str]:
    """The plan's vLLM arguments without ``--model <repo id>``, with prefix caching on."""
    args = list(plan.vllm_args())
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--model":
            i += 2
            continue
        if args[i].startswith("--model="):
            i += 1
            continue
        out.append(args[i])
        i += 1
    if _PREFIX_CACHING not in out:
        out.append(_PREFIX_CACHING)
    return out


def serve_argv(
    plan: Plan,
    *,
    model_dir: Path | str,
    served_name: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ngram_speculation: bool = False,
) -> list[str]:
    """The ``vllm serve`` command serving ``model_dir`` (local weights) for ``plan``."""
    if not served_name:
        raise ValueError("served_name must not be empty")
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    argv = [
        "vllm",
        "serve",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        *plan_args(plan),
    ]
    if ngram_speculation:
        argv += ["--speculative-config", json.dumps(NGRAM_SPECULATIVE_CONFIG)]
    return argv


def container_model_path(model_dir: Path) -> str:
    """Where ``model_dir`` is mounted inside the container."""
    return f"{CONTAINER_MODELS_DIR}/{model_dir.name}"


_CONTAINER_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_name_for(served_name: str) -> str:
    """The default container name of a served model: ``vllm-<served name>``, with every run of
    characters Podman does not allow in a name replaced by ``-``."""
    cleaned = _CONTAINER_NAME_BAD.sub("-", served_name).strip("-.")
    return f"vllm-{cleaned}" if cleaned else "vllm"


def quadlet_unit(
    plan: Plan,
    *,
    image: str,
    model_dir: Path,
    served_name: str,
    port: int = DEFAULT_PORT,
    container_name: str | None = None,
    ngram_speculation: bool = False,
    shm_size: str = "16g",
) -> str:
    """A Podman Quadlet ``.container`` unit running ``vllm serve`` for ``plan``.

    ``model_dir`` (absolute, on the host) is mounted read-only; the API is published on
    ``127.0.0.1:<port>`` of the host only. The image's entrypoint is replaced by ``vllm`` so the
    command does not depend on how the image sets it. ``container_name`` defaults to
    :func:`container_name_for` the served name. Needs Podman :data:`MIN_PODMAN` or newer.
    """
    if container_name is None:
        container_name = container_name_for(served_name)
    if not model_dir.is_absolute():
        raise ValueError(f"model_dir must be an absolute path: {model_dir}")
    if not model_dir.name:
        raise ValueError(f"model_dir has no directory name: {model_dir}")
    for what, value in (("image", image), ("container_name", container_name)):
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{what} must be non-empty without whitespace: {value!r}")
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    inside = container_model_path(model_dir)
    argv = serve_argv(
        plan,
        model_dir=inside,
        served_name=served_name,
        host="0.0.0.0",  # noqa: S104 - inside the container; published on host loopback only
        port=CONTAINER_PORT,
        ngram_speculation=ngram_speculation,
    )
    assert argv[0] == "vllm"
    variant = plan.variant
    lines = [
        f"# Needs Podman {MIN_PODMAN}+ (Quadlet Entrypoint= and Notify=healthy).",
        "[Unit]",
        f"Description=vLLM serving {variant.model.name} {variant.precision} as {served_name}",
        "",
        "[Container]",
        f"Image={image}",
        f"ContainerName={container_name}",
        f"Volume={_systemd_escape_specifiers(str(model_dir))}:{inside}:ro",
        "AddDevice=nvidia.com/gpu=all",
        *(f"Environment={key}={value}" for key, value in serve_env().items()),
        "Network=pasta",
        f"PublishPort=127.0.0.1:{port}:{CONTAINER_PORT}",
        f"ShmSize={shm_size}",
        "Entrypoint=vllm",
        f"Exec={' '.join(systemd_quote(a) for a in argv[1:])}",
        f"HealthCmd=curl -fsS http://127.0.0.1:{CONTAINER_PORT}/health",
        "HealthInterval=30s",
        "HealthStartPeriod=15m",
        "HealthRetries=3",
        "Notify=healthy",
        "",
        "[Service]",
        "Restart=on-failure",
        "TimeoutStartSec=900",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@")


def systemd_quote(arg: str) -> str:
    """One argument for a systemd command line (Quadlet ``Exec=``).

    Plain words stay bare; anything else is double-quoted with ``\\`` and ``"`` escaped, and
    ``%`` (specifiers) and ``$`` (variable expansion) doubled so they reach vLLM literally.
    """
    if arg and all(c in _PLAIN for c in arg):
        return arg
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"argument contains a line break: {arg!r}")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    escaped = _systemd_escape_specifiers(escaped).replace("$", "$$")
    return f'"{escaped}"'


def _systemd_escape_specifiers(value: str) -> str:
    return value.replace("%", "%%")


_NOT_PROBED = "not probed yet"


def _root_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


async def _probe(client: httpx.AsyncClient, base_url: str, served_name: str) -> str | None:
    """None when ready, else what is not ready yet."""
    base = base_url.rstrip("/")
    try:
        health = await client.get(f"{_root_url(base)}/health")
        if health.status_code != 200:
            return f"GET /health answered {health.status_code}"
        models = await client.get(f"{base}/models")
    except httpx.HTTPError as exc:
        return f"server not reachable ({type(exc).__name__}: {exc})"
    if models.status_code != 200:
        return f"GET /v1/models answered {models.status_code}"
    try:
        data = models.json().get("data", [])
        ids = [str(m.get("id")) for m in data]
    except (ValueError, AttributeError, TypeError) as exc:
        return f"GET /v1/models answered no model list ({exc})"
    if served_name not in ids:
        return f"served model {served_name!r} is missing from GET /v1/models (lists {ids})"
    return None


async def wait_ready(
    base_url: str,
    served_name: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
    client: httpx.AsyncClient | None = None,
    interval: float = 0.5,
) -> None:
    """Wait until ``/health`` answers 200 and ``{base_url}/models`` lists ``served_name``.

    ``base_url`` is the OpenAI base, e.g. ``http://127.0.0.1:8001/v1``; ``/health`` is probed
    at its root. Raises :class:`VllmNotReady` with the last thing missing after ``timeout``
    seconds.
    """
    deadline = time.monotonic() + timeout
    own = client is None
    http = httpx.AsyncClient(trust_env=False) if client is None else client
    last = _NOT_PROBED
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    problem = await _probe(http, base_url, served_name)
            except TimeoutError:
                if last == _NOT_PROBED:
                    last = "the server did not answer in time"
                break
            if problem is None:
                return
            last = problem
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(interval, remaining))
    finally:
        if own:
            await http.aclose()
    raise VllmNotReady(f"vLLM at {base_url} was not ready within {timeout:g} s: {last}")


#: gauge name -> key in :func:`parse_metrics`' result; the first present name of a key wins
_GAUGES: tuple[tuple[str, str], ...] = (
    ("vllm:num_requests_running", "num_requests_running"),
    ("vllm:num_requests_waiting", "num_requests_waiting"),
    ("vllm:kv_cache_usage_perc", "kv_cache_usage_perc"),
    ("vllm:gpu_cache_usage_perc", "kv_cache_usage_perc"),  # before vLLM renamed it
)
_TTFT = "vllm:time_to_first_token_seconds"


def parse_metrics(text: str) -> dict[str, float]:
    """Key serving numbers from vLLM's ``/metrics`` (Prometheus text format).

    Keys (each only when the metric is present): ``num_requests_running`` and
    ``num_requests_waiting`` (summed over label sets), ``kv_cache_usage_perc`` (0..1, the
    highest over label sets; ``vllm:gpu_cache_usage_perc`` on older vLLM) and
    ``ttft_mean_seconds`` (histogram sum / count, only once a request was counted) with
    ``ttft_count``.
    """
    gauges: dict[str, list[float]] = {}
    ttft_sum = 0.0
    ttft_count = 0.0
    ttft_seen = False
    for family in text_string_to_metric_families(text):
        if family.name == _TTFT:
            for sample in family.samples:
                if sample.name == f"{_TTFT}_sum":
                    ttft_sum += sample.value
                    ttft_seen = True
                elif sample.name == f"{_TTFT}_count":
                    ttft_count += sample.value
                    ttft_seen = True
            continue
        for name, _key in _GAUGES:
            if family.name == name:
                gauges.setdefault(name, []).extend(
                    s.value for s in family.samples if s.name == name
                )
    result: dict[str, float] = {}
    for name, key in _GAUGES:
        values = gauges.get(name)
        if key in result or not values:
            continue
        result[key] = max(values) if key == "kv_cache_usage_perc" else sum(values)
    if ttft_seen:
        result["ttft_count"] = ttft_count
        if ttft_count > 0:
            result["ttft_mean_seconds"] = ttft_sum / ttft_count
    return result
