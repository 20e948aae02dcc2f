"""``appliance doctor``: a health report of this host for the appliance.

Each check returns a :class:`Check` with status ``ok``, ``warn`` or ``fail`` and a
message that says what to do. Any ``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import httpx
from sqlalchemy import text

from appliance.config import EndpointSettings, Settings
from appliance.store import migrate
from appliance.store.db import Database
from models.endpoint import Endpoint
from models.errors import NotAModelList
from models.server_info import model_ids, model_list, served_context_length
from sandbox import images, spec
from sandbox.errors import SandboxError
from sandbox.service import SETUP_HINT, SandboxUser

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("data_dir", "fail", f"{path} is not writable ({exc}); fix its owner or mode")
    return Check("data_dir", "ok", f"{path.resolve()} is writable")


def check_database(settings: Settings) -> Check:
    db = Database(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(db.engine)
        head = migrate.head_revision()
    except Exception as exc:
        return Check("database", "fail", f"cannot open the database: {exc}")
    finally:
        db.dispose()
    if current != head:
        return Check(
            "database",
            "fail",
            f"schema at {current or 'nothing'}, this release needs {head}: run `appliance migrate`",
        )
    return Check("database", "ok", f"reachable, schema at {head}")


def _run(cmd: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def check_podman(_settings: Settings) -> Check:
    if shutil.which("podman") is None:
        return Check("podman", "fail", f"podman is not installed: {SETUP_HINT}")
    try:
        user = SandboxUser.lookup()
        info = user.run(["podman", "info", "--format", "json"], timeout=30)
    except SandboxError as exc:
        return Check("podman", "fail", exc.message)
    except subprocess.TimeoutExpired:
        return Check("podman", "fail", "`podman info` as the sandbox user did not answer in 30 s")
    if info.returncode != 0:
        return Check("podman", "fail", f"rootless podman fails: {info.stderr.decode()[-300:]}")
    host = json.loads(info.stdout).get("host", {})
    if not host.get("security", {}).get("rootless"):
        return Check("podman", "fail", f"podman as {user.name} is not rootless")
    runtime = host.get("ociRuntime", {}).get("name", "?")
    return Check("podman", "ok", f"rootless as {user.name} (uid {user.uid}), runtime {runtime}")


def check_sandbox_images(_settings: Settings) -> Check:
    try:
        user = SandboxUser.lookup()
    except SandboxError as exc:
        return Check("sandbox_images", "fail", exc.message)
    if shutil.which("podman") is None:
        return Check("sandbox_images", "fail", "podman is missing, so no sandbox image either")
    missing = [r.name for r in images.RECIPES.values() if not images.image_exists(user, r.name)]
    if missing:
        kinds = " ".join(k for k, r in images.RECIPES.items() if r.name in missing)
        return Check(
            "sandbox_images",
            "fail",
            f"not built: {', '.join(missing)}; run `appliance sandbox build-image` for: {kinds}",
        )
    return Check("sandbox_images", "ok", ", ".join(r.name for r in images.RECIPES.values()))


def check_sandbox_limits(_settings: Settings) -> Check:
    """Which limits this host really enforces for rootless sandboxes: per-task cgroups on
    a cgroup-v1 host, Podman's own limits on the controllers a cgroup-v2 host delegates to
    the sandbox user."""
    try:
        uid = SandboxUser.lookup().uid
    except SandboxError as exc:
        return Check("sandbox_limits", "fail", f"no sandbox user: {exc.message}")
    limits = spec.host_limits(uid)
    always = "network none, cap-drop ALL, no-new-privileges, read-only root, rlimits"
    named = {"memory": limits.memory, "pids": limits.pids, "CPU": limits.cpu}
    enforced = [name for name, on in named.items() if on]
    missing = [name for name, on in named.items() if not on]
    why = "; ".join(limits.notes)
    if not missing:
        return Check("sandbox_limits", "ok", f"enforced: {always}, {', '.join(enforced)} ({why})")
    return Check(
        "sandbox_limits",
        "fail",
        f"enforced: {', '.join([always, *enforced])}; NOT enforced: {', '.join(missing)} "
        f"({why}); sandboxes refuse to open unless their policy sets require_limits=false",
    )


def check_model_endpoints(settings: Settings) -> Check:
    endpoints = settings.models.endpoints
    if not endpoints:
        return Check(
            "models",
            "warn",
            "no model endpoint is configured; `appliance models serve --cpu` starts the CPU "
            "demo model (SmolLM2-135M: it proves the path, it is not a coding model)",
        )
    bad = [problem for ep in endpoints if (problem := _endpoint_problem(ep))]
    if bad:
        return Check("models", "fail", "; ".join(bad))
    return Check("models", "ok", f"{len(endpoints)} endpoint(s) ready and serving their model")


def _endpoint_problem(ep: EndpointSettings) -> str | None:
    """What is wrong with one endpoint, or None. Local endpoints are asked directly: the
    environment's HTTP(S)_PROXY is not used (``trust_env=False``)."""
    try:
        endpoint = Endpoint(
            base_url=ep.base_url,
            model=ep.model,
            kind=ep.kind,
            api_key=ep.api_key.get_secret_value() if ep.api_key else None,
            context_length=ep.context_length,
        )
    except ValueError as exc:
        return f"endpoint {ep.base_url!r} is not usable: {exc}"
    base = endpoint.base_url
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    with httpx.Client(timeout=5, trust_env=False) as http:
        try:
            if ep.kind in ("vllm", "llamacpp"):  # /health alone does not prove the model is loaded
                http.get(endpoint.root + "/health").raise_for_status()
            listed = http.get(base + "/models", headers=headers)
            listed.raise_for_status()
        except httpx.HTTPError as exc:
            return f"{base} unreachable or unhealthy ({type(exc).__name__}: {exc})"
        try:
            entries = model_list(listed)
        except NotAModelList as exc:
            return f"endpoint {base} {exc.message}"
        names = model_ids(entries)
        if ep.model and ep.model not in names:
            return f"{base} does not serve {ep.model!r} (it lists {', '.join(names)})"
        served = served_context_length(http, endpoint, entries)
    if served is not None and served != ep.context_length:
        return (
            f"{base}: configured context_length {ep.context_length}, server serves {served}: "
            f"set context_length = {served} for this endpoint in models.endpoints (or start "
            f"the server with a {ep.context_length}-token context)"
        )
    return None


def check_gpus(_settings: Settings) -> Check:
    if shutil.which("nvidia-smi") is None:
        return Check("gpus", "warn", "no nvidia-smi: no GPU, models run on the CPU (slow)")
    result = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
    if result.returncode != 0:
        return Check("gpus", "fail", f"nvidia-smi failed: {result.stderr.strip()[:300]}")
    gpus = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return Check("gpus", "ok", f"{len(gpus)} GPU(s): " + "; ".join(gpus))


CHECKS: list[Callable[[Settings], Check]] = [
    check_data_dir,
    check_database,
    check_podman,
    check_sandbox_images,
    check_sandbox_limits,
    check_model_endpoints,
    check_gpus,
]


def run_checks(settings: Settings) -> list[Check]:
    return [check(settings) for check in CHECKS]


def as_json(checks: list[Check]) -> str:
    ok = all(c.status != "fail" for c in checks)
    return json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, indent=2)
