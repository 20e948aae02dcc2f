"""Analytics: tasks per week, success rate, time from request to PR, tokens per task,
nightly-job outcomes, as server-rendered SVG charts."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from sqlmodel import col, select
from starlette.responses import Response

from appliance.states import TaskStatus
from appliance.store.models import JobRun, Task, TaskEvent
from ui import charts
from ui.auth import ViewerUser
from ui.deps import ApplianceDep
from ui.render import render

router = APIRouter()
WEEKS = 12


def _week(ts: datetime) -> datetime:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    day = ts.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), UTC)


@router.get("/analytics")
def analytics(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    now = datetime.now(UTC)
    weeks = [_week(now) - timedelta(weeks=i) for i in reversed(range(WEEKS))]
    since = weeks[0]
    with appliance.db.session() as session:
        rows = list(
            session.exec(
                select(Task.id, Task.created_at, Task.finished_at, Task.status).where(
                    col(Task.created_at) >= since
                )
            )
        )
        usage = list(
            session.exec(
                select(TaskEvent.task_id, TaskEvent.payload).where(TaskEvent.kind == "usage")
            )
        )
        job_runs = list(session.exec(select(JobRun.outcome, JobRun.scheduled_for)))
    created: Counter[datetime] = Counter()
    ok: Counter[datetime] = Counter()
    bad: Counter[datetime] = Counter()
    to_pr: defaultdict[datetime, list[float]] = defaultdict(list)
    for _id, created_at, finished_at, status in rows:
        week = _week(created_at)
        created[week] += 1
        if status == TaskStatus.done:
            ok[week] += 1
            if finished_at is not None:
                to_pr[week].append((finished_at - created_at).total_seconds() / 60)
        elif status in (TaskStatus.failed, TaskStatus.rejected, TaskStatus.cancelled):
            bad[week] += 1
    label = [w.strftime("%m-%d") for w in weeks]
    finished = sum(ok.values()) + sum(bad.values())
    tokens: defaultdict[str, int] = defaultdict(int)
    for task_id, payload in usage:
        tokens[task_id] += int(payload.get("total_tokens", 0) or 0)
    jobs: Counter[str] = Counter(str(o) for o, _ in job_runs)
    all_minutes = [m for ms in to_pr.values() for m in ms]
    figures = {
        "tasks": len(rows),
        "success": f"{100 * sum(ok.values()) / finished:.0f} %" if finished else "—",
        "median_to_pr": f"{statistics.median(all_minutes):.1f} min" if all_minutes else "—",
        "tokens": f"{statistics.mean(tokens.values()):,.0f}" if tokens else "not recorded yet",
        "job_runs": sum(jobs.values()),
    }
    return render(
        request,
        "analytics.html",
        active="analytics",
        figures=figures,
        per_week=charts.bars(
            "Tasks per week", list(zip(label, [created[w] for w in weeks], strict=True))
        ),
        outcomes=charts.stacked(
            "Finished tasks per week: done / not done",
            [(lab, ok[w], bad[w]) for lab, w in zip(label, weeks, strict=True)],
        ),
        to_pr=charts.bars(
            "Median minutes from request to finished",
            [
                (lab, statistics.median(to_pr[w]) if to_pr[w] else 0.0)
                for lab, w in zip(label, weeks, strict=True)
            ],
            unit=" min",
        ),
        tokens_chart=charts.bars(
            "Tokens per task (latest 20)",
            [(t[:6], float(v)) for t, v in list(tokens.items())[-20:]],
        ),
        jobs_chart=charts.bars("Nightly-job outcomes", sorted(jobs.items())) if jobs else None,
    )
