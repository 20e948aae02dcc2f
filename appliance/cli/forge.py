"""Forge options of ``appliance repo add`` and the ``appliance repo check`` command.

Tokens and webhook secrets are read from environment variables named on the command
line (``--token-env VAR``), never from argv, where ``ps`` and shell history would keep
them; they are stored encrypted (:mod:`appliance.forges.connect`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import select

from appliance.cli.common import fail, friendly, open_db, settings
from appliance.errors import InvalidInput, NotFound
from appliance.forges.access import check_repository
from appliance.forges.connect import new_webhook_secret, seal_settings, secret_key
from appliance.store.models import ForgeKind, Repository


def _from_env(var: str, what: str) -> str:
    value = os.environ.get(var, "").strip()
    if not value:
        raise InvalidInput(f"the environment variable {var} (named by {what}) is empty or unset")
    return value


def forge_settings_from_options(
    kind: ForgeKind,
    *,
    base_url: str | None,
    token_env: str | None,
    ca_bundle: Path | None,
    verify_tls: bool,
    proxy: str | None,
    project: str | None,
    webhook_secret_env: str | None,
) -> tuple[dict[str, Any], str | None]:
    """Repository settings (sealed) from ``repo add``'s options, and the webhook secret
    generated for a GitHub/GitLab repository when none was given (to show once)."""
    forge: dict[str, Any] = {}
    if base_url:
        forge["base_url"] = base_url
    if ca_bundle is not None:
        if not ca_bundle.is_file():
            raise InvalidInput(f"--ca-bundle {ca_bundle} is not a readable file")
        forge["ca_bundle"] = str(ca_bundle.resolve())
    if not verify_tls:
        forge["verify_tls"] = False
    if proxy:
        forge["proxy_url"] = proxy
    if project:
        forge["project"] = project
    if token_env:
        forge["token"] = _from_env(token_env, "--token-env")
    clear: dict[str, Any] = {"forge": forge} if forge else {}
    generated = None
    if webhook_secret_env:
        clear["webhook_secret"] = _from_env(webhook_secret_env, "--webhook-secret-env")
    elif kind != ForgeKind.git:
        generated = clear["webhook_secret"] = new_webhook_secret()
    sealed = seal_settings(clear, secret_key(settings()), kind=kind.value)
    return sealed, generated


@friendly
def repo_check(name: Annotated[str, typer.Argument(help="The repository's name.")]) -> None:
    """Check access to the repository's forge: network, certificate, token, scopes, role,
    push permission. Says exactly what is missing; exits 1 on any problem."""
    cfg = settings()
    db = open_db(cfg)
    try:
        with db.session() as session:
            repo = session.exec(select(Repository).where(Repository.name == name)).first()
            if repo is None:
                raise NotFound(f"no repository named {name!r}; see `appliance repo list`")
            session.expunge(repo)
    finally:
        db.dispose()
    findings = check_repository(cfg, repo)
    for f in findings:
        mark = ("ok", typer.colors.GREEN) if f.ok else ("FAIL", typer.colors.RED)
        typer.secho(f"[{mark[0]:>4}] ", fg=mark[1], nl=False)
        typer.echo(f"{f.what}: {f.message}")
    if not all(f.ok for f in findings):
        raise fail(f"{name}: the appliance cannot publish to this repository yet (see above)")
