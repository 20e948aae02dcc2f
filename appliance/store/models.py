"""Tables and their API shapes (SQLModel families: Base → Create/Update → table → Public)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, Float, Index, LargeBinary, String, Unicode, UniqueConstraint
from sqlmodel import Field, SQLModel

from appliance.states import FailureCategory, Priority, TaskStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime. SQLite keeps no offset, and SQLModel before 0.0.45 hands
    stored times back naive; they were stored in UTC, so a naive value is UTC (never the
    host's local time, which ``astimezone`` would assume)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(StrEnum):
    viewer = "viewer"
    developer = "developer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "developer": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class ForgeKind(StrEnum):
    git = "git"
    github = "github"
    gitlab = "gitlab"


# --- repositories -----------------------------------------------------------------


_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class RepositoryBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    forge_kind: ForgeKind = ForgeKind.git
    clone_url: str = Field(min_length=1, max_length=2000)
    default_branch: str = Field(default="main", min_length=1, max_length=255)

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not _REPO_NAME.fullmatch(value) or ".." in value:
            raise ValueError(
                "use letters, digits, '.', '_', '-' and '/', starting with a letter or digit"
            )
        return value


class RepositoryCreate(RepositoryBase):
    settings: dict[str, Any] = Field(default_factory=dict)


class RepositoryUpdate(SQLModel):
    forge_kind: ForgeKind | None = None
    clone_url: str | None = Field(default=None, min_length=1, max_length=2000)
    default_branch: str | None = Field(default=None, min_length=1, max_length=255)
    settings: dict[str, Any] | None = None


class Repository(RepositoryBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RepositoryPublic(RepositoryBase):
    id: int
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# --- tasks ------------------------------------------------------------------------


class TaskConstraints(SQLModel):
    avoid_files: list[str] = Field(default_factory=list, max_length=500)
    max_files_changed: int | None = Field(default=None, ge=1, le=10_000)
    notes: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Constraints in words ('keep the public API'), also added while it runs.",
    )

    @field_validator("avoid_files")
    @classmethod
    def _patterns_are_relative(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern.strip():
                raise ValueError("empty path pattern; remove it or give a path")
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise ValueError(
                    f"{pattern!r} must be a path relative to the repository root, without '..'"
                )
        return value


class TaskCreate(SQLModel):
    repository_id: int
    prompt: str = Field(min_length=1)
    constraints: TaskConstraints = Field(default_factory=lambda: TaskConstraints())
    priority: Priority = Priority.normal

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the request is empty; describe the change you want")
        return value


class TaskBase(SQLModel):
    repository_id: int
    prompt: str
    priority: Priority = Priority.normal
    status: TaskStatus = TaskStatus.queued
    step: str | None = None
    progress: float | None = None
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    branch: str | None = None
    summary: str | None = None
    pr_url: str | None = None
    failure_category: FailureCategory | None = None
    failure_message: str | None = None


class Task(TaskBase, table=True):
    __table_args__ = (Index("ix_task_status_priority", "status", "priority"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True)
    repository_id: int = Field(foreign_key="repository.id", index=True)
    constraints: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class TaskPublic(TaskBase):
    id: str
    constraints: TaskConstraints


class TaskEvent(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("task_id", "seq", name="uq_taskevent_task_seq"),
        UniqueConstraint("task_id", "key", name="uq_taskevent_task_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="task.id", index=True)
    seq: int
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    key: str | None = Field(default=None, max_length=200)
    ts: datetime = Field(default_factory=utcnow)


class Checkpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="task.id", index=True)
    node: str = Field(max_length=100)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ts: datetime = Field(default_factory=utcnow)


# --- audit ------------------------------------------------------------------------


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    seq: int = Field(primary_key=True)
    ts: datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100, index=True)
    subject: str = Field(max_length=300)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


# --- users and tokens ---------------------------------------------------------------


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    role: Role = Role.developer
    password_hash: str | None = None
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    role: Role
    owner_id: int = Field(foreign_key="user.id", index=True)
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


# --- scheduled jobs (appliance.jobs) ----------------------------------------------------


class JobOutcome(StrEnum):
    running = "running"
    ok = "ok"
    failed = "failed"
    skipped_misfire = "skipped_misfire"
    interrupted = "interrupted"  # the process stopped while it ran


class JobRun(SQLModel, table=True):
    """One run of a scheduled job. The row is inserted before the job starts: the unique
    (job_id, scheduled_for) pair makes a second attempt at the same run a no-op."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job_id", "scheduled_for", name="uq_job_run_scheduled"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=300, index=True)
    kind: str = Field(max_length=50)
    repository_id: int | None = None  # no foreign key: runs outlive their repository
    repository: str | None = Field(default=None, max_length=200)
    trigger: str = Field(default="schedule", max_length=20)  # schedule | manual
    scheduled_for: datetime  # UTC
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: JobOutcome = JobOutcome.running
    message: str = ""
    task_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SchedulerJob(SQLModel, table=True):
    """APScheduler's own job store table (``SQLAlchemyJobStore``), declared here so that
    the migrations own it: the scheduler only reads and writes rows."""

    __tablename__ = "apscheduler_jobs"

    id: str = Field(sa_column=Column(Unicode(191), primary_key=True))
    next_run_time: float | None = Field(default=None, sa_column=Column(Float(25), index=True))
    job_state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
