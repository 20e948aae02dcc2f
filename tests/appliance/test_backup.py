"""Backup and restore on a real migrated database with tasks, events and audit records."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from appliance import backup as backup_ops
from appliance.config import Settings
from appliance.errors import AuditChainBroken
from appliance.store import audit
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import Repository, TaskCreate
from tests.servers import REPO_ROOT


def _populate(db: Database, prompts: list[str]) -> list[str]:
    """A repository and one task per prompt (each with an event and audit records)."""
    with db.write() as s:
        repo = Repository(name=f"demo-{prompts[0]}", clone_url="/srv/git/demo.git")
        s.add(repo)
        s.flush()
        assert repo.id is not None
        ids = []
        for prompt in prompts:
            task = task_store.create_task(
                s,
                task_in=TaskCreate(repository_id=repo.id, prompt=prompt),
                created_by="dana",
                max_prompt_chars=1000,
            )
            task_store.add_event(s, task_id=task.id, kind="log", payload={"line": prompt})
            ids.append(task.id)
    return ids


def _index(settings: Settings, text: str) -> None:
    path = settings.data_dir / "index" / "demo" / "chroma" / "segment.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _snapshot(settings: Settings) -> tuple[list[str], list[tuple[str, int, str]], int]:
    """Task prompts, events and the verified audit length, as read from the data dir."""
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            tasks, _total = task_store.list_tasks(s)
            prompts = sorted(t.prompt for t in tasks)
            events = sorted(
                (e.task_id, e.seq, e.kind)
                for t in tasks
                for e in task_store.events_after(s, t.id, 0)
            )
            result = audit.verify(s)
    finally:
        db.dispose()
    assert result.ok, result.reason
    return prompts, events, result.checked


def _rewrite(archive: Path, edit: str, content: bytes, *, fix_manifest: bool = False) -> Path:
    """Unpack, change one member, pack again (optionally with a matching manifest)."""
    work = archive.parent / "rewrite"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    (top,) = list(work.iterdir())
    (top / edit).write_bytes(content)
    if fix_manifest:
        manifest = json.loads((top / "manifest.json").read_text())
        manifest["files"][edit] = backup_ops.sha256_file(top / edit)
        (top / "manifest.json").write_text(json.dumps(manifest))
    out = archive.parent / "altered.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return out


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_backup_wipe_restore_round_trip_through_the_cli(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["add a flag", "fix the crash"])
    _index(settings, "vectors v1")
    config = tmp_path / "config.toml"
    config.write_text("[runner]\nconcurrency = 3\n")
    env = {"APPLIANCE_CONFIG": str(config)}
    before = _snapshot(settings)

    made = _cli("backup", "--to", str(tmp_path / "backups"), env=env)
    assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.strip())
    assert archive.is_file()
    assert archive.name.startswith("appliance-backup-")
    assert "database: online copy" in made.stderr

    db.dispose()
    shutil.rmtree(settings.data_dir)
    config.write_text("[runner]\nconcurrency = 9\n")

    done = _cli("restore", str(archive), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert "audit chain intact (" in done.stdout
    assert _snapshot(settings) == before
    assert before[2] == 2  # one audit record per task came back, chain verified
    segment = settings.data_dir / "index" / "demo" / "chroma" / "segment.bin"
    assert segment.read_text() == "vectors v1"
    assert "concurrency = 3" in config.read_text()

    refused = _cli("restore", str(archive), env=env)  # no --yes, no terminal: asks, refuses
    assert refused.returncode != 0
    assert _snapshot(settings) == before


def test_restore_replaces_newer_data_and_keeps_it_aside(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["first"])
    _index(settings, "old index")
    archive = backup_ops.backup(settings, tmp_path / "backups")
    _populate(db, ["made after the backup"])
    _index(settings, "new index")
    db.dispose()

    report = backup_ops.restore(settings, archive)

    prompts, _events, checked = _snapshot(settings)
    assert prompts == ["first"]
    assert checked == report.audit_records
    assert (settings.data_dir / "index/demo/chroma/segment.bin").read_text() == "old index"
    assert (report.previous / "index/demo/chroma/segment.bin").read_text() == "new index"
    assert (report.previous / "appliance.db").is_file()
    assert not list(settings.data_dir.glob(".restore-*"))  # staging cleaned up


def test_tampered_archive_is_refused_and_nothing_changes(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["original"])
    _index(settings, "good vectors")
    archive = backup_ops.backup(settings, tmp_path / "backups")
    altered = _rewrite(archive, "index/demo/chroma/segment.bin", b"evil vectors")
    _populate(db, ["current work"])
    db.dispose()
    before = _snapshot(settings)

    with pytest.raises(backup_ops.BackupError, match=r"checksum mismatch for index/demo"):
        backup_ops.restore(settings, altered)

    assert _snapshot(settings) == before
    assert not list(settings.data_dir.glob("pre-restore-*"))
    assert not list(settings.data_dir.glob(".restore-*"))


def test_backup_with_a_broken_audit_chain_is_refused(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["kept"])
    db.dispose()
    db_file = settings.data_dir / "appliance.db"
    archive = backup_ops.backup(settings, tmp_path / "backups")
    # Someone edits the audit log in a copy, then re-signs the manifest: the checksums
    # pass, the chain does not.
    edited = tmp_path / "edited.db"
    shutil.copy(db_file, edited)
    raw = sqlite3.connect(edited)
    raw.execute("DROP TRIGGER audit_record_no_update")
    raw.execute("UPDATE audit_record SET actor='mallory' WHERE seq=1")
    raw.commit()
    raw.close()
    altered = _rewrite(archive, "appliance.db", edited.read_bytes(), fix_manifest=True)
    before = _snapshot(settings)

    with pytest.raises(AuditChainBroken, match="BROKEN at record 1"):
        backup_ops.restore(settings, altered)

    assert _snapshot(settings) == before
    assert not list(settings.data_dir.glob("pre-restore-*"))


def test_backup_from_a_newer_schema_is_refused(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["kept"])
    db.dispose()
    archive = backup_ops.backup(settings, tmp_path / "backups")
    newer = tmp_path / "newer.db"
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/appliance.db"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        newer.write_bytes(extracted.read())
    raw = sqlite3.connect(newer)
    raw.execute("UPDATE alembic_version SET version_num='9999_from_the_future'")
    raw.commit()
    raw.close()
    altered = _rewrite(archive, "appliance.db", newer.read_bytes(), fix_manifest=True)
    before = _snapshot(settings)

    with pytest.raises(backup_ops.BackupError, match=r"9999_from_the_future.*newer release"):
        backup_ops.restore(settings, altered)

    assert _snapshot(settings) == before


def test_failure_while_swapping_puts_the_previous_files_back(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(db, ["in the backup"])
    config = tmp_path / "config.toml"
    config.write_text("[runner]\nconcurrency = 3\n")
    monkeypatch.setenv("APPLIANCE_CONFIG", str(config))
    archive = backup_ops.backup(settings, tmp_path / "backups")
    _populate(db, ["current"])
    _index(settings, "current index")
    db.dispose()
    before = _snapshot(settings)
    # The config file now lives where no file can be written (its "directory" is a file):
    # the swap fails after the database and index were already moved.
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("APPLIANCE_CONFIG", str(tmp_path / "not-a-dir" / "config.toml"))

    with pytest.raises(NotADirectoryError):
        backup_ops.restore(settings, archive)

    assert _snapshot(settings) == before
    assert (settings.data_dir / "index/demo/chroma/segment.bin").read_text() == "current index"
    assert not list(settings.data_dir.glob("pre-restore-*"))


def test_backup_without_a_database_says_what_to_do(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(backup_ops.BackupError, match="appliance migrate"):
        backup_ops.backup(settings, tmp_path / "backups")


def test_backup_is_consistent_while_a_writer_holds_a_transaction(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _populate(db, ["committed"])
    before = _snapshot(settings)
    with db.write() as s:
        audit.append(s, actor="t", action="not.yet.committed", subject="x")
        archive = backup_ops.backup(settings, tmp_path / "backups")
    db.dispose()
    shutil.rmtree(settings.data_dir)

    backup_ops.restore(settings, archive)

    assert _snapshot(settings) == before
