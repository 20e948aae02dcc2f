"""Registered repositories: admins manage them, everyone signed in reads them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from appliance.api.deps import Admin, ApplianceDep, SessionDep, Viewer
from appliance.store import repositories as repo_store
from appliance.store.models import RepositoryCreate, RepositoryPublic, RepositoryUpdate

router = APIRouter(prefix="/repositories", tags=["repositories"])


def _public(repo: object) -> RepositoryPublic:
    return RepositoryPublic.model_validate(repo, from_attributes=True)


@router.post("", status_code=201, response_model=RepositoryPublic)
def create_repository(
    repo_in: RepositoryCreate, appliance: ApplianceDep, principal: Admin
) -> RepositoryPublic:
    with appliance.db.write() as session:
        repo = repo_store.create_repository(session, repo_in=repo_in, actor=principal.username)
    return _public(repo)


@router.get("", response_model=list[RepositoryPublic])
def list_repositories(session: SessionDep, _principal: Viewer) -> list[RepositoryPublic]:
    return [_public(r) for r in repo_store.list_repositories(session)]


@router.get("/{repo_id}", response_model=RepositoryPublic)
def get_repository(repo_id: int, session: SessionDep, _principal: Viewer) -> RepositoryPublic:
    return _public(repo_store.get_repository(session, repo_id))


@router.patch("/{repo_id}", response_model=RepositoryPublic)
def update_repository(
    repo_id: int, repo_in: RepositoryUpdate, appliance: ApplianceDep, principal: Admin
) -> RepositoryPublic:
    with appliance.db.write() as session:
        repo = repo_store.update_repository(
            session, repo_id=repo_id, repo_in=repo_in, actor=principal.username
        )
    return _public(repo)


@router.delete("/{repo_id}", status_code=204)
def delete_repository(repo_id: int, appliance: ApplianceDep, principal: Admin) -> Response:
    """Refused (409) while the repository has tasks."""
    with appliance.db.write() as session:
        repo_store.delete_repository(session, repo_id=repo_id, actor=principal.username)
    return Response(status_code=204)
