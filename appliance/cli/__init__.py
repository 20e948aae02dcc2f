"""The ``appliance`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from appliance import doctor as doctor_checks
from appliance.cli.admin import audit_app, migrate, repo_app, serve, token_app, user_app
from appliance.cli.backup import backup, restore
from appliance.cli.common import friendly, settings
from appliance.cli.index import repo_index, search_command
from appliance.cli.jobs import deps_app, jobs_app
from appliance.cli.models import models_app
from appliance.cli.sandbox import sandbox_app
from appliance.cli.tasks import task_app

app = typer.Typer(
    name="appliance",
    help="The coding agent appliance: serve it, administer it, and run tasks on it.\n\n"
    "Settings come from APPLIANCE_* variables and the TOML file named by APPLIANCE_CONFIG.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(serve)
app.command()(migrate)
app.command()(backup)
app.command()(restore)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
repo_app.command("index")(repo_index)
app.command("search")(search_command)
app.add_typer(repo_app, name="repo")
app.add_typer(task_app, name="task")
app.add_typer(audit_app, name="audit")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(models_app, name="models")
app.add_typer(jobs_app, name="jobs")
app.add_typer(deps_app, name="deps")

_MARK = {
    "ok": ("ok", typer.colors.GREEN),
    "warn": ("warn", typer.colors.YELLOW),
    "fail": ("FAIL", typer.colors.RED),
}


@app.command()
@friendly
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Check this host: data dir, database, podman, sandbox image, models, GPUs.
    Exits 1 if any check fails."""
    checks = doctor_checks.run_checks(settings())
    if as_json:
        typer.echo(doctor_checks.as_json(checks))
    else:
        for c in checks:
            label, colour = _MARK[c.status]
            typer.secho(f"[{label:>4}] ", fg=colour, nl=False)
            typer.echo(f"{c.name}: {c.message}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def main() -> None:
    app()
