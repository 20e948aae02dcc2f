"""Forge webhooks: review comments on an appliance pull/merge request send its task back.

``POST /api/v1/webhooks/github`` checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw
body) and ``POST /api/v1/webhooks/gitlab`` checks ``X-Gitlab-Token``, each against the
webhook secret of the repository the payload names (``repository.full_name`` /
``project.path_with_namespace``; set with ``appliance repo add`` or the repository's
``webhook_secret`` setting). A missing or wrong signature, or a repository the appliance
does not know, is answered 401 and leaves an audit record (``webhook.rejected``); no task
changes. A verified comment on an appliance PR goes to its task
(:func:`appliance.forges.feedback.deliver`); anything else is acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import select

from appliance.api.deps import ApplianceDep
from appliance.core import Appliance
from appliance.errors import InvalidInput, Unauthenticated
from appliance.forges.base import ReviewFeedback
from appliance.forges.connect import forge_project, webhook_secret
from appliance.forges.errors import ForgeTokenUnreadable
from appliance.forges.feedback import deliver, find_published
from appliance.forges.webhooks import (
    parse_github_event,
    parse_gitlab_event,
    verify_github_signature,
    verify_gitlab_token,
)
from appliance.store import audit
from appliance.store.models import ForgeKind, Repository

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 5 * 1024 * 1024
ACTOR = "system:webhook"


def _payload(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise InvalidInput(f"the webhook body is larger than {MAX_BODY // (1024 * 1024)} MiB")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _claimed(kind: ForgeKind, payload: dict[str, Any]) -> list[str]:
    """The names the payload gives its repository (full path, and GitLab's id)."""
    if kind == ForgeKind.github:
        repo = payload.get("repository") or {}
        return [str(repo.get("full_name", ""))] if isinstance(repo, dict) else []
    project = payload.get("project") or {}
    if not isinstance(project, dict):
        return []
    return [str(project.get("path_with_namespace", "")), str(project.get("id", ""))]


def _find_repo(appliance: Appliance, kind: ForgeKind, names: list[str]) -> Repository | None:
    wanted = {n.lower() for n in names if n}
    with appliance.db.session() as session:
        for repo in session.exec(select(Repository).where(Repository.forge_kind == kind)):
            if forge_project(repo).lower() in wanted:
                session.expunge(repo)
                return repo
    return None


def _reject(
    appliance: Appliance, kind: ForgeKind, reason: str, names: list[str], request: Request
) -> Unauthenticated:
    with appliance.db.write() as session:
        audit.append(
            session,
            actor=ACTOR,
            action="webhook.rejected",
            subject=f"webhook:{kind.value}",
            details={
                "reason": reason,
                "repository": next((n for n in names if n), None),
                "client": request.client.host if request.client else None,
            },
        )
    return Unauthenticated(
        f"webhook rejected: {reason}. Configure the webhook with the secret set on the "
        "repository in the appliance (`appliance repo add … --webhook-secret-env VAR`)."
    )


def _secret(appliance: Appliance, repo: Repository) -> str:
    try:
        return webhook_secret(appliance.settings, repo) or ""
    except ForgeTokenUnreadable:
        return ""


async def _handle(
    appliance: Appliance,
    kind: ForgeKind,
    request: Request,
    verify: Any,
    parse: Any,
) -> dict[str, Any]:
    body = await request.body()
    payload = _payload(body)
    names = _claimed(kind, payload)
    repo = await asyncio.to_thread(_find_repo, appliance, kind, names)
    if repo is None:
        raise await asyncio.to_thread(
            _reject, appliance, kind, "no registered repository matches the payload", names, request
        )
    secret = await asyncio.to_thread(_secret, appliance, repo)
    if not secret:
        raise await asyncio.to_thread(
            _reject, appliance, kind, f"repository {repo.name} has no webhook secret", names,
            request,
        )  # fmt: skip
    if not verify(body, secret):
        raise await asyncio.to_thread(
            _reject, appliance, kind, "the signature does not match", names, request
        )
    feedback: ReviewFeedback | None = parse(payload)
    if feedback is None:
        return {"status": "ignored", "reason": "not a review comment"}

    def lookup() -> Any:
        with appliance.db.session() as session:
            assert repo is not None
            assert repo.id is not None
            return find_published(
                session, repo.id, number=feedback.pr_number, branch=feedback.branch
            )

    pr = await asyncio.to_thread(lookup)
    if pr is None:
        return {"status": "ignored", "reason": "not a pull request the appliance opened"}
    outcome = await deliver(
        appliance, pr, [feedback], source="webhook", actor=f"{kind.value}:{feedback.author}"
    )

    def record() -> None:
        with appliance.db.write() as session:
            audit.append(
                session,
                actor=f"{kind.value}:{feedback.author}",
                action="webhook.feedback",
                subject=f"task:{pr.task_id}",
                details={"pr": pr.number, "outcome": outcome},
            )

    await asyncio.to_thread(record)
    return {"status": outcome, "task_id": pr.task_id}


@router.post("/github", status_code=202)
async def github_webhook(request: Request, appliance: ApplianceDep) -> dict[str, Any]:
    """GitHub: review comments, PR comments and reviews with a body."""
    event = request.headers.get("x-github-event")
    signature = request.headers.get("x-hub-signature-256")
    return await _handle(
        appliance,
        ForgeKind.github,
        request,
        lambda body, secret: verify_github_signature(body, signature, secret),
        lambda payload: parse_github_event(event, payload),
    )


@router.post("/gitlab", status_code=202)
async def gitlab_webhook(request: Request, appliance: ApplianceDep) -> dict[str, Any]:
    """GitLab: notes on merge requests (``Note Hook``)."""
    token = request.headers.get("x-gitlab-token")
    return await _handle(
        appliance,
        ForgeKind.gitlab,
        request,
        lambda _body, secret: verify_gitlab_token(token, secret),
        parse_gitlab_event,
    )
