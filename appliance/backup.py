"""Backup and restore of one appliance: the database, the embeddings index, the config.

A backup is one ``appliance-backup-<UTC time>.tar.gz`` holding, under a top-level
directory of the same name:

- ``appliance.db``: the SQLite database, copied with SQLite's online backup API, so
  it is consistent even while the appliance is writing;
- ``index/``: the Chroma and BM25 indexes under ``<data_dir>/index``, copied file by
  file. Nothing locks them across processes, so a copy taken while the indexer writes
  may hold a half-written segment; that is accepted because every index can be
  rebuilt from the repositories (``appliance`` re-indexes a repository whose index is
  unreadable);
- ``config.toml``: the file named by ``APPLIANCE_CONFIG``, when set;
- ``manifest.json``: format, appliance version, Alembic revision, creation time and
  the sha256 of every other file.

:func:`restore` checks the manifest and every checksum, refuses a schema newer than
this code knows, verifies the audit chain of the restored database *before* touching
the data dir, then swaps the files in, keeping what it replaced under
``<data_dir>/pre-restore-<time>/``. Any failure while swapping puts the previous files
back. Stop the appliance before restoring: a running server keeps writing to the
database file it has open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import make_url

from appliance.config import CONFIG_ENV, Settings
from appliance.errors import ApplianceError, AuditChainBroken
from appliance.store import audit
from appliance.store import migrate as migrate_store
from appliance.store.db import Database
from appliance.util.tarsafe import extract_all

FORMAT = 1
MANIFEST = "manifest.json"
DB_FILE = "appliance.db"
INDEX_DIR = "index"
CONFIG_FILE = "config.toml"
PREFIX = "appliance-backup-"
_DIST = "coding-agent-appliance"
_CHUNK = 1 << 20

Progress = Callable[[str], None]


class BackupError(ApplianceError):
    """A backup cannot be made or an archive cannot be restored; the message says why."""

    code = "backup_error"


@dataclass(frozen=True)
class RestoreReport:
    archive: Path
    revision: str
    created_at: str
    appliance_version: str
    files: int
    audit_records: int
    audit_head: str
    previous: Path
    config_restored: Path | None


def _quiet(_line: str) -> None:
    return None


def appliance_version() -> str:
    try:
        return metadata.version(_DIST)
    except metadata.PackageNotFoundError:
        return "unknown"


def database_path(settings: Settings) -> Path:
    """The SQLite file behind the settings' database URL."""
    url = make_url(settings.database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        raise BackupError(
            f"backup and restore handle a SQLite file database; {settings.database_url!r} "
            "is not one: back that database up with its own tools"
        )
    return Path(url.database)


def known_revisions() -> set[str]:
    scripts = ScriptDirectory(str(Path(migrate_store.__file__).parent / "migrations"))
    return {script.revision for script in scripts.walk_revisions()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- backup -------------------------------------------------------------------


def backup(settings: Settings, dest_dir: Path, *, progress: Progress = _quiet) -> Path:
    """Write one ``.tar.gz`` backup into ``dest_dir``; return its path."""
    db_path = database_path(settings)
    if not db_path.is_file():
        raise BackupError(
            f"no database at {db_path}: nothing to back up (run `appliance migrate` to "
            "create one, or check APPLIANCE_DATA_DIR)"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = _free_name(dest_dir)
    staging = dest_dir / f".{name}.partial"
    root = staging / name
    root.mkdir(parents=True)
    try:
        progress(f"database: online copy of {db_path}")
        _copy_database(db_path, root / DB_FILE)
        revision = _revision_of(root / DB_FILE)
        index = settings.data_dir / INDEX_DIR
        if index.is_dir():
            progress(f"index: copying {index}")
            copied = _copy_tree(index, root / INDEX_DIR)
            progress(f"index: {copied} files")
        else:
            progress(f"index: {index} does not exist; none saved")
        config = os.environ.get(CONFIG_ENV)
        if config:
            progress(f"config: {config}")
            shutil.copy2(config, root / CONFIG_FILE)
        manifest = {
            "format": FORMAT,
            "appliance_version": appliance_version(),
            "alembic_revision": revision,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config_path": config or None,
            "files": {rel: sha256_file(root / rel) for rel in _files_under(root)},
        }
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        archive = dest_dir / f"{name}.tar.gz"
        partial = staging / f"{name}.tar.gz"
        progress(f"archive: writing {archive}")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(root, arcname=name)
        partial.chmod(0o600)
        os.replace(partial, archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return archive


def _free_name(dest_dir: Path) -> str:
    base = PREFIX + _stamp()
    name, n = base, 1
    while (dest_dir / f"{name}.tar.gz").exists():
        name, n = f"{base}-{n}", n + 1
    return name


def _copy_database(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy {source}: {exc}") from exc
    finally:
        src.close()


def _revision_of(db_file: Path) -> str:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(
            f"{db_file} has no schema revision ({exc}): is it an appliance database?"
        ) from exc
    finally:
        conn.close()
    if row is None:
        raise BackupError(f"{db_file} has an empty alembic_version table: run `appliance migrate`")
    return str(row[0])


def _copy_tree(source: Path, target: Path) -> int:
    """Copy regular files, skipping ones that vanish mid-copy (a live index)."""
    count = 0
    for dirpath, _dirs, files in os.walk(source):
        here = Path(dirpath)
        out = target / here.relative_to(source)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                shutil.copy2(here / name, out / name)
            except FileNotFoundError:
                continue
            count += 1
    return count


def _files_under(root: Path) -> list[str]:
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.name != MANIFEST
    )


# --- restore ------------------------------------------------------------------


def restore(settings: Settings, archive: Path, *, progress: Progress = _quiet) -> RestoreReport:
    """Replace the database, index (and config) with the archive's, or change nothing."""
    if not archive.exists():
        raise BackupError(f"no backup at {archive}: give the path of a .tar.gz or its directory")
    db_path = database_path(settings)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = _stamp()
    with _staged(archive, data_dir / f".restore-{stamp}") as root:
        progress(f"checking {archive}")
        manifest = _check_manifest(root)
        revision = _revision_of(root / DB_FILE)  # the file's own, not the manifest's word
        _check_revision(revision, str(manifest.get("appliance_version", "?")))
        progress(f"verifying the audit chain of the backup (schema {revision})")
        result = _verify_audit(root / DB_FILE)
        progress(f"audit chain intact: {result.checked} records")
        previous = data_dir / f"pre-restore-{stamp}"
        config_target = _config_target(root)
        progress(f"swapping in; the replaced files go to {previous}")
        _swap(root, db_path, data_dir, previous, config_target)
    return RestoreReport(
        archive=archive,
        revision=revision,
        created_at=str(manifest.get("created_at", "")),
        appliance_version=str(manifest.get("appliance_version", "")),
        files=len(manifest["files"]),
        audit_records=result.checked,
        audit_head=result.head_hash,
        previous=previous,
        config_restored=config_target,
    )


@contextmanager
def _staged(archive: Path, staging: Path) -> Iterator[Path]:
    """The backup's top directory, unpacked in the data dir (same filesystem)."""
    staging.mkdir(parents=True)
    try:
        if archive.is_dir():
            root = archive if (archive / MANIFEST).is_file() else _only_child(archive)
            target = staging / root.name
            shutil.copytree(root, target, symlinks=True)
        else:
            try:
                with tarfile.open(archive, "r:*") as tar:
                    extract_all(tar, staging)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(
                    f"{archive} is not a readable backup archive ({exc}): it may be truncated; "
                    "copy it again from where backups are kept"
                ) from exc
            target = staging if (staging / MANIFEST).is_file() else _only_child(staging)
        yield target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _only_child(directory: Path) -> Path:
    children = [p for p in directory.iterdir() if p.is_dir()]
    if len(children) != 1 or not (children[0] / MANIFEST).is_file():
        raise BackupError(
            f"no {MANIFEST} in {directory}: this is not an `appliance backup` archive"
        )
    return children[0]


def _check_manifest(root: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"the backup's {MANIFEST} is unreadable ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"backup format {manifest.get('format')!r} is not one this version reads "
            f"({FORMAT}); restore it with the appliance version that made it"
        )
    files: dict[str, str] = manifest.get("files") or {}
    if DB_FILE not in files:
        raise BackupError(f"the backup lists no {DB_FILE}: it is incomplete")
    present = set(_files_under(root))
    extra = present - set(files)
    if extra:
        raise BackupError(
            f"the backup holds files its manifest does not list ({', '.join(sorted(extra)[:5])}):"
            " it was altered after it was made; use another backup"
        )
    for rel, want in files.items():
        path = root / rel
        if rel not in present:
            raise BackupError(f"the backup lacks {rel}, which its manifest lists: it is incomplete")
        if sha256_file(path) != want:
            raise BackupError(
                f"checksum mismatch for {rel}: the backup was altered or damaged after it was "
                "made; nothing was restored; use another backup"
            )
    return manifest


def _check_revision(revision: str, made_by: str) -> None:
    if revision not in known_revisions():
        raise BackupError(
            f"the backup's database is at schema revision {revision} (made by appliance "
            f"{made_by}), which this version ({appliance_version()}, schema "
            f"{migrate_store.head_revision()}) does not know: it comes from a newer release. "
            "Install that release (or newer) before restoring it."
        )


def _verify_audit(db_file: Path) -> audit.VerifyResult:
    db = Database(f"sqlite:///{db_file.resolve()}")
    try:
        with db.session() as session:
            result = audit.verify(session)
    finally:
        db.dispose()
    if not result.ok:
        raise AuditChainBroken(
            f"the backup's audit chain is BROKEN at record {result.broken_seq}: "
            f"{result.reason}; refusing to restore it (nothing was changed)",
            seq=result.broken_seq or 0,
        )
    return result


def _config_target(root: Path) -> Path | None:
    config = os.environ.get(CONFIG_ENV)
    if config and (root / CONFIG_FILE).is_file():
        return Path(config)
    return None


def _swap(
    root: Path, db_path: Path, data_dir: Path, previous: Path, config_target: Path | None
) -> None:
    """Move the current files to ``previous``, the backup's into place; undo on failure."""
    previous.mkdir()
    moved: list[tuple[Path, Path]] = []  # (original place, where it went)
    placed: list[Path] = []
    config_existed = config_target is not None and config_target.is_file()
    anchor = db_path.parent / audit.ANCHOR_NAME  # the audit head of the log being replaced
    current = [
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
        anchor,
        data_dir / INDEX_DIR,
    ]
    try:
        for path in current:
            if path.exists():
                aside = previous / path.name
                shutil.move(path, aside)
                moved.append((path, aside))
        db_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root / DB_FILE, db_path)
        placed.append(db_path)
        if (root / INDEX_DIR).is_dir():
            shutil.move(root / INDEX_DIR, data_dir / INDEX_DIR)
            placed.append(data_dir / INDEX_DIR)
        if config_target is not None:
            if config_target.is_file():
                shutil.copy2(config_target, previous / CONFIG_FILE)
            tmp = config_target.with_name(f".{config_target.name}.restore")
            shutil.copy2(root / CONFIG_FILE, tmp)
            os.replace(tmp, config_target)
        result = _verify_audit(db_path)  # the file in place, as the appliance will open it
        if result.checked:  # anchor the restored log's head: it is older than the one replaced
            placed.append(anchor)
            head = audit.Anchor(seq=result.checked, hash=result.head_hash)
            audit.write_anchor(anchor, head, replace=True)
    except BaseException:
        for path in placed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for original, aside in reversed(moved):
            shutil.move(aside, original)
        if config_target is not None and config_existed:
            if (previous / CONFIG_FILE).is_file():
                shutil.copy2(previous / CONFIG_FILE, config_target)
        elif config_target is not None:
            with contextlib.suppress(OSError):
                config_target.unlink(missing_ok=True)
        shutil.rmtree(previous, ignore_errors=True)
        raise
