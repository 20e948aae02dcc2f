"""Settings: one pydantic-settings root composed of per-component sections.

Sources, highest priority first: keyword arguments, ``APPLIANCE_*`` environment
variables (nested with ``__``, e.g. ``APPLIANCE_SERVER__PORT=9000``), the TOML file
named by ``APPLIANCE_CONFIG``, then the embedded defaults below.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance.errors import ConfigError

DEFAULT_SECRET_KEY = "change-me-default-secret-key"  # noqa: S105 - the refused default
CONFIG_ENV = "APPLIANCE_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port of the HTTP server.")


class DatabaseSettings(_Section):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default: SQLite file appliance.db in the data dir.",
    )
    busy_timeout_ms: int = Field(5000, ge=0, description="SQLite busy timeout.")


class SecuritySettings(_Section):
    secret_key: SecretStr = Field(
        SecretStr(DEFAULT_SECRET_KEY),
        description="Key that encrypts stored forge tokens and signs sessions.",
    )


class RunnerSettings(_Section):
    concurrency: int = Field(2, ge=1, le=64, description="Tasks that run at the same time.")
    graph: str = Field(
        "pipeline",
        description="Node graph the runner executes: a registered name or 'module:attr'.",
    )


class LimitsSettings(_Section):
    max_prompt_chars: int = Field(
        20_000, ge=1, description="Longest task request accepted, in characters."
    )


class EndpointSettings(_Section):
    """One OpenAI-compatible model server. A bare URL string is accepted as ``base_url``."""

    base_url: str = Field(description="Base URL ending in /v1, e.g. http://127.0.0.1:8001/v1.")
    model: str = Field("", description="Served model name ('' = whatever the server lists).")
    kind: Literal["vllm", "llamacpp", "openai"] = Field("openai", description="Server kind.")
    action_mode: Literal["json_schema", "tools"] = Field(
        "json_schema", description="How the agent asks for actions: JSON schema or native tools."
    )
    context_length: int = Field(8192, ge=512, description="Context window in tokens.")
    api_key: SecretStr | None = Field(None, description="Bearer key, if the server needs one.")

    @model_validator(mode="before")
    @classmethod
    def _url_alone(cls, value: object) -> object:
        return {"base_url": value} if isinstance(value, str) else value


class GpuSettings(_Section):
    """One GPU of the inventory `appliance models plan` sizes for."""

    name: str = Field(min_length=1, description="GPU name, e.g. 'NVIDIA H100 80GB HBM3'.")
    memory_gib: float = Field(
        gt=0, description="Memory in GiB (nvidia-smi's memory.total in MiB / 1024), e.g. 79.6."
    )


class ModelsSettings(_Section):
    endpoints: list[EndpointSettings] = Field(
        default_factory=list,
        description="Model servers, primary first (a vLLM server, then a fallback).",
    )
    gpus: list[GpuSettings] = Field(
        default_factory=list,
        description="GPU inventory for `appliance models plan/unit/serve` when nvidia-smi "
        "cannot be asked (another host, a container); empty = ask nvidia-smi.",
    )
    cpu_fallback: bool = Field(
        True,
        description="With no endpoint configured and no GPU found, serve the CPU demo model "
        "(llama.cpp + SmolLM2) beside the appliance.",
    )


class SandboxSettings(_Section):
    cleanup_on_start: bool = Field(
        True,
        description="At start-up, remove sandbox containers and cgroups left by a crash "
        "(skipped with a warning when podman or the sandbox user is missing).",
    )


class IndexSettings(_Section):
    embedder: Literal["minilm-onnx", "minilm-torch", "openai", "none"] = Field(
        "minilm-onnx",
        description="Chunk embeddings: all-MiniLM-L6-v2 on ONNX Runtime (CPU, default) or "
        "torch, an OpenAI-compatible /v1/embeddings endpoint, or none (lexical + graph only).",
    )
    embeddings_url: str = Field(
        "", description="Base URL ending in /v1 of the embeddings endpoint (embedder=openai)."
    )
    embeddings_model: str = Field("", description="Model name for the embeddings endpoint.")
    embeddings_api_key: SecretStr | None = Field(None, description="Bearer key, if needed.")
    max_file_bytes: int = Field(
        1_000_000, ge=10_000, description="Files larger than this are catalogued, not indexed."
    )


class JobsSettings(_Section):
    """The nightly maintenance scheduler (appliance.jobs)."""

    enabled: bool = Field(True, description="Run scheduled jobs in the appliance process.")
    timezone: str = Field(
        "", description="Time zone of the cron schedules, e.g. Europe/Berlin ('' = the server's)."
    )
    default_cron: str = Field(
        "0 2 * * *",
        description="Nightly schedule of a repository without settings.nightly_cron; its "
        "minute is offset by a hash of the repository name so repositories start apart.",
    )
    repository_kinds: list[str] = Field(
        default_factory=lambda: ["reindex", "branch_cleanup", "deps"],
        description="Jobs each registered repository gets.",
    )
    retention_cron: str = Field("30 3 * * *", description="Schedule of the retention purge.")
    review_poll_cron: str = Field(
        "*/15 * * * *",
        description="How often open appliance PRs are polled for review comments (the "
        "fallback when webhooks cannot reach the appliance).",
    )
    retention_days: int = Field(
        30, ge=1, description="Task logs and finished worktrees older than this are purged."
    )
    misfire_grace_seconds: int = Field(
        3600,
        ge=1,
        description="A run missed (appliance down) by less than this still runs once at "
        "start-up; a later one is skipped and recorded.",
    )
    poll_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the scheduler re-reads its job store, so changes made with "
        "`appliance jobs` on the command line take effect.",
    )


class DepsSettings(_Section):
    """Package indexes the dependency bumps ask (local mirrors; nothing else is contacted)."""

    python_index_url: str = Field(
        "", description="PEP 691 simple index URL of the Python mirror ('' = no Python bumps)."
    )
    python_json_url: str = Field(
        "", description="PyPI JSON API root of the mirror, when it is not <simple>/../pypi."
    )
    npm_registry_url: str = Field("", description="npm registry mirror URL ('' = no npm bumps).")
    go_proxy_url: str = Field(
        "", description="GOPROXY-protocol module proxy URL, e.g. Athens ('' = no Go bumps)."
    )
    maven_repository_url: str = Field(
        "", description="Maven repository (mirror) root URL ('' = no Maven bumps)."
    )
    test_command: str = Field(
        "",
        description="Command that runs a repository's tests in the sandbox when the "
        "repository's settings.test_command is not set ('' = bumps need one per repository).",
    )
    test_timeout_seconds: float = Field(
        1800, gt=0, description="Longest a bump's test run may take."
    )


class PipelineSettings(_Section):
    max_steps: int = Field(40, ge=1, le=500, description="Tool calls per task before handover.")
    max_rounds: int = Field(5, ge=1, le=50, description="Implement/validate rounds per task.")
    max_minutes: float = Field(60.0, gt=0, description="Wall clock per task before handover.")
    max_tokens: int = Field(
        400_000, ge=1000, description="Prompt + completion tokens per task before handover."
    )
    reply_tokens: int = Field(
        1024, ge=64, description="Room kept for the model's reply in every call."
    )
    author_name: str = Field("Coding Agent Appliance", description="Commit author name.")
    author_email: str = Field("appliance@localhost", description="Commit author e-mail.")
    user_email_domain: str = Field(
        "localhost", description="Co-authored-by e-mail domain for users without one."
    )


# --- forges (publishing) -------------------------------------------------------------


class ForgeDefaultsSettings(_Section):
    """How approved work is published to GitHub/GitLab, for every repository."""

    pr_limit_per_day: int = Field(
        10, ge=1, le=1000, description="Pull/merge requests one user may open per UTC day."
    )
    labels: list[str] = Field(
        default_factory=lambda: ["appliance"], description="Labels put on every PR/MR."
    )
    draft: bool = Field(False, description="Open PRs/MRs as drafts (a repository may override).")
    poll_days: int = Field(
        30, ge=1, le=365, description="Poll PRs published this many days back for comments."
    )


# --- end forges -----------------------------------------------------------------------


# --- web UI (ui/) -------------------------------------------------------------------


class LdapSettings(_Section):
    """Optional LDAP sign-in (simple bind), beside the local users."""

    url: str = Field(
        "",
        description="ldap://host:389 (with start_tls) or ldaps://host:636; '' = LDAP off.",
    )
    start_tls: bool = Field(True, description="Upgrade an ldap:// connection with StartTLS.")
    ca_file: str = Field(
        "", description="PEM file of the CA that signed the server's certificate ('' = system)."
    )
    user_dn_template: str = Field(
        "uid={username},ou=people,dc=example,dc=org",
        description="DN a username binds as; {username} is escaped and filled in.",
    )
    group_base: str = Field(
        "", description="Where groups live, e.g. ou=groups,dc=example,dc=org ('' = no groups)."
    )
    group_filter: str = Field(
        "(member={user_dn})",
        description="Finds the user's groups under group_base; {user_dn} is filled in.",
    )
    group_roles: dict[str, Literal["viewer", "developer", "admin"]] = Field(
        default_factory=dict,
        description="Group DN (or cn) -> role; the highest mapped role wins.",
    )
    default_role: Literal["", "viewer", "developer", "admin"] = Field(
        "", description="Role of a user in no mapped group ('' = refuse the sign-in)."
    )
    timeout_seconds: float = Field(5.0, gt=0, description="Connect and receive timeout.")


class UiSettings(_Section):
    """The intranet web UI: sessions, sign-in limits, LDAP."""

    session_hours: float = Field(12.0, gt=0, description="How long a sign-in lasts.")
    login_attempts: int = Field(
        5, ge=1, description="Failed sign-ins per user and address before a pause."
    )
    login_window_seconds: int = Field(
        300, ge=1, description="The window failed sign-ins are counted in."
    )
    events_page: int = Field(
        200, ge=20, le=2000, description="Log lines a task page shows before 'earlier'."
    )
    ldap: LdapSettings = LdapSettings()


# --- end web UI -----------------------------------------------------------------------


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    """The appliance's whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(Path("./var"), description="Where all state lives.")
    dev_mode: bool = Field(False, description="Development mode: allows the default secret.")
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    security: SecuritySettings = SecuritySettings()
    runner: RunnerSettings = RunnerSettings()
    limits: LimitsSettings = LimitsSettings()
    models: ModelsSettings = ModelsSettings()
    sandbox: SandboxSettings = SandboxSettings()
    index: IndexSettings = IndexSettings()
    pipeline: PipelineSettings = PipelineSettings()
    jobs: JobsSettings = JobsSettings()
    deps: DepsSettings = DepsSettings()
    logging: LoggingSettings = LoggingSettings()
    ui: UiSettings = UiSettings()  # web UI
    forges: ForgeDefaultsSettings = ForgeDefaultsSettings()  # publishing defaults

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(
                    f"{CONFIG_ENV} names {path}, which is not a readable file: "
                    "fix the path or unset the variable."
                )
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'appliance.db').resolve()}"

    def check_secure(self) -> None:
        """Refuse insecure defaults outside development mode."""
        if self.dev_mode:
            return
        if self.security.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
            raise ConfigError(
                "The secret key is the built-in default. Set APPLIANCE_SECURITY__SECRET_KEY "
                "(or [security] secret_key in the APPLIANCE_CONFIG file) to a long random "
                "value, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`, "
                "or start in development mode with APPLIANCE_DEV_MODE=1."
            )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and config file, with readable errors."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("Invalid settings:\n" + "\n".join(lines)) from exc
