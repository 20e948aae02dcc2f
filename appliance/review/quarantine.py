"""The quarantine of a task whose diff holds secrets.

Reviewing marks the task's data directory (``<data dir>/tasks/<id>/QUARANTINED``, the
scanner's summary inside) when the secret scan finds something critical. The worktree is
then evidence for an admin: the retention job keeps it (and says so in its report) however
old the task is, and nothing of it is pushed. An admin lifts the quarantine by deleting
the marker once the secret is dealt with (rotated, the worktree inspected).
"""

from __future__ import annotations

from pathlib import Path

MARKER = "QUARANTINED"


def marker_path(data_dir: Path, task_id: str) -> Path:
    return Path(data_dir) / "tasks" / task_id / MARKER


def quarantine(data_dir: Path, task_id: str, reason: str) -> Path:
    """Mark ``task_id`` as quarantined, with ``reason`` (no secret values in it)."""
    marker = marker_path(data_dir, task_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(reason.rstrip("\n") + "\n")
    return marker


def quarantine_reason(data_dir: Path, task_id: str) -> str | None:
    """Why ``task_id`` is quarantined, or None when it is not."""
    marker = marker_path(data_dir, task_id)
    try:
        return marker.read_text().strip() or "quarantined"
    except FileNotFoundError:
        return None
