"""Task commands: they talk to a running appliance over its JSON API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from appliance.cli.common import fail, friendly, read_text_arg
from appliance.client import ApiClient
from appliance.states import TERMINAL, Priority, TaskStatus

task_app = typer.Typer(
    help="Submit and follow tasks on a running appliance (needs --token or APPLIANCE_TOKEN).",
    no_args_is_help=True,
)

ServerOpt = Annotated[
    str,
    typer.Option(
        "--server", envvar="APPLIANCE_SERVER_URL", help="Base URL of the running appliance."
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="APPLIANCE_TOKEN", help="API token.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DEFAULT_SERVER = "http://127.0.0.1:8000"

_COLOURS = {
    "done": typer.colors.GREEN,
    "failed": typer.colors.RED,
    "cancelled": typer.colors.YELLOW,
    "rejected": typer.colors.YELLOW,
}


def _client(server: str, token: str | None) -> ApiClient:
    if not token:
        raise fail("no API token: pass --token or set APPLIANCE_TOKEN", 2)
    return ApiClient(server, token)


def _resolve_repo(api: ApiClient, repo: str) -> int:
    if repo.isdigit():
        return int(repo)
    for r in api.request("GET", "/repositories"):
        if r["name"] == repo:
            return int(r["id"])
    raise fail(f"no repository named {repo!r}; see `appliance repo list`")


def _show_event(event: dict[str, Any]) -> None:
    payload = event.get("payload", {})
    kind = event.get("kind", "?")
    if kind == "status":
        status = payload.get("status", "?")
        extra = f" ({payload['message']})" if payload.get("message") else ""
        line = f"[{event['seq']:>4}] status -> {status}{extra}"
        typer.secho(line, fg=_COLOURS.get(status), bold=True)
    else:
        typer.echo(f"[{event['seq']:>4}] {kind}: {json.dumps(payload, ensure_ascii=False)}")


def _follow(api: ApiClient, task_id: str) -> str:
    """Stream events until the task ends; return its final status."""
    status = ""
    for ev in api.events(task_id):
        _show_event(ev.data)
        if ev.event == "status":
            status = str(ev.data.get("payload", {}).get("status", ""))
    return status


@task_app.command("submit")
@friendly
def submit(
    repo: Annotated[str, typer.Option("--repo", "-r", help="Repository name or id.")],
    prompt: Annotated[str, typer.Argument(help="What to change; '-' reads standard input.")],
    avoid: Annotated[
        list[str] | None, typer.Option("--avoid", help="Path or glob not to touch (repeatable).")
    ] = None,
    max_files: Annotated[
        int | None, typer.Option("--max-files", min=1, help="At most this many files changed.")
    ] = None,
    priority: Annotated[Priority, typer.Option(help="Queue priority.")] = Priority.normal,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream its events.")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Submit a change request; prints the new task's id."""
    with _client(server, token) as api:
        body = {
            "repository_id": _resolve_repo(api, repo),
            "prompt": read_text_arg(prompt),
            "constraints": {"avoid_files": avoid or [], "max_files_changed": max_files},
            "priority": priority.value,
        }
        created = api.request("POST", "/tasks", json=body)
        typer.echo(created["task_id"])
        if follow:
            final = _follow(api, created["task_id"])
            if final != TaskStatus.done:
                raise typer.Exit(1)


@task_app.command("list")
@friendly
def list_tasks(
    status: Annotated[
        list[TaskStatus] | None, typer.Option("--status", "-s", help="Filter (repeatable).")
    ] = None,
    repo: Annotated[str | None, typer.Option("--repo", "-r", help="Repository name or id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """List tasks, newest first."""
    with _client(server, token) as api:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = [s.value for s in status]
        if repo:
            params["repository_id"] = _resolve_repo(api, repo)
        page = api.request("GET", "/tasks", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    if not page["items"]:
        typer.echo("no tasks")
    for t in page["items"]:
        prompt = t["prompt"].splitlines()[0][:60] if t["prompt"] else ""
        typer.echo(
            f"{t['id']}  {t['status']:<17} {t['priority']:<10} {t['created_by']:<12} {prompt}"
        )
    if page["total"] > len(page["items"]):
        typer.echo(f"({len(page['items'])} of {page['total']} shown)")


@task_app.command("show")
@friendly
def show(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Show one task: status, step, progress, outcome."""
    with _client(server, token) as api:
        task = api.request("GET", f"/tasks/{task_id}")
    if as_json:
        typer.echo(json.dumps(task, indent=2))
        return
    for key in (
        "id",
        "status",
        "step",
        "progress",
        "priority",
        "created_by",
        "created_at",
        "branch",
        "pr_url",
        "summary",
        "failure_category",
        "failure_message",
    ):
        if task.get(key) is not None:
            typer.echo(f"{key:>16}: {task[key]}")
    typer.echo(f"{'prompt':>16}: {task['prompt']}")


@task_app.command("cancel")
@friendly
def cancel(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Cancel a queued, running or waiting task."""
    with _client(server, token) as api:
        task = api.request("POST", f"/tasks/{task_id}/cancel")
    typer.echo(f"task {task_id} is {task['status']}")


@task_app.command("follow")
@friendly
def follow(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Stream a task's events (past ones first) until it finishes; exit 1 unless done."""
    with _client(server, token) as api:
        final = _follow(api, task_id)
    if final not in {s.value for s in TERMINAL}:
        raise fail("the stream ended before the task finished")
    if final != TaskStatus.done:
        raise typer.Exit(1)
