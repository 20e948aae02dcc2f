"""What a sandbox may use: image, resources, time, output, environment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

HARD_TIMEOUT_CAP_S = 900.0
# The default task budget (pipeline.max_minutes = 60); a session outliving it is orphaned.
DEFAULT_SESSION_MAX_S = 3600
DEFAULT_ENV_ALLOW = ("LANG", "LC_ALL", "TZ", "CI", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE")


class Ulimits(BaseModel):
    """Per-process rlimits inside the container (at or below the host's hard limits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nproc: int = Field(4096, ge=16, description="Processes per user (counts all sandboxes).")
    fsize_mb: int = Field(1024, ge=1, description="Largest file a process may write, MiB.")
    cpu_s: int = Field(1800, ge=1, description="CPU seconds per process.")
    nofile: int = Field(1024, ge=64, le=4096, description="Open files per process.")
    data_mb: int = Field(4096, ge=64, description="Data segment (heap) per process, MiB.")


class SandboxPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field("localhost/appliance-sandbox-python:1", description="Container image.")
    cpus: float = Field(1.0, gt=0, le=64, description="CPU cores (a CFS quota).")
    memory_mb: int = Field(2048, ge=64, description="Memory limit, MiB (OOM-killed past it).")
    pids: int = Field(512, ge=16, description="Processes and threads in the container.")
    timeout_s: float = Field(600.0, gt=0, description="Wall clock per command.")
    output_cap_bytes: int = Field(
        1024 * 1024, ge=1024, description="Bytes kept per stream; the rest is dropped."
    )
    tmpfs_mb: int = Field(512, ge=1, description="Size of the /tmp tmpfs, MiB.")
    env_allow: tuple[str, ...] = Field(
        DEFAULT_ENV_ALLOW, description="Only these variables may be passed to a command."
    )
    network: str = Field("none", description="Only 'none', unless an admin allows another.")
    allowed_networks: tuple[str, ...] = Field(
        ("none",), description="Networks an admin has allowed (config, never a request)."
    )
    ulimits: Ulimits = Ulimits()
    require_limits: bool = Field(
        True,
        description="Refuse to open a sandbox when memory/pids/CPU limits cannot be enforced.",
    )
    session_max_s: int = Field(
        DEFAULT_SESSION_MAX_S,
        ge=60,
        description="A container removes itself after this long, whatever happens: the "
        "task's wall-clock budget (pipeline.max_minutes), so a killed appliance leaves no "
        "idle container for longer than a task may take.",
    )

    @field_validator("timeout_s")
    @classmethod
    def _cap_timeout(cls, value: float) -> float:
        if value > HARD_TIMEOUT_CAP_S:
            raise ValueError(f"at most {HARD_TIMEOUT_CAP_S:.0f} s per command")
        return value

    def check_network(self) -> None:
        from sandbox.errors import PolicyError

        if self.network not in self.allowed_networks:
            raise PolicyError(
                f"network {self.network!r} is not allowed; sandboxes run with network 'none' "
                "unless an administrator configures another"
            )

    def command_timeout(self, requested: float | None) -> float:
        """The timeout for one command: the policy's unless a shorter one is asked for."""
        if requested is None:
            return self.timeout_s
        return max(0.1, min(requested, self.timeout_s, HARD_TIMEOUT_CAP_S))
