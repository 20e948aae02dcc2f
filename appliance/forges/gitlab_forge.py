"""GitLab (gitlab.com or self-managed) via python-gitlab.

One :class:`gitlab.Gitlab` client per forge over a :class:`requests.Session` of our
own: it carries the proxy, and a response hook that remembers the last response's
headers (python-gitlab's exceptions do not keep them, and ``Retry-After`` /
``RateLimit-Reset`` are needed). python-gitlab's own rate-limit sleeping is switched off
on every call (``obey_rate_limit=False``) so :class:`~appliance.forges.retry.Retrier`
decides, as for GitHub.

The project is addressed by its path (``group/sub/project``) or numeric id; then by id.
Requests made (documented REST endpoints under ``/api/v4``): ``GET /projects/{id}``,
``/languages``, ``/protected_branches``, ``/repository/files/{CODEOWNERS}/raw?ref=``,
``GET /users?username=``, ``POST /merge_requests``, ``GET/PUT
/merge_requests/{iid}``, ``GET/POST /merge_requests/{iid}/notes``,
``GET /pipelines?ref=``; for the nightly bumps and the branch clean-up ``GET
/merge_requests?state=&source_branch=``, ``GET /repository/branches?search=^prefix`` and
``DELETE /repository/branches/{branch}``.

Drafts are marked with the ``Draft:`` title prefix, as GitLab documents.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import gitlab
import requests
from gitlab.v4.objects import Project, ProjectMergeRequest

from appliance.forges import ci, rules
from appliance.forges.base import (
    CiCheck,
    CiStatus,
    CloneSource,
    PrRequest,
    PrState,
    PullRequest,
    RepoMetadata,
    ReviewFeedback,
)
from appliance.forges.boundary import Where, map_gitlab_errors
from appliance.forges.codeowners import CodeOwners, parse_codeowners
from appliance.forges.common import ForgeCore
from appliance.forges.errors import ForgeError, ForgeNotFound
from appliance.forges.settings import ForgeSettings

T = TypeVar("T")

CODEOWNERS_PATHS = ("CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")
NO_LIBRARY_RETRY: dict[str, Any] = {"obey_rate_limit": False}
_STATES = {"opened": PrState.open, "merged": PrState.merged}


class GitLabForge(ForgeCore):
    kind = "gitlab"

    def __init__(self, settings: ForgeSettings, repository: str, **kwargs: Any) -> None:
        super().__init__(settings, repository, **kwargs)
        self._local = threading.local()
        self._session = requests.Session()
        if settings.proxy_url:
            self._session.proxies = {"http": settings.proxy_url, "https": settings.proxy_url}
            # requests lets HTTPS_PROXY & co. win over session.proxies: the repository's
            # own proxy must win, so the environment is not consulted at all
            self._session.trust_env = False
        self._session.hooks["response"].append(self._remember)
        self._gl = gitlab.Gitlab(
            url=settings.api_url(),
            private_token=settings.token_value(),
            ssl_verify=settings.tls_verify(),
            timeout=settings.timeout,
            retry_transient_errors=False,
            per_page=100,
            session=self._session,
        )
        self._project: Project | None = None

    # --- plumbing -----------------------------------------------------------------
    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.headers = dict(response.headers)

    def _last_headers(self) -> Mapping[str, str]:
        headers: Mapping[str, str] = getattr(self._local, "headers", {})
        return headers

    def _call(self, action: str, op: Callable[[], T], *, idempotent: bool = True) -> T:
        where = Where("GitLab", self.settings.api_url(), action, self.settings.timeout)

        def attempt() -> T:
            self._local.headers = {}
            with map_gitlab_errors(
                where,
                headers=self._last_headers,
                clock=self._clock,
                insecure=not self.settings.verify_tls,
            ):
                return op()

        return self._retrier.run(attempt, idempotent=idempotent)

    def _proj(self) -> Project:
        if self._project is None:
            self._project = self._call(
                f"read the project {self.repository}",
                lambda: self._gl.projects.get(self.repository, **NO_LIBRARY_RETRY),
            )
        return self._project

    def _mr(self, iid: int) -> ProjectMergeRequest:
        project = self._proj()
        return self._call(
            f"read merge request !{iid}",
            lambda: project.mergerequests.get(iid, **NO_LIBRARY_RETRY),
        )

    # --- metadata -----------------------------------------------------------------
    def _fetch_metadata(self) -> RepoMetadata:
        self._project = None
        project = self._proj()
        languages = self._call("read the languages", lambda: project.languages(**NO_LIBRARY_RETRY))
        protected = self._call(
            "list the protected branches",
            lambda: project.protectedbranches.list(get_all=True, **NO_LIBRARY_RETRY),
        )
        return RepoMetadata(
            full_name=str(project.path_with_namespace),
            default_branch=str(project.default_branch),
            web_url=str(project.web_url),
            clone_url=str(project.http_url_to_repo),
            languages=(
                {str(k): float(v) for k, v in languages.items()}
                if isinstance(languages, dict)
                else {}
            ),
            protected_branches=tuple(str(b.name) for b in protected),
            codeowners=self._codeowners(project),
        )

    def _codeowners(self, project: Project) -> CodeOwners:
        for path in CODEOWNERS_PATHS:

            def read(p: str = path) -> Any:
                return project.files.raw(
                    file_path=p, ref=project.default_branch, **NO_LIBRARY_RETRY
                )

            try:
                raw = self._call(f"read {path}", read)
            except ForgeNotFound:
                continue
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return parse_codeowners(text)
        return CodeOwners()

    def clone_source(self) -> CloneSource:
        return CloneSource(
            url=self.metadata().clone_url, token=self.settings.token, username="oauth2"
        )

    # --- merge requests -----------------------------------------------------------
    def _user_ids(self, names: list[str], warnings: list[str]) -> list[int]:
        ids: list[int] = []
        for name in names:

            def lookup(n: str = name) -> Any:
                return self._gl.users.list(username=n, **NO_LIBRARY_RETRY)

            try:
                found = self._call(f"look up the user {name}", lookup)
            except ForgeError as exc:
                warnings.append(f"reviewer {name} not requested: {exc.message}")
                continue
            if found:
                ids.append(int(found[0].id))
            else:  # a group or an e-mail address: GitLab reviewers are users
                warnings.append(f"reviewer {name} not requested: no GitLab user of that name")
        return ids

    def open_pr(self, request: PrRequest) -> PullRequest:
        self._check_quota(request.requested_by)
        rules.validate_branch_name(request.branch)
        meta = self.metadata()
        project = self._proj()
        warnings: list[str] = []
        owners = [*meta.codeowners.owners_for(request.changed_files), *request.reviewers]
        names = sorted({o.lstrip("@") for o in owners if o.startswith("@")})
        data: dict[str, Any] = {
            "source_branch": request.branch,
            "target_branch": meta.default_branch,
            "title": ("Draft: " + request.title) if request.draft else request.title,
            "description": request.body,
            "remove_source_branch": False,
        }
        if request.labels:
            data["labels"] = ",".join(request.labels)
        reviewer_ids = self._user_ids(names, warnings)
        if reviewer_ids:
            data["reviewer_ids"] = reviewer_ids
        mr = self._call(
            f"open the merge request for {request.branch}",
            lambda: project.mergerequests.create(data, **NO_LIBRARY_RETRY),
            idempotent=False,
        )
        return _record(mr, tuple(warnings))

    def update_pr(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        mr = self._mr(number)
        if title is not None:
            mr.title = title
        if body is not None:
            mr.description = body
        if title is not None or body is not None:
            self._call(f"update merge request !{number}", lambda: mr.save(**NO_LIBRARY_RETRY))
        return _record(mr)

    def comment(self, number: int, body: str) -> None:
        project = self._proj()
        mr = project.mergerequests.get(number, lazy=True)
        self._call(
            f"comment on merge request !{number}",
            lambda: mr.notes.create({"body": body}, **NO_LIBRARY_RETRY),
            idempotent=False,
        )

    def review_comments(
        self, number: int, *, since: datetime | None = None
    ) -> list[ReviewFeedback]:
        """Human notes on the MR (diff notes carry path and line), oldest first."""
        mr = self._mr(number)
        branch = str(mr.source_branch)
        notes = self._call(
            f"read the notes of merge request !{number}",
            lambda: mr.notes.list(
                get_all=True, sort="asc", order_by="created_at", **NO_LIBRARY_RETRY
            ),
        )
        found: list[ReviewFeedback] = []
        for note in notes:
            attrs = note.attributes
            if attrs.get("system"):
                continue
            created = _parse_time(attrs.get("created_at"))
            if since is not None and created is not None and created <= _utc(since):
                continue
            position = attrs.get("position") or {}
            found.append(
                ReviewFeedback(
                    pr_number=number,
                    branch=branch,
                    author=str((attrs.get("author") or {}).get("username", "")),
                    body=str(attrs.get("body", "")),
                    path=position.get("new_path") or position.get("old_path"),
                    line=position.get("new_line") or position.get("old_line"),
                    created_at=created,
                )
            )
        return found

    def close_pr(self, number: int) -> PullRequest:
        mr = self._mr(number)
        mr.state_event = "close"
        self._call(f"close merge request !{number}", lambda: mr.save(**NO_LIBRARY_RETRY))
        return _record(mr)

    # --- branches and the MRs opened from them -----------------------------------
    def open_prs(self, *, branch_prefix: str) -> list[PullRequest]:
        project = self._proj()

        def read() -> list[PullRequest]:
            mrs = project.mergerequests.list(
                state="opened",
                order_by="created_at",
                sort="desc",
                iterator=True,
                **NO_LIBRARY_RETRY,
            )
            return [_record(m) for m in mrs if str(m.source_branch).startswith(branch_prefix)]

        return self._call(f"list the open merge requests of {branch_prefix}*", read)

    def pr_for_branch(self, branch: str) -> PullRequest | None:
        project = self._proj()

        def read() -> PullRequest | None:
            mrs = project.mergerequests.list(
                source_branch=branch,
                state="all",
                order_by="created_at",
                sort="desc",
                get_all=False,
                per_page=20,
                **NO_LIBRARY_RETRY,
            )
            for mr in mrs:
                if str(mr.source_branch) == branch:
                    return _record(mr)
            return None

        return self._call(f"find the merge request of {branch}", read)

    def branches(self, prefix: str) -> list[str]:
        project = self._proj()

        def read() -> list[str]:
            found = project.branches.list(search=f"^{prefix}", iterator=True, **NO_LIBRARY_RETRY)
            return [str(b.name) for b in found if str(b.name).startswith(prefix)]

        return self._call(f"list the branches {prefix}*", read)

    def _delete_branch(self, branch: str) -> None:
        project = self._proj()
        self._call(
            f"delete the branch {branch}",
            lambda: project.branches.delete(branch, **NO_LIBRARY_RETRY),
        )

    # --- CI -----------------------------------------------------------------------
    def ci_status(self, ref: str) -> CiStatus:
        project = self._proj()
        pipelines = self._call(
            f"read the pipelines of {ref}",
            lambda: project.pipelines.list(
                ref=ref,
                order_by="id",
                sort="desc",
                per_page=1,
                get_all=False,
                **NO_LIBRARY_RETRY,
            ),
        )
        checks = [
            CiCheck(f"pipeline #{p.id}", ci.pipeline_state(p.status), p.attributes.get("web_url"))
            for p in list(pipelines)[:1]
        ]
        return ci.combine(ref, checks)

    def close(self) -> None:
        self._gl.session.close()


def _record(mr: Any, warnings: tuple[str, ...] = ()) -> PullRequest:
    attrs = mr.attributes
    return PullRequest(
        number=int(attrs["iid"]),
        url=str(attrs.get("web_url", "")),
        state=_STATES.get(str(attrs.get("state")), PrState.closed),
        branch=str(attrs.get("source_branch", "")),
        draft=bool(attrs.get("draft") or attrs.get("work_in_progress")),
        warnings=warnings,
        body=str(attrs.get("description") or ""),
        title=str(attrs.get("title") or ""),
    )


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
