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


class ModelsSettings(_Section):
    endpoints: list[EndpointSettings] = Field(
        default_factory=list,
        description="Model servers, primary first (a vLLM server, then a fallback).",
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
    logging: LoggingSettings = LoggingSettings()

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
