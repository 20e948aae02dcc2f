from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.store import audit
from appliance.store.db import Database


def _fill(db: Database, n: int) -> None:
    with db.write() as s:
        for i in range(n):
            audit.append(
                s, actor="alice", action="thing.do", subject=f"thing:{i}", details={"i": i}
            )


def _tamper(path: Path, *statements: str) -> None:
    """What someone with the database file could do: drop the guards, then edit."""
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER audit_record_no_update")
    raw.execute("DROP TRIGGER audit_record_no_delete")
    for statement in statements:
        raw.execute(statement)
    raw.commit()
    raw.close()


def test_intact_chain_verifies(db: Database) -> None:
    _fill(db, 5)
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok
    assert result.checked == 5
    assert len(result.head_hash) == 64


def test_changed_row_is_caught(db: Database, settings: Settings) -> None:
    _fill(db, 5)
    _tamper(
        settings.data_dir / "appliance.db",
        "UPDATE audit_record SET details='{\"i\": 99}' WHERE seq=3",
    )
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.broken_seq == 3
    assert "altered" in (result.reason or "")


def test_deleted_row_is_caught(db: Database, settings: Settings) -> None:
    _fill(db, 5)
    _tamper(settings.data_dir / "appliance.db", "DELETE FROM audit_record WHERE seq=2")
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.broken_seq == 2
    assert "missing" in (result.reason or "")


def test_rewritten_and_renumbered_chain_is_caught(db: Database, settings: Settings) -> None:
    """Deleting a row and renumbering the rest still breaks the links."""
    _fill(db, 4)
    _tamper(
        settings.data_dir / "appliance.db",
        "DELETE FROM audit_record WHERE seq=2",
        "UPDATE audit_record SET seq=seq-1 WHERE seq>2",
    )
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.broken_seq == 2


def test_concurrent_appends_keep_one_chain(db: Database) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                with db.write() as s:
                    audit.append(s, actor="t", action="a", subject="s")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok
    assert result.checked == 80


def test_read_filters_by_actor_and_action(db: Database) -> None:
    with db.write() as s:
        audit.append(s, actor="alice", action="task.create", subject="task:1")
        audit.append(s, actor="bob", action="task.create", subject="task:2")
        audit.append(s, actor="alice", action="repository.create", subject="repository:1")
    with db.session() as s:
        assert [r.subject for r in audit.read(s, actor="alice")] == ["task:1", "repository:1"]
        assert [r.actor for r in audit.read(s, action="task.create")] == ["alice", "bob"]


def _anchor(settings: Settings) -> Path:
    return settings.data_dir / "audit-head"


def test_each_committed_write_moves_the_head_anchor(db: Database, settings: Settings) -> None:
    _fill(db, 3)
    assert db.audit_anchor == _anchor(settings)
    with db.session() as s:
        head = audit.read(s)[-1]
    assert audit.read_anchor(_anchor(settings)) == audit.Anchor(seq=3, hash=head.hash)

    def failing_change() -> None:
        with db.write() as s:
            audit.append(s, actor="alice", action="thing.do", subject="thing:x")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):  # rolled back: the anchor stays
        failing_change()
    anchored = audit.read_anchor(_anchor(settings))
    assert anchored is not None
    assert anchored.seq == 3
    with db.session() as s:
        result = audit.verify(s, anchor=_anchor(settings))
    assert result.ok
    assert result.anchor_seq == 3


def test_deleting_the_newest_records_is_caught_by_the_anchor(
    db: Database, settings: Settings
) -> None:
    _fill(db, 5)
    _tamper(settings.data_dir / "appliance.db", "DELETE FROM audit_record WHERE seq >= 4")
    with db.session() as s:
        assert audit.verify(s).ok  # the remaining chain still links
        result = audit.verify(s, anchor=_anchor(settings))
    assert not result.ok
    assert result.broken_seq == 4
    assert result.reason == "the log ends at seq 3 but the anchor says 5: records were removed"


def test_a_log_rewritten_up_to_the_anchor_is_caught(db: Database, settings: Settings) -> None:
    """Truncate, then append new records up to the old length: the chain links again,
    but the record at the anchored seq is not the one anchored."""
    _fill(db, 3)
    anchored = audit.read_anchor(_anchor(settings))
    _tamper(settings.data_dir / "appliance.db", "DELETE FROM audit_record WHERE seq = 3")
    forged = Database(settings.database_url, audit_anchor=settings.data_dir / "elsewhere")
    try:
        with forged.write() as s:
            audit.append(s, actor="mallory", action="thing.do", subject="thing:2")
    finally:
        forged.dispose()
    assert audit.read_anchor(_anchor(settings)) == anchored
    with db.session() as s:
        result = audit.verify(s, anchor=_anchor(settings))
    assert not result.ok
    assert result.broken_seq == 3
    assert "the log was rewritten" in (result.reason or "")


def test_an_anchor_behind_the_log_is_accepted(db: Database, settings: Settings) -> None:
    """A crash between a commit and its anchor write leaves the anchor behind."""
    _fill(db, 2)
    behind = audit.read_anchor(_anchor(settings))
    assert behind is not None
    _fill(db, 2)
    audit.write_anchor(_anchor(settings), behind, replace=True)
    with db.session() as s:
        result = audit.verify(s, anchor=_anchor(settings))
    assert result.ok
    assert result.checked == 4
    assert result.anchor_seq == 2
    audit.write_anchor(_anchor(settings), behind)  # never moves back on its own
    with db.session() as s:
        assert audit.verify(s, anchor=_anchor(settings)).ok
    _fill(db, 1)
    with db.session() as s:
        head = audit.read(s)[-1]
    assert audit.read_anchor(_anchor(settings)) == audit.Anchor(seq=5, hash=head.hash)


def test_a_damaged_anchor_is_reported(db: Database, settings: Settings) -> None:
    _fill(db, 2)
    _anchor(settings).write_text('{"seq": "two"}\n')
    with db.session() as s:
        result = audit.verify(s, anchor=_anchor(settings))
    assert not result.ok
    assert "head anchor is damaged" in (result.reason or "")
