"""Connection settings of one forge (GitHub, GitLab or a plain git remote).

A :class:`ForgeSettings` is what an administrator fills in: where the forge is, the
token (held as :class:`~pydantic.SecretStr`; stored encrypted, see
:mod:`appliance.forges.secrets`), how to trust its certificate, a proxy, a timeout, and
the branches the appliance must never push to beyond what the forge itself protects.

TLS verification is on unless switched off explicitly; a forge built with
``verify_tls=False`` logs a warning once. ``ca_bundle`` is the usual answer for a
company CA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ForgeKind = Literal["github", "gitlab", "git"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com",
}


class ForgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ForgeKind = Field(
        "git", description="github, gitlab, or git (any plain git remote; the default)."
    )
    base_url: str | None = Field(
        None,
        description=(
            "API root. GitHub: https://api.github.com or https://ghe.example/api/v3 (Enterprise "
            "Server). GitLab: https://gitlab.com or https://gitlab.example. Unused for git."
        ),
    )
    token: SecretStr | None = Field(
        None, description="Access token; stored encrypted with the appliance secret key."
    )
    ca_bundle: Path | None = Field(
        None, description="PEM file of the CA(s) that signed the forge's certificate."
    )
    verify_tls: bool = Field(
        True, description="Verify the forge's certificate. Switch off only knowingly."
    )
    proxy_url: str | None = Field(None, description="HTTP(S) proxy for the forge, if any.")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds per HTTP request.")
    protected_branches: list[str] = Field(
        default_factory=list,
        description=(
            "Branch names or fnmatch patterns never pushed to, on top of the forge's own "
            "protected branches and the default branch (for git: the whole list)."
        ),
    )
    max_retries: int = Field(3, ge=0, le=10, description="Retries on rate limits and 5xx.")

    @field_validator("base_url", "proxy_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def api_url(self) -> str:
        """The configured base URL, or the public service's for github/gitlab."""
        return self.base_url or DEFAULT_BASE_URLS.get(self.kind, "")

    def tls_verify(self) -> bool | str:
        """The value requests wants for ``verify``: False, a CA bundle path, or True."""
        if not self.verify_tls:
            return False
        if self.ca_bundle is not None:
            return str(self.ca_bundle)
        return True

    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None
