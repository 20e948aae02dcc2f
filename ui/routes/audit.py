"""The audit log: filter, verify the chain, export (JSON Lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from appliance.errors import InvalidInput
from appliance.store import audit
from ui.auth import AdminUser, ViewerUser
from ui.deps import ApplianceDep
from ui.render import render

router = APIRouter()
PAGE = 100


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"{field} must be a date like 2025-01-31, not {value!r}.") from None


@router.get("/audit")
def audit_page(
    request: Request,
    appliance: ApplianceDep,
    _user: ViewerUser,
    actor: str = "",
    action: str = "",
    subject: str = "",
    since: str = "",
    until: str = "",
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    start, end = _day(since, "From"), _day(until, "To")
    with appliance.db.session() as session:
        rows = audit.read(
            session,
            actor=actor or None,
            action=action or None,
            subject=subject or None,
            since=start,
            until=end + timedelta(days=1) if end else None,
            after_seq=after,
            limit=PAGE + 1,
        )
    more = len(rows) > PAGE
    filters = {"actor": actor, "action": action, "subject": subject, "since": since, "until": until}
    return render(
        request,
        "audit.html",
        active="audit",
        rows=rows[:PAGE],
        more=more,
        filters=filters,
        verified=None,
    )


@router.get("/audit/verify")
def verify(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    with appliance.db.session() as session:
        result = audit.verify(session, anchor=appliance.db.audit_anchor)
    filters = {"actor": "", "action": "", "subject": "", "since": "", "until": ""}
    return render(
        request,
        "audit.html",
        active="audit",
        rows=[],
        more=False,
        filters=filters,
        verified=result,
    )


@router.get("/audit/export")
def export(appliance: ApplianceDep, _user: AdminUser) -> StreamingResponse:
    """The whole chain as JSON Lines, with hashes, for checking elsewhere."""

    def lines() -> Iterator[bytes]:
        with appliance.db.session() as session:
            for rec in audit.iter_all(session):
                yield (json.dumps(audit.to_json(rec), sort_keys=True) + "\n").encode()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.jsonl"'},
    )
