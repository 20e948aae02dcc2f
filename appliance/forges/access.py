"""``appliance repo check``: can the appliance read a repository's forge and push to it?

Each :class:`Finding` names what it is about — ``settings``, ``network``, ``certificate``,
``token``, ``scope``, ``role``, ``repository``, ``push`` — and says what is missing. The
forge's own metadata call comes first (it classifies network, certificate, token and
permission failures); then the push permission: GitHub's ``permissions.push`` on the
repository and the classic token's ``X-OAuth-Scopes``, GitLab's access level in the
project (Developer = 30 or more) and the token's scopes. A plain git remote is read with
``git ls-remote``; its push permission shows at the first push.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import requests

from appliance.config import Settings
from appliance.forges import build_forge
from appliance.forges.boundary import (
    Where,
    http_error,
    local_error,
    quiet_insecure,
    transport_error,
)
from appliance.forges.connect import forge_project, forge_settings
from appliance.forges.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgePermissionError,
    ForgeRateLimited,
    ForgeTLSError,
    ForgeUnavailable,
)
from appliance.forges.settings import ForgeSettings
from appliance.store.models import Repository

DEVELOPER = 30
_KIND_OF_ERROR: list[tuple[type[ForgeError], str]] = [
    (ForgeTLSError, "certificate"),
    (ForgeRateLimited, "network"),
    (ForgeUnavailable, "network"),
    (ForgeAuthError, "token"),
    (ForgePermissionError, "scope"),
    (ForgeNotFound, "repository"),
]


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    message: str


def _finding(exc: ForgeError) -> Finding:
    what = next((w for cls, w in _KIND_OF_ERROR if isinstance(exc, cls)), "forge")
    return Finding(what, False, exc.message)


def check_repository(settings: Settings, repo: Repository) -> list[Finding]:
    """What works and what is missing, in order; stops at the first blocking problem."""
    try:
        cfg = forge_settings(settings, repo)
    except ForgeError as exc:
        return [Finding("settings", False, exc.message)]
    findings: list[Finding] = []
    if not cfg.verify_tls:
        findings.append(
            Finding("certificate", True, "TLS verification is OFF: set ca_bundle instead")
        )
    project = forge_project(repo)
    forge = build_forge(cfg, project)
    try:
        meta = forge.metadata()
    except ForgeError as exc:
        return [*findings, _finding(exc)]
    finally:
        forge.close()
    protected = ", ".join(meta.protected_branches) or "none"
    findings.append(
        Finding(
            "repository",
            True,
            f"{meta.full_name} is readable: default branch {meta.default_branch}, "
            f"protected branches: {protected}",
        )
    )
    try:
        if cfg.kind == "github":
            findings += _github_push(cfg, project)
        elif cfg.kind == "gitlab":
            findings += _gitlab_push(cfg, project)
        else:
            findings.append(
                Finding("push", True, "plain git: push access is confirmed by the first push")
            )
    except ForgeError as exc:
        findings.append(_finding(exc))
    return findings


def _get(cfg: ForgeSettings, forge: str, url: str, headers: dict[str, str], action: str) -> Any:
    where = Where(forge, cfg.api_url(), action, cfg.timeout)
    proxies = {"http": cfg.proxy_url, "https": cfg.proxy_url} if cfg.proxy_url else None
    try:
        with quiet_insecure(not cfg.verify_tls), requests.Session() as session:
            session.trust_env = proxies is None  # the repository's proxy beats HTTPS_PROXY
            response = session.get(
                url, headers=headers, verify=cfg.tls_verify(), proxies=proxies, timeout=cfg.timeout
            )
    except requests.RequestException as exc:
        raise transport_error(exc, where) from exc
    except OSError as exc:  # a ca_bundle that does not exist
        raise local_error(exc, where) from exc
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.reason or ""
        raise http_error(response.status_code, message, dict(response.headers), where)
    return response


def _github_push(cfg: ForgeSettings, project: str) -> list[Finding]:
    headers = {"Accept": "application/vnd.github+json"}
    if cfg.token is not None:
        headers["Authorization"] = f"Bearer {cfg.token_value()}"
    response = _get(
        cfg, "GitHub", f"{cfg.api_url()}/repos/{project}", headers, "read the permissions"
    )
    found = []
    scopes = response.headers.get("X-OAuth-Scopes")
    if scopes is not None:  # a classic token; fine-grained tokens send no such header
        have = {s.strip() for s in scopes.split(",") if s.strip()}
        if not have & {"repo", "public_repo"}:
            found.append(
                Finding(
                    "scope",
                    False,
                    f"the token has the scopes {sorted(have) or 'none'} but needs 'repo' to "
                    "push branches and open pull requests",
                )
            )
    permissions = response.json().get("permissions") or {}
    if permissions.get("push"):
        found.append(Finding("push", True, "the token may push branches and open pull requests"))
    else:
        found.append(
            Finding(
                "role",
                False,
                f"the token's account has no write access to {project}: add it as a "
                "collaborator with the Write role (fine-grained token: Contents and Pull "
                "requests read/write)",
            )
        )
    return found


def _gitlab_push(cfg: ForgeSettings, project: str) -> list[Finding]:
    headers = {"PRIVATE-TOKEN": cfg.token_value() or ""}
    api = f"{cfg.api_url()}/api/v4"
    quoted = urllib.parse.quote(project, safe="")
    response = _get(cfg, "GitLab", f"{api}/projects/{quoted}", headers, "read the permissions")
    found = []
    try:
        token = _get(cfg, "GitLab", f"{api}/personal_access_tokens/self", headers, "read scopes")
        scopes = set(token.json().get("scopes") or [])
        if "api" not in scopes:
            found.append(
                Finding(
                    "scope",
                    False,
                    f"the token has the scopes {sorted(scopes) or 'none'} but needs 'api'",
                )
            )
    except ForgeError:
        pass  # older GitLab, or a project/group token: the access level below still tells
    permissions = response.json().get("permissions") or {}
    levels = [
        int((permissions.get(k) or {}).get("access_level") or 0)
        for k in ("project_access", "group_access")
    ]
    level = max(levels, default=0)
    if level >= DEVELOPER:
        found.append(Finding("push", True, f"access level {level}: may push and open MRs"))
    else:
        found.append(
            Finding(
                "role",
                False,
                f"the token's account has access level {level} in {project}; it needs at "
                "least Developer (30) to push branches and open merge requests",
            )
        )
    return found
