"""Registered repositories: admins manage them, everyone signed in reads them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from appliance.api.deps import Admin, ApplianceDep, SessionDep, Viewer
from appliance.core import Appliance
from appliance.errors import Conflict
from appliance.forges.connect import fetch_access, public_settings, seal_settings, secret_key
from appliance.index.search import search
from appliance.store import audit
from appliance.store import repositories as repo_store
from appliance.store.models import (
    Repository,
    RepositoryCreate,
    RepositoryPublic,
    RepositoryUpdate,
)

router = APIRouter(prefix="/repositories", tags=["repositories"])


def _public(repo: Repository, appliance: Appliance) -> RepositoryPublic:
    """Never the forge token or webhook secret: they are shown masked."""
    public = RepositoryPublic.model_validate(repo, from_attributes=True)
    public.settings = public_settings(repo.settings or {}, secret_key(appliance.settings))
    return public


@router.post("", status_code=201, response_model=RepositoryPublic)
def create_repository(
    repo_in: RepositoryCreate, appliance: ApplianceDep, principal: Admin
) -> RepositoryPublic:
    """``settings.forge.token`` and ``settings.webhook_secret`` are stored encrypted."""
    key = secret_key(appliance.settings)
    repo_in.settings = seal_settings(repo_in.settings, key, kind=repo_in.forge_kind.value)
    with appliance.db.write() as session:
        repo = repo_store.create_repository(session, repo_in=repo_in, actor=principal.username)
    return _public(repo, appliance)


@router.get("", response_model=list[RepositoryPublic])
def list_repositories(
    session: SessionDep, appliance: ApplianceDep, _principal: Viewer
) -> list[RepositoryPublic]:
    return [_public(r, appliance) for r in repo_store.list_repositories(session)]


@router.get("/{repo_id}", response_model=RepositoryPublic)
def get_repository(
    repo_id: int, session: SessionDep, appliance: ApplianceDep, _principal: Viewer
) -> RepositoryPublic:
    return _public(repo_store.get_repository(session, repo_id), appliance)


@router.patch("/{repo_id}", response_model=RepositoryPublic)
def update_repository(
    repo_id: int, repo_in: RepositoryUpdate, appliance: ApplianceDep, principal: Admin
) -> RepositoryPublic:
    """Secrets not sent again are kept; new ones are stored encrypted."""
    with appliance.db.write() as session:
        if repo_in.settings is not None:
            current = repo_store.get_repository(session, repo_id)
            repo_in.settings = seal_settings(
                repo_in.settings,
                secret_key(appliance.settings),
                kind=(repo_in.forge_kind or current.forge_kind).value,
                current=current.settings,
            )
        repo = repo_store.update_repository(
            session, repo_id=repo_id, repo_in=repo_in, actor=principal.username
        )
    return _public(repo, appliance)


@router.delete("/{repo_id}", status_code=204)
def delete_repository(repo_id: int, appliance: ApplianceDep, principal: Admin) -> Response:
    """Refused (409) while the repository has tasks."""
    with appliance.db.write() as session:
        repo_store.delete_repository(session, repo_id=repo_id, actor=principal.username)
    return Response(status_code=204)


class IndexRequest(BaseModel):
    full: bool = Field(False, description="Re-index every file, not only what changed.")


@router.post("/{repo_id}/index", status_code=202)
def start_indexing(
    repo_id: int,
    appliance: ApplianceDep,
    principal: Admin,
    body: IndexRequest | None = None,
) -> dict[str, Any]:
    """Fetch the repository (with its token, CA bundle and proxy) and bring its index up to
    date, in the background; embeddings fill in after, while lexical search already works.
    Poll ``GET …/index``."""
    full = bool(body and body.full)
    with appliance.db.write() as session:
        repo = repo_store.get_repository(session, repo_id)
        started = appliance.index.refresh_in_background(
            repo.name,
            repo.clone_url,
            repo.default_branch,
            access=fetch_access(appliance.settings, repo),
            full=full,
        )
        if not started:
            raise Conflict(f"{repo.name} is being indexed already; wait for it to finish")
        audit.append(
            session,
            actor=principal.username,
            action="repository.index",
            subject=f"repository:{repo.id}",
            details={"name": repo.name, "full": full},
        )
    return {"status": "started", "repository": repo.name}


@router.get("/{repo_id}/index")
def index_status(
    repo_id: int, session: SessionDep, appliance: ApplianceDep, _principal: Viewer
) -> dict[str, Any]:
    repo = repo_store.get_repository(session, repo_id)
    status = appliance.index.status(repo.name)
    return {
        "repository": repo.name,
        "index": asdict(status) if status else None,
        "refresh": asdict(appliance.index.refresh_progress(repo.name)),
        "embedding": asdict(appliance.index.embedding_progress(repo.name)),
    }


@router.get("/{repo_id}/search")
def search_repository(
    repo_id: int,
    session: SessionDep,
    appliance: ApplianceDep,
    _principal: Viewer,
    q: Annotated[str, Query(min_length=1, max_length=20_000, description="What to find.")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    """Hybrid search over the repository's index: files, line spans and reasons."""
    repo = repo_store.get_repository(session, repo_id)
    status = appliance.index.status(repo.name)
    if status is None or status.commit is None:
        raise Conflict(f"{repo.name} has no index yet; start one with POST …/index")
    index = appliance.index.open(repo.name)
    return [asdict(hit) for hit in search(index, q, k)]
