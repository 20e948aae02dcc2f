"""Commands that act on this host's data directory: serve, migrate, users, tokens,
repositories, audit."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.common import friendly, local_actor, open_db, settings
from appliance.cli.forge import forge_settings_from_options, repo_check
from appliance.store import audit as audit_store
from appliance.store import migrate as migrate_store
from appliance.store import repositories as repo_store
from appliance.store import users as user_store
from appliance.store.db import Database
from appliance.store.models import ForgeKind, RepositoryCreate, Role

log = logging.getLogger("appliance.cli")

user_app = typer.Typer(help="Manage local users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
repo_app = typer.Typer(help="Register and list repositories.", no_args_is_help=True)
audit_app = typer.Typer(help="Check and export the tamper-evident audit log.", no_args_is_help=True)
repo_app.command("check")(repo_check)  # forge access check (appliance/cli/forge.py)


@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Start the web UI, the JSON API and the task runner (migrates the database first)."""
    import uvicorn

    from appliance.api import create_app
    from appliance.logs import configure_logging

    cfg = settings()
    configure_logging(cfg.logging.level)
    cfg.check_secure()
    if cfg.dev_mode:
        log.warning("development mode: insecure defaults are allowed; never expose this server")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.database_url, busy_timeout_ms=cfg.database.busy_timeout_ms)
    try:
        migrate_store.upgrade(db.engine)
        if cfg.dev_mode:
            _bootstrap_admin(db, cfg.data_dir)
    finally:
        db.dispose()
    uvicorn.run(
        create_app(cfg),
        host=host or cfg.server.host,
        port=port or cfg.server.port,
        log_config=None,
        access_log=False,
    )


def _bootstrap_admin(db: Database, data_dir: Path) -> None:
    """In dev mode, a database without users gets an admin and a token file."""
    with db.write() as session:
        if user_store.count_users(session):
            return
        user_store.create_user(
            session, username="admin", role=Role.admin, password=None, actor="system:bootstrap"
        )
        clear, _ = user_store.create_token(
            session,
            username="admin",
            name="bootstrap",
            role=Role.admin,
            expires_in=None,
            actor="system:bootstrap",
        )
    path = data_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(clear + "\n")
    log.warning("created user 'admin'; its API token is in %s (mode 600)", path.resolve())


@friendly
def migrate() -> None:
    """Create or upgrade the database schema to this release's version."""
    cfg = settings()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.database_url, busy_timeout_ms=cfg.database.busy_timeout_ms)
    try:
        before, after = migrate_store.upgrade(db.engine)
    finally:
        db.dispose()
    if before == after:
        typer.echo(f"database already at {after}")
    else:
        typer.echo(f"database migrated: {before or 'empty'} -> {after}")


@user_app.command("create")
@friendly
def user_create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")] = Role.developer,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="API tokens only; no web login.")
    ] = False,
) -> None:
    """Create a local user (asks for a password unless told otherwise)."""
    password: str | None
    if no_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = open_db(settings())
    try:
        with db.write() as session:
            user_store.create_user(
                session, username=username, role=role, password=password, actor=local_actor()
            )
    finally:
        db.dispose()
    typer.echo(f"created user {username} ({role.value})")


@token_app.command("create")
@friendly
def token_create(
    username: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "cli",
    role: Annotated[
        Role | None, typer.Option(help="Narrower role than the user's (default: the user's).")
    ] = None,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until it expires (default: never).")
    ] = None,
) -> None:
    """Create an API token and print it once; only its hash is stored."""
    db = open_db(settings())
    try:
        with db.write() as session:
            clear, _ = user_store.create_token(
                session,
                username=username,
                name=name,
                role=role,
                expires_in=timedelta(days=expires_days) if expires_days else None,
                actor=local_actor(),
            )
    finally:
        db.dispose()
    typer.echo(clear)


@repo_app.command("add")
@friendly
def repo_add(
    name: Annotated[str, typer.Argument(help="Short name, e.g. team/service.")],
    clone_url: Annotated[str, typer.Argument(help="Where to clone it from.")],
    forge: Annotated[ForgeKind, typer.Option(help="Forge kind.")] = ForgeKind.git,
    default_branch: Annotated[str, typer.Option(help="Branch PRs target.")] = "main",
    # --- forge settings (appliance/cli/forge.py) ---
    url: Annotated[
        str | None, typer.Option("--url", help="Forge API base URL (GitHub Enterprise, GitLab).")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the token.")
    ] = None,
    ca_bundle: Annotated[
        Path | None, typer.Option(help="PEM file of the CA that signed the forge's certificate.")
    ] = None,
    verify_tls: Annotated[
        bool, typer.Option("--verify-tls/--no-verify-tls", help="Check the forge's certificate.")
    ] = True,
    proxy: Annotated[str | None, typer.Option(help="HTTP(S) proxy for the forge.")] = None,
    project: Annotated[
        str | None, typer.Option(help="owner/name or group/project (default: from the URL).")
    ] = None,
    webhook_secret_env: Annotated[
        str | None,
        typer.Option(help="Variable holding the webhook secret (default: one is generated)."),
    ] = None,
) -> None:
    """Register a repository; with --forge github|gitlab, how to reach its forge."""
    if not verify_tls:
        log.warning("TLS verification of the forge is switched OFF for %s", name)
    repo_settings, generated = forge_settings_from_options(
        forge, base_url=url, token_env=token_env, ca_bundle=ca_bundle, verify_tls=verify_tls,
        proxy=proxy, project=project, webhook_secret_env=webhook_secret_env,
    )  # fmt: skip
    repo_in = RepositoryCreate(
        name=name,
        clone_url=clone_url,
        forge_kind=forge,
        default_branch=default_branch,
        settings=repo_settings,
    )
    db = open_db(settings())
    try:
        with db.write() as session:
            repo = repo_store.create_repository(session, repo_in=repo_in, actor=local_actor())
    finally:
        db.dispose()
    typer.echo(f"registered repository {repo.name} (id {repo.id})")
    if generated:
        typer.echo(
            f"webhook: POST /api/v1/webhooks/{forge.value} with this secret (shown once): "
            f"{generated}"
        )


@repo_app.command("list")
@friendly
def repo_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered repositories."""
    db = open_db(settings())
    try:
        with db.session() as session:
            repos = repo_store.list_repositories(session)
    finally:
        db.dispose()
    if as_json:
        from appliance.forges.connect import public_settings, secret_key

        key = secret_key(settings())
        shown = [
            {**r.model_dump(mode="json"), "settings": public_settings(r.settings or {}, key)}
            for r in repos
        ]
        typer.echo(json.dumps(shown, indent=2))
        return
    if not repos:
        typer.echo("no repositories; add one with `appliance repo add NAME URL`")
    from appliance.cli.index import index_status_text
    from appliance.index.service import IndexService

    service = IndexService(settings())
    try:
        for r in repos:
            typer.echo(
                f"{r.id:>4}  {r.name:<30} {r.forge_kind.value:<7} {r.default_branch:<12} "
                f"{r.clone_url}  [{index_status_text(service.status(r.name))}]"
            )
    finally:
        service.close()


@repo_app.command("demo")
@friendly
def repo_demo() -> None:
    """Register the bundled demo repository (a tiny package with a failing test) so a task
    can be tried at once; does nothing when it is registered already."""
    from appliance.demo import DEMO_REQUEST, register_demo

    cfg = settings()
    db = open_db(cfg)
    try:
        repo, created = register_demo(cfg, db, actor=local_actor())
    finally:
        db.dispose()
    if created:
        typer.echo(f"registered the demo repository {repo.name} (id {repo.id})")
    else:
        typer.echo(f"the demo repository {repo.name} is registered (id {repo.id})")
    typer.echo(f'try: appliance task submit --repo {repo.name} --follow "{DEMO_REQUEST}"')


@audit_app.command("verify")
@friendly
def audit_verify() -> None:
    """Walk the hash chain and compare its end with the head anchor (the `audit-head` file
    in the data dir); name the first edited or missing record (exit 1 if any)."""
    db = open_db(settings())
    try:
        with db.session() as session:
            result = audit_store.verify(session, anchor=db.audit_anchor)
    finally:
        db.dispose()
    if result.ok:
        typer.echo(f"audit chain intact: {result.checked} records, head {result.head_hash}")
        if result.anchor_seq is None and result.checked and db.audit_anchor is not None:
            typer.echo(
                f"warning: no head anchor at {db.audit_anchor}, so records removed from the end "
                "cannot be detected; the next change writes it",
                err=True,
            )
        return
    message = f"audit chain BROKEN: {result.reason}"
    if result.broken_seq is not None:
        message = (
            f"audit chain BROKEN at record {result.broken_seq}: {result.reason} "
            f"({result.checked} records before it are intact)"
        )
    typer.secho(
        message,
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(1)


@audit_app.command("export")
@friendly
def audit_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write every audit record as JSON lines, hashes included."""
    db = open_db(settings())
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        with db.session() as session:
            for rec in audit_store.iter_all(session):
                out.write(json.dumps(audit_store.to_json(rec), ensure_ascii=False) + "\n")
                count += 1
    finally:
        db.dispose()
        if output:
            out.close()
    if output:
        typer.echo(f"wrote {count} records to {output}", err=True)
