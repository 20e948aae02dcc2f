"""The append-only, hash-chained audit log.

Each record's ``hash`` is ``sha256(prev_hash ‖ canonical JSON of the record)``,
where the record is ``{seq, ts, actor, action, subject, details}``. Editing any field
of a record breaks its own hash; deleting one breaks the next record's link (and
leaves a gap in ``seq``). The store offers append and read, nothing else; the
database refuses UPDATE and DELETE on the table with triggers (see the migration).

Deleting the *newest* records leaves a chain that still links, so the head is also
anchored outside the database: after each write transaction that appended records
commits, :class:`~appliance.store.db.Database` writes the last record's seq and hash
to ``audit-head`` beside the database file (the data dir). :func:`verify` given that
file reports a log that ends before the anchor (records were removed) or whose record
at the anchored seq has another hash (the log was rewritten). The anchor may lag the
log (a crash between the commit and the file write), never lead it; a restore that
puts back an older log must rewrite it (:func:`write_anchor` with ``replace``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlmodel import Session, col, select

from appliance.store.models import AuditRecord, utcnow

GENESIS_HASH = "0" * 64
ANCHOR_NAME = "audit-head"
_PENDING_HEAD = "appliance.audit_head"  # key in Session.info: the head this session appended


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _ts_text(ts: datetime) -> str:
    if ts.utcoffset() is not None:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _body(rec: AuditRecord) -> dict[str, Any]:
    """The hashed part of a record."""
    return {
        "seq": rec.seq,
        "ts": _ts_text(rec.ts),
        "actor": rec.actor,
        "action": rec.action,
        "subject": rec.subject,
        "details": rec.details,
    }


def record_hash(rec: AuditRecord) -> str:
    """sha256(prev_hash ‖ canonical JSON of seq, ts, actor, action, subject, details)."""
    body = canonical_json(_body(rec))
    return hashlib.sha256((rec.prev_hash + body).encode("utf-8")).hexdigest()


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction (which must hold the write lock)."""
    last = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    record = AuditRecord(
        seq=last.seq + 1 if last else 1,
        ts=utcnow(),
        actor=actor,
        action=action,
        subject=subject,
        details=json.loads(canonical_json(details or {})),  # what is hashed is what is stored
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    record.hash = record_hash(record)
    session.add(record)
    session.flush()
    session.info[_PENDING_HEAD] = Anchor(seq=record.seq, hash=record.hash)
    return record


def read(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> list[AuditRecord]:
    query = select(AuditRecord).where(AuditRecord.seq > after_seq)
    if actor:
        query = query.where(AuditRecord.actor == actor)
    if action:
        query = query.where(AuditRecord.action == action)
    if subject:
        query = query.where(AuditRecord.subject == subject)
    if since:
        query = query.where(AuditRecord.ts >= since)
    if until:
        query = query.where(AuditRecord.ts < until)
    query = query.order_by(col(AuditRecord.seq))
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def iter_all(session: Session, *, batch: int = 1000) -> Iterator[AuditRecord]:
    after = 0
    while True:
        rows = read(session, after_seq=after, limit=batch)
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


# --- the head anchor -------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


class AnchorUnreadable(Exception):
    """The anchor file exists but does not hold ``{"seq": int, "hash": str}``."""


def anchor_path(database_url: str) -> Path | None:
    """``audit-head`` beside a SQLite database file; None for other databases."""
    url = make_url(database_url)
    name = url.database
    if not url.drivername.startswith("sqlite") or not name or name == ":memory:":
        return None
    if name.startswith("file:"):  # a URI filename: no plain path to put the anchor beside
        return None
    return Path(name).parent / ANCHOR_NAME


def read_anchor(path: Path) -> Anchor | None:
    """The anchored head, or None when there is no anchor file (yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorUnreadable(f"{path} cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
        seq, hash_ = data["seq"], data["hash"]
    except (ValueError, TypeError, KeyError) as exc:
        raise AnchorUnreadable(f"{path} does not hold a seq and a hash") from exc
    if not isinstance(seq, int) or seq < 1 or not isinstance(hash_, str) or len(hash_) != 64:
        raise AnchorUnreadable(f"{path} does not hold a seq and a hash")
    return Anchor(seq=seq, hash=hash_)


def write_anchor(path: Path, head: Anchor, *, replace: bool = False) -> None:
    """Atomically record ``head`` once its transaction has committed.

    The anchor only moves forward: another process may have committed a later record
    and anchored it first. ``replace`` writes ``head`` even if it is older (a restore
    that puts back an earlier log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not replace:
            try:
                current = read_anchor(path)
            except AnchorUnreadable:
                current = None  # verify reports it until this write replaces it
            if current is not None and current.seq >= head.seq:
                return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"seq": head.seq, "hash": head.hash}) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def take_appended_head(session: Session) -> Anchor | None:
    """The last record this session appended (then forgotten); None if it appended none."""
    head: Anchor | None = session.info.pop(_PENDING_HEAD, None)
    return head


# --- verification ---------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None
    anchor_seq: int | None = None  # the anchored head that was compared, if any


def verify(session: Session, *, anchor: Path | None = None) -> VerifyResult:
    """Walk the chain; name the first record that is edited, missing or out of order.

    With ``anchor`` (the ``audit-head`` file), also report records removed from the end
    and a log rewritten up to the anchored seq. A missing anchor file is not an error
    (a database from before anchors, or one no write has touched since): the result's
    ``anchor_seq`` is then None."""
    try:
        anchored = read_anchor(anchor) if anchor is not None else None
    except AnchorUnreadable as exc:
        return VerifyResult(
            False,
            0,
            GENESIS_HASH,
            None,
            f"the head anchor is damaged or was edited ({exc}); compare the log with an "
            "export or a backup",
        )
    result, hash_at_anchor = _walk(session, anchored.seq if anchored else None)
    if not result.ok or anchored is None:
        return result
    if result.checked < anchored.seq:
        return VerifyResult(
            False,
            result.checked,
            result.head_hash,
            result.checked + 1,
            f"the log ends at seq {result.checked} but the anchor says {anchored.seq}: "
            "records were removed",
            anchored.seq,
        )
    if hash_at_anchor != anchored.hash:
        return VerifyResult(
            False,
            result.checked,
            result.head_hash,
            anchored.seq,
            f"record {anchored.seq} is not the one the anchor recorded (its hash differs): "
            "the log was rewritten",
            anchored.seq,
        )
    return VerifyResult(True, result.checked, result.head_hash, anchor_seq=anchored.seq)


def _walk(session: Session, anchor_seq: int | None) -> tuple[VerifyResult, str | None]:
    """The chain check, and the hash of record ``anchor_seq`` when the walk reached it."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    hash_at_anchor: str | None = None
    for rec in iter_all(session):
        if rec.seq != expected_seq:
            reason = f"record {expected_seq} is missing (next present is {rec.seq})"
            return VerifyResult(False, checked, prev_hash, expected_seq, reason), None
        if rec.prev_hash != prev_hash:
            reason = f"record {rec.seq} does not link to record {rec.seq - 1} (prev_hash differs)"
            return VerifyResult(False, checked, prev_hash, rec.seq, reason), None
        if record_hash(rec) != rec.hash:
            reason = f"record {rec.seq} was altered (its content does not match its hash)"
            return VerifyResult(False, checked, prev_hash, rec.seq, reason), None
        if rec.seq == anchor_seq:
            hash_at_anchor = rec.hash
        prev_hash = rec.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, prev_hash), hash_at_anchor


def to_json(rec: AuditRecord) -> dict[str, Any]:
    return {**_body(rec), "prev_hash": rec.prev_hash, "hash": rec.hash}
