"""Registered repositories."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from appliance.errors import Conflict, NotFound
from appliance.states import TERMINAL
from appliance.store import audit
from appliance.store.models import (
    Checkpoint,
    Repository,
    RepositoryCreate,
    RepositoryUpdate,
    Task,
    TaskEvent,
    utcnow,
)


def create_repository(session: Session, *, repo_in: RepositoryCreate, actor: str) -> Repository:
    if session.exec(select(Repository.id).where(Repository.name == repo_in.name)).first():
        raise Conflict(f"A repository named {repo_in.name!r} exists already; pick another name.")
    repo = Repository.model_validate(repo_in)
    session.add(repo)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(f"A repository named {repo_in.name!r} exists already.") from exc
    audit.append(
        session,
        actor=actor,
        action="repository.create",
        subject=f"repository:{repo.id}",
        details={"name": repo.name, "forge_kind": repo.forge_kind.value},
    )
    return repo


def get_repository(session: Session, repo_id: int) -> Repository:
    repo = session.get(Repository, repo_id)
    if repo is None:
        raise NotFound(f"No repository has id {repo_id}.")
    return repo


def list_repositories(session: Session) -> list[Repository]:
    return list(session.exec(select(Repository).order_by(col(Repository.name))))


def update_repository(
    session: Session, *, repo_id: int, repo_in: RepositoryUpdate, actor: str
) -> Repository:
    repo = get_repository(session, repo_id)
    changes = repo_in.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(repo, name, value)
    repo.updated_at = utcnow()
    session.add(repo)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="repository.update",
        subject=f"repository:{repo.id}",
        details={"fields": sorted(changes)},
    )
    return repo


def delete_repository(session: Session, *, repo_id: int, actor: str) -> list[str]:
    """Delete a repository with its finished tasks (their events and checkpoints too);
    refused while any of its tasks is still active. The audit records of the repository
    and of its tasks stay: the log is append-only. Returns the ids of the tasks removed."""
    repo = get_repository(session, repo_id)
    of_repo = select(Task.id).where(Task.repository_id == repo_id)
    active = session.exec(of_repo.where(col(Task.status).not_in(list(TERMINAL)))).all()
    if active:
        raise Conflict(
            f"Repository {repo.name!r} has {len(active)} active task(s); cancel them or let "
            "them finish before deleting it."
        )
    finished = list(session.exec(of_repo).all())
    if finished:
        session.exec(delete(TaskEvent).where(col(TaskEvent.task_id).in_(of_repo)))
        session.exec(delete(Checkpoint).where(col(Checkpoint.task_id).in_(of_repo)))
        session.exec(delete(Task).where(col(Task.repository_id) == repo_id))
    session.delete(repo)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="repository.delete",
        subject=f"repository:{repo_id}",
        details={"name": repo.name, "finished_tasks_removed": len(finished)},
    )
    return finished
