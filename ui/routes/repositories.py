"""Repositories: add (forge, URL, token), check access, index status and re-index, settings
(test command, protected paths, plan approval, nightly schedule)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from appliance.errors import ApplianceError, Conflict, InvalidInput
from appliance.forges.secrets import decrypt, encrypt, mask
from appliance.jobs.schedule import check_cron
from appliance.store import repositories as repo_store
from appliance.store.models import ForgeKind, Repository, RepositoryCreate, RepositoryUpdate
from ui.auth import AdminUser, CsrfChecked, ViewerUser
from ui.deps import ApplianceDep, redirect
from ui.forms import read_form
from ui.render import Htmx, render

router = APIRouter()
TOKEN_KEY = "forge_token_encrypted"  # noqa: S105 - a settings key  # repository settings key of the encrypted forge token


def _secret(appliance: ApplianceDep) -> str:
    return appliance.settings.security.secret_key.get_secret_value()


def _list_page(
    request: Request,
    appliance: ApplianceDep,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with appliance.db.session() as session:
        repos = repo_store.list_repositories(session)
    return render(
        request,
        "repositories.html",
        status_code=status_code,
        active="repositories",
        repositories=repos,
        error=error,
        forges=[k.value for k in ForgeKind],
        values=values
        or {"name": "", "forge_kind": "git", "clone_url": "", "default_branch": "main"},
    )


@router.get("/repositories")
def repositories_page(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    return _list_page(request, appliance)


@router.post("/repositories")
async def add_repository(
    request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    form = await read_form(request)
    values = {k: form.get(k).strip() for k in ("name", "forge_kind", "clone_url", "default_branch")}
    token = form.get("token").strip()
    try:
        settings: dict[str, Any] = {TOKEN_KEY: encrypt(token, _secret(appliance))} if token else {}
        repo_in = RepositoryCreate(
            name=values["name"],
            forge_kind=ForgeKind(values["forge_kind"] or "git"),
            clone_url=values["clone_url"],
            default_branch=values["default_branch"] or "main",
            settings=settings,
        )
    except (ValidationError, ValueError) as exc:
        return _list_page(request, appliance, error=_why(exc), values=values, status_code=422)

    def create() -> int:
        with appliance.db.write() as session:
            repo = repo_store.create_repository(session, repo_in=repo_in, actor=user.username)
            assert repo.id is not None
            return repo.id

    try:
        repo_id = await asyncio.to_thread(create)
    except Conflict as exc:
        return _list_page(request, appliance, error=exc.message, values=values, status_code=409)
    return redirect(request, f"/repositories/{repo_id}")


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "Please fix: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return "Pick a forge: git, github or gitlab."


def _index_info(appliance: ApplianceDep, repo: Repository) -> dict[str, Any]:
    try:
        status = appliance.index.status(repo.name)
    except Exception as exc:  # shown on the page, not raised: the page stays usable
        return {
            "index": None,
            "problem": f"{type(exc).__name__}: {exc}",
            "refresh": asdict(appliance.index.refresh_progress(repo.name)),
            "embedding": None,
        }
    return {
        "index": asdict(status) if status else None,
        "problem": "",
        "refresh": asdict(appliance.index.refresh_progress(repo.name)),
        "embedding": asdict(appliance.index.embedding_progress(repo.name)),
    }


def _token_hint(appliance: ApplianceDep, repo: Repository) -> str:
    stored = (repo.settings or {}).get(TOKEN_KEY)
    if not stored:
        return ""
    try:
        return mask(decrypt(stored, _secret(appliance)))
    except Exception:  # the secret key changed since it was stored
        return "stored, but unreadable with the current secret key: enter it again"


def _stored_fields(repo: Repository) -> dict[str, Any]:
    """The settings form's values as stored."""
    s = repo.settings or {}
    return {
        "test_command": s.get("test_command", ""),
        "protected_paths": "\n".join(s.get("protected_paths") or []),
        "protected_branches": "\n".join(s.get("protected_branches") or []),
        "plan_approval": bool(s.get("plan_approval")),
        "nightly_cron": s.get("nightly_cron", ""),
        "clone_url": repo.clone_url,
        "default_branch": repo.default_branch,
    }


def _repository_page(
    request: Request,
    appliance: ApplianceDep,
    repo: Repository,
    *,
    check: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    field_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "repository.html",
        status_code=status_code,
        active="repositories",
        repo=repo,
        info=_index_info(appliance, repo),
        token_hint=_token_hint(appliance, repo),
        check=check,
        fields=fields or _stored_fields(repo),
        field_errors=field_errors or {},
    )


@router.get("/repositories/{repo_id}")
def repository_page(
    repo_id: int, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    with appliance.db.session() as session:
        repo = repo_store.get_repository(session, repo_id)
    return _repository_page(request, appliance, repo)


@router.get("/repositories/{repo_id}/index-status")
def index_status(
    repo_id: int, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    with appliance.db.session() as session:
        repo = repo_store.get_repository(session, repo_id)
    return render(
        request, "_partials/_index_status.html", repo=repo, info=_index_info(appliance, repo)
    )


@router.post("/repositories/{repo_id}/index")
async def reindex(
    repo_id: int, request: Request, appliance: ApplianceDep, _user: AdminUser, _csrf: CsrfChecked
) -> Response:
    form = await read_form(request)
    with appliance.db.session() as session:
        repo = repo_store.get_repository(session, repo_id)
    token = _token(appliance, repo)
    started = appliance.index.refresh_in_background(
        repo.name, repo.clone_url, repo.default_branch, token=token, full=form.get("full") == "1"
    )
    if not started:
        raise Conflict(f"{repo.name} is being indexed already; wait for it to finish.")
    return redirect(request, f"/repositories/{repo_id}")


def _token(appliance: ApplianceDep, repo: Repository) -> str | None:
    stored = (repo.settings or {}).get(TOKEN_KEY)
    return decrypt(stored, _secret(appliance)) if stored else None


def check_access(appliance: ApplianceDep, repo: Repository) -> tuple[bool, str]:
    """GitHub/GitLab: the forge's own access check (token, scope, role, TLS, network — the
    same as ``appliance repo check``); plain git: ``git ls-remote`` through the hardened git
    runner, the token sent as HTTP basic credentials."""
    if repo.forge_kind.value in ("github", "gitlab"):
        from appliance.forges.access import check_repository

        findings = check_repository(appliance.settings, repo)
        ok = bool(findings) and all(f.ok for f in findings)
        return ok, "; ".join(f"{f.what}: {f.message}" for f in findings)
    from appliance.errors import ApplianceError
    from appliance.repos.git import run_git, split_credentials

    try:
        url, credentials = split_credentials(repo.clone_url, token=_token(appliance, repo))
        proc = run_git(
            ["ls-remote", "--heads", "--", url], credentials=credentials, timeout=30, check=False
        )
    except ApplianceError as exc:
        return False, f"git could not read the repository: {exc.message}"
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace").strip()
        return False, f"git could not read the repository: {text[:500]}"
    heads = [ln.split("refs/heads/", 1)[-1] for ln in proc.text.splitlines() if ln.strip()]
    return True, f"Readable: {len(heads)} branch(es)" + (
        f", e.g. {', '.join(heads[:5])}" if heads else ""
    )


@router.post("/repositories/{repo_id}/check")
async def check(
    repo_id: int,
    request: Request,
    appliance: ApplianceDep,
    _user: AdminUser,
    htmx: Htmx,
    _csrf: CsrfChecked,
) -> Response:
    with appliance.db.session() as session:
        repo = repo_store.get_repository(session, repo_id)
    ok, message = await asyncio.to_thread(check_access, appliance, repo)
    if htmx:
        return render(request, "_partials/_check.html", check={"ok": ok, "message": message})
    return _repository_page(request, appliance, repo, check={"ok": ok, "message": message})


@router.post("/repositories/{repo_id}/settings")
async def save_settings(
    repo_id: int, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    form = await read_form(request)
    cron = form.get("nightly_cron").strip()
    test_command = form.get("test_command").strip()
    protected = [p.strip() for p in form.get("protected_paths").splitlines() if p.strip()]
    branches = [p.strip() for p in form.get("protected_branches").splitlines() if p.strip()]
    if cron:
        try:
            check_cron(cron, "The nightly schedule")
        except InvalidInput as exc:
            # stored, a bad line would break the job sync of every repository: refuse it
            # here, with the form as it was sent
            with appliance.db.session() as session:
                repo = repo_store.get_repository(session, repo_id)
            fields = {
                "test_command": form.get("test_command"),
                "protected_paths": form.get("protected_paths"),
                "protected_branches": form.get("protected_branches"),
                "plan_approval": form.get("plan_approval") == "1",
                "nightly_cron": form.get("nightly_cron"),
                "clone_url": form.get("clone_url"),
                "default_branch": form.get("default_branch"),
            }
            return _repository_page(
                request,
                appliance,
                repo,
                fields=fields,
                field_errors={"nightly_cron": exc.message},
                status_code=422,
            )

    def write() -> None:
        with appliance.db.write() as session:
            repo = repo_store.get_repository(session, repo_id)
            settings = dict(repo.settings or {})
            settings.update(
                protected_paths=protected,
                protected_branches=branches,
                plan_approval=form.get("plan_approval") == "1",
                nightly_cron=cron,
            )
            if test_command:
                settings["test_command"] = test_command
            else:  # no key: the test command is detected from the repository's files
                settings.pop("test_command", None)
            token = form.get("token").strip()
            if token:
                settings[TOKEN_KEY] = encrypt(token, _secret(appliance))
            update = RepositoryUpdate(
                clone_url=form.get("clone_url").strip() or None,
                default_branch=form.get("default_branch").strip() or None,
                settings=settings,
            )
            repo_store.update_repository(
                session, repo_id=repo_id, repo_in=update, actor=user.username
            )

    await asyncio.to_thread(write)
    return redirect(request, f"/repositories/{repo_id}")


def detect_test(appliance: ApplianceDep, repo: Repository) -> str:
    """The test command the sandbox would pick for the default branch, in words."""
    from appliance.jobs.checkout import exported_tree
    from sandbox.testrun import detect_test_command

    mirror = appliance.index.mirrors.get(repo.name)
    with exported_tree(mirror, repo.default_branch) as tree:
        found = detect_test_command(tree)
    if found is None:
        return "No test command detected; enter one."
    argv = found.argv if isinstance(found.argv, str) else " ".join(found.argv)
    return f"Detected ({found.framework}): {argv}"


@router.get("/repositories/{repo_id}/detect-test")
async def detect_test_route(
    repo_id: int, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    with appliance.db.session() as session:
        repo = repo_store.get_repository(session, repo_id)
    try:
        text = await asyncio.to_thread(detect_test, appliance, repo)
    except ApplianceError as exc:
        text = f"Cannot detect yet: {exc.message} (index the repository first)."
    return render(request, "_partials/_check.html", check={"ok": True, "message": text})
