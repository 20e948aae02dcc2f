"""The append-only, hash-chained audit log.

Each record's ``hash`` is ``sha256(prev_hash ‖ canonical JSON of the record)``,
where the record is ``{seq, ts, actor, action, subject, details}``. Editing any field
of a record breaks its own hash; deleting one breaks the next record's link (and
leaves a gap in ``seq``). The store offers append and read, nothing else; the
database refuses UPDATE and DELETE on the table with triggers (see the migration).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from appliance.store.models import AuditRecord, utcnow

GENESIS_HASH = "0" * 64


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


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session) -> VerifyResult:
    """Walk the chain; name the first record that is edited, missing or out of order."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for rec in iter_all(session):
        if rec.seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                prev_hash,
                expected_seq,
                f"record {expected_seq} is missing (next present is {rec.seq})",
            )
        if rec.prev_hash != prev_hash:
            return VerifyResult(
                False,
                checked,
                prev_hash,
                rec.seq,
                f"record {rec.seq} does not link to record {rec.seq - 1} (prev_hash differs)",
            )
        want = record_hash(rec)
        if want != rec.hash:
            return VerifyResult(
                False,
                checked,
                prev_hash,
                rec.seq,
                f"record {rec.seq} was altered (its content does not match its hash)",
            )
        prev_hash = rec.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, prev_hash)


def to_json(rec: AuditRecord) -> dict[str, Any]:
    return {**_body(rec), "prev_hash": rec.prev_hash, "hash": rec.hash}
