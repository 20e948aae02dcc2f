"""``appliance repo index`` and ``appliance search``: build a repository's index, query it."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from appliance.cli.common import friendly, open_db, settings
from appliance.errors import NotFound
from appliance.forges.connect import fetch_access
from appliance.index.indexer import IndexStatus
from appliance.index.search import search
from appliance.index.service import IndexService
from appliance.store import repositories as repo_store
from appliance.store.models import Repository

_BAR = 24


class StageProgress:
    """One line per stage on stderr, redrawn in place on a terminal: ``parse 812/1631``."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.began = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.finish()
            self.stage, self.began = stage, time.monotonic()
        now = time.monotonic()
        if not self.tty and done < total and now - self._last < 2.0:
            return  # in logs, a line every 2 s is plenty
        self._last = now
        filled = _BAR * done // total if total else _BAR
        line = f"{stage:<11} [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total}"
        typer.echo(("\r" if self.tty else "") + line, nl=not self.tty, err=True)

    def finish(self) -> None:
        if self.stage is not None:
            took = time.monotonic() - self.began
            typer.echo(
                (" " if self.tty else f"{self.stage:<11} ") + f"done in {took:.1f}s", err=True
            )
        self.stage = None


def _repository(name: str) -> Repository:
    db = open_db(settings())
    try:
        with db.session() as session:
            for repo in repo_store.list_repositories(session):
                if repo.name == name:
                    return repo
    finally:
        db.dispose()
    raise NotFound(f"no repository named {name!r}; see `appliance repo list`")


def index_status_text(status: IndexStatus | None) -> str:
    if status is None or status.commit is None:
        return "not indexed"
    text = f"indexed {status.commit[:12]}, {status.files} files"
    if status.chunks_total:
        text += f", embeddings {status.chunks_embedded}/{status.chunks_total}"
    return text


@friendly
def repo_index(
    name: Annotated[str, typer.Argument(help="Repository name (see `appliance repo list`).")],
    full: Annotated[bool, typer.Option("--full", help="Re-index every file.")] = False,
    embed: Annotated[
        bool, typer.Option("--embed/--no-embed", help="Compute the embeddings now.")
    ] = True,
) -> None:
    """Fetch a repository and bring its index to the tip of its default branch."""
    repo = _repository(name)
    access = fetch_access(settings(), repo)  # token, CA bundle, proxy: private remotes
    service = IndexService(settings())
    progress = StageProgress()
    try:
        report = service.refresh(
            repo.name,
            repo.clone_url,
            repo.default_branch,
            access=access,
            full=full,
            progress=progress,
            with_vectors=embed,
        )
        progress.finish()
        typer.echo(report.summary())
        if embed and service.embedder() is not None:
            count = service.embed(repo.name, progress=progress)
            progress.finish()
            typer.echo(f"embedded {count} chunk(s)")
        typer.echo(index_status_text(service.status(repo.name)))
    finally:
        service.close()


@friendly
def search_command(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    query: Annotated[str, typer.Argument(help="What to look for; a stack trace works too.")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Search a repository's index: files and line spans, with why each ranked."""
    repo = _repository(name)
    service = IndexService(settings())
    try:
        status = service.status(repo.name)
        if status is None or status.commit is None:
            raise NotFound(f"{repo.name} has no index yet: run `appliance repo index {name}`")
        # vectors only once some exist: loading the embedder for nothing costs seconds
        index = service.open(repo.name, with_vectors=status.chunks_embedded > 0)
        hits = search(index, query, k)
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps([h.__dict__ for h in hits], indent=2))
        return
    if not hits:
        typer.echo("no match; try identifiers, file names or other words")
    for h in hits:
        where = f"{h.path}:{h.line_start}-{h.line_end}" if h.line_start else h.path
        typer.echo(f"{h.score:8.4f}  {where}  ({', '.join(h.reasons[:4])})")
