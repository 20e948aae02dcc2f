"""``appliance backup`` and ``appliance restore``: what the Ansible playbooks call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance import backup as backup_ops
from appliance.cli.common import fail, friendly, settings


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@friendly
def backup(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="Directory the archive is written to (default: <data_dir>/backups).",
        ),
    ] = None,
) -> None:
    """Write one archive with the database (SQLite online backup, safe while serving),
    the embeddings index, the config file and a manifest of checksums.

    Progress goes to stderr; the archive's path alone goes to stdout."""
    cfg = settings()
    dest = to if to is not None else cfg.data_dir / "backups"
    archive = backup_ops.backup(cfg, dest, progress=_progress)
    typer.echo(str(archive))


@friendly
def restore(
    archive: Annotated[
        Path, typer.Argument(help="A .tar.gz written by `appliance backup` (or its unpacked dir).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database, the index and the config file with a backup's.

    Stop the appliance first. Checksums, the schema version and the backup's audit
    chain are checked before anything changes; the replaced files are kept under
    <data_dir>/pre-restore-<time>/, and put back if anything fails."""
    cfg = settings()
    if not yes and not typer.confirm(
        f"Replace the database and index in {cfg.data_dir} with {archive}?", default=False
    ):
        raise fail("nothing restored", 1)
    report = backup_ops.restore(cfg, archive, progress=_progress)
    typer.echo(
        f"restored {report.archive} (made {report.created_at} by appliance "
        f"{report.appliance_version}, schema {report.revision}): {report.files} files, "
        f"audit chain intact ({report.audit_records} records, head {report.audit_head[:12]})"
    )
    if report.config_restored:
        typer.echo(f"config restored to {report.config_restored}")
    typer.echo(f"the replaced files are in {report.previous}; delete it once satisfied")
