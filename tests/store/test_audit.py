from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
