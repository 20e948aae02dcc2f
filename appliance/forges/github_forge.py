"""GitHub (github.com or Enterprise Server at ``https://ghe.example/api/v3``) via PyGithub.

One :class:`github.Github` client per forge, with PyGithub's own retries and write
throttling switched off: :class:`~appliance.forges.retry.Retrier` decides about
retries, so a rate limit is honoured the same way on every forge. Every call goes
through :meth:`GitHubForge._call` → ``map_github_errors``; PyGithub objects never leave
this module, only the records of :mod:`appliance.forges.base`.

Requests made (all documented REST endpoints): ``GET /repos/{o}/{r}``, ``/languages``,
``/branches?protected=true``, ``/contents/{.github/,,docs/}CODEOWNERS``, ``POST
/pulls``, ``/pulls/{n}/requested_reviewers``, ``/issues/{n}/labels``,
``/issues/{n}/comments``, ``GET/PATCH /pulls/{n}``, ``GET /pulls/{n}/comments?since=``,
``/issues/{n}/comments?since=``, ``/commits/{ref}``, ``/commits/{sha}/check-runs``,
``/commits/{sha}/status``; for the nightly bumps and the branch clean-up ``GET
/pulls?state=&head=``, ``GET /git/matching-refs/heads/{prefix}`` and ``DELETE
/git/refs/heads/{branch}``.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import github
from github import Auth
from github.GitRef import GitRef
from github.PaginatedList import PaginatedList
from github.PullRequest import PullRequest as GhPull
from github.Repository import Repository

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
from appliance.forges.boundary import Where, map_github_errors
from appliance.forges.codeowners import CodeOwners, parse_codeowners
from appliance.forges.common import ForgeCore
from appliance.forges.errors import ForgeError, ForgeNotFound
from appliance.forges.settings import ForgeSettings

T = TypeVar("T")

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


class GitHubForge(ForgeCore):
    kind = "github"

    def __init__(self, settings: ForgeSettings, repository: str, **kwargs: Any) -> None:
        super().__init__(settings, repository, **kwargs)
        token = settings.token_value()
        self._gh = github.Github(
            base_url=settings.api_url(),
            auth=Auth.Token(token) if token else None,
            timeout=max(1, math.ceil(settings.timeout)),  # PyGithub insists on an int
            verify=settings.tls_verify(),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            per_page=100,
        )
        # PyGithub has no proxy option and rounds the timeout; its connection (one
        # requests session, kept for the client's life) is made now and adjusted.
        connection = getattr(self._gh.requester, "_Requester__createConnection")()  # noqa: B009
        connection.timeout = settings.timeout
        if settings.proxy_url:
            connection.session.proxies = {"http": settings.proxy_url, "https": settings.proxy_url}
            # requests lets HTTPS_PROXY & co. win over session.proxies: the repository's
            # own proxy must win, so the environment is not consulted at all
            connection.session.trust_env = False
        self._repo: Repository | None = None

    # --- plumbing -----------------------------------------------------------------
    def _call(self, action: str, op: Callable[[], T], *, idempotent: bool = True) -> T:
        where = Where("GitHub", self.settings.api_url(), action, self.settings.timeout)

        def attempt() -> T:
            with map_github_errors(where, clock=self._clock, insecure=not self.settings.verify_tls):
                return op()

        return self._retrier.run(attempt, idempotent=idempotent)

    def _repository(self) -> Repository:
        if self._repo is None:
            self._repo = self._call(
                f"read the repository {self.repository}", lambda: self._gh.get_repo(self.repository)
            )
        return self._repo

    def _pull(self, number: int) -> GhPull:
        repo = self._repository()
        return self._call(f"read pull request #{number}", lambda: repo.get_pull(number))

    # --- metadata -----------------------------------------------------------------
    def _fetch_metadata(self) -> RepoMetadata:
        self._repo = None
        repo = self._repository()

        def protected() -> list[str]:
            _, data = self._gh.requester.requestJsonAndCheck(
                "GET", f"{repo.url}/branches", parameters={"protected": "true", "per_page": 100}
            )
            return [str(b["name"]) for b in data] if isinstance(data, list) else []

        return RepoMetadata(
            full_name=repo.full_name,
            default_branch=repo.default_branch,
            web_url=repo.html_url,
            clone_url=repo.clone_url,
            languages={
                name: size
                for name, size in self._call("read the languages", repo.get_languages).items()
                if isinstance(size, int)  # PyGithub adds the request's "url"
            },
            protected_branches=tuple(self._call("list the protected branches", protected)),
            codeowners=self._codeowners(repo),
        )

    def _codeowners(self, repo: Repository) -> CodeOwners:
        for path in CODEOWNERS_PATHS:

            def read(p: str = path) -> Any:
                return repo.get_contents(p, ref=repo.default_branch)

            try:
                content = self._call(f"read {path}", read)
            except ForgeNotFound:
                continue
            if isinstance(content, list):  # a directory of that name
                continue
            return parse_codeowners(content.decoded_content.decode("utf-8", "replace"))
        return CodeOwners()

    def clone_source(self) -> CloneSource:
        return CloneSource(
            url=self.metadata().clone_url, token=self.settings.token, username="x-access-token"
        )

    # --- pull requests ------------------------------------------------------------
    def open_pr(self, request: PrRequest) -> PullRequest:
        self._check_quota(request.requested_by)
        rules.validate_branch_name(request.branch)
        meta = self.metadata()
        repo = self._repository()
        pull = self._call(
            f"open the pull request for {request.branch}",
            lambda: repo.create_pull(
                base=meta.default_branch,
                head=request.branch,
                title=request.title,
                body=request.body,
                draft=request.draft,
            ),
            idempotent=False,
        )
        warnings: list[str] = []
        if request.labels:
            try:
                self._call("add labels", lambda: pull.add_to_labels(*request.labels))
            except ForgeError as exc:
                warnings.append(f"labels not added: {exc.message}")
        owners = [*meta.codeowners.owners_for(request.changed_files), *request.reviewers]
        users = sorted({o.lstrip("@") for o in owners if "/" not in o and "@" not in o[1:]})
        teams = sorted({o.split("/", 1)[1] for o in owners if o.startswith("@") and "/" in o})
        if users or teams:
            try:
                self._call(
                    "request reviewers",
                    lambda: pull.create_review_request(reviewers=users, team_reviewers=teams),
                )
            except ForgeError as exc:
                warnings.append(f"reviewers not requested: {exc.message}")
        return _record(pull, tuple(warnings))

    def update_pr(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        pull = self._pull(number)
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = title
        if body is not None:
            changes["body"] = body
        if changes:
            self._call(f"update pull request #{number}", lambda: pull.edit(**changes))
        return _record(pull)

    def comment(self, number: int, body: str) -> None:
        pull = self._pull(number)
        self._call(
            f"comment on pull request #{number}",
            lambda: pull.create_issue_comment(body),
            idempotent=False,
        )

    def review_comments(
        self, number: int, *, since: datetime | None = None
    ) -> list[ReviewFeedback]:
        """Inline review comments and conversation comments, oldest first."""
        pull = self._pull(number)
        branch = pull.head.ref

        def collect() -> list[ReviewFeedback]:
            found: list[ReviewFeedback] = []
            inline = pull.get_review_comments(since=since) if since else pull.get_review_comments()
            for c in inline:
                found.append(
                    ReviewFeedback(
                        number, branch, c.user.login, c.body, c.path, c.line, _utc(c.created_at)
                    )
                )
            for ic in pull.get_issue_comments():  # filtered by ``since`` below
                found.append(
                    ReviewFeedback(
                        number, branch, ic.user.login, ic.body, None, None, _utc(ic.created_at)
                    )
                )
            return found

        found = self._call(f"read the comments of pull request #{number}", collect)
        if since is not None:
            found = [f for f in found if f.created_at is None or f.created_at > _utc(since)]
        return sorted(found, key=lambda f: f.created_at or datetime.min.replace(tzinfo=UTC))

    def close_pr(self, number: int) -> PullRequest:
        pull = self._pull(number)
        self._call(f"close pull request #{number}", lambda: pull.edit(state="closed"))
        return _record(pull)

    # --- branches and the PRs opened from them -----------------------------------
    def open_prs(self, *, branch_prefix: str) -> list[PullRequest]:
        repo = self._repository()

        def read() -> list[PullRequest]:
            pulls = repo.get_pulls(state="open", sort="created", direction="desc")
            return [_record(p) for p in pulls if p.head.ref.startswith(branch_prefix)]

        return self._call(f"list the open pull requests of {branch_prefix}*", read)

    def pr_for_branch(self, branch: str) -> PullRequest | None:
        repo = self._repository()
        owner = repo.full_name.split("/", 1)[0]

        def read() -> PullRequest | None:
            pulls = repo.get_pulls(
                state="all", head=f"{owner}:{branch}", sort="created", direction="desc"
            )
            for pull in pulls:
                if pull.head.ref == branch:  # GitHub filters already; be sure
                    return _record(pull)
            return None

        return self._call(f"find the pull request of {branch}", read)

    def branches(self, prefix: str) -> list[str]:
        repo = self._repository()
        # PyGithub's get_git_matching_refs percent-encodes the slashes of the prefix
        url = f"{repo.url}/git/matching-refs/heads/{urllib.parse.quote(prefix, safe='/')}"

        def read() -> list[str]:
            refs = PaginatedList(GitRef, self._gh.requester, url, None)
            return [r.ref.removeprefix("refs/heads/") for r in refs]

        return self._call(f"list the branches {prefix}*", read)

    def _delete_branch(self, branch: str) -> None:
        repo = self._repository()
        url = f"{repo.url}/git/refs/heads/{urllib.parse.quote(branch, safe='/')}"
        self._call(
            f"delete the branch {branch}",
            lambda: self._gh.requester.requestJsonAndCheck("DELETE", url),
        )

    # --- CI -----------------------------------------------------------------------
    def ci_status(self, ref: str) -> CiStatus:
        repo = self._repository()

        def read() -> list[CiCheck]:
            commit = repo.get_commit(ref)
            checks = [
                CiCheck(run.name, ci.check_run_state(run.status, run.conclusion), run.html_url)
                for run in commit.get_check_runs()
            ]
            combined = commit.get_combined_status()
            checks += [
                CiCheck(s.context, ci.commit_status_state(s.state), s.target_url)
                for s in combined.statuses
            ]
            return checks

        return ci.combine(ref, self._call(f"read the CI status of {ref}", read))

    def close(self) -> None:
        self._gh.close()


def _record(pull: GhPull, warnings: tuple[str, ...] = ()) -> PullRequest:
    if pull.merged:
        state = PrState.merged
    elif pull.state == "closed":
        state = PrState.closed
    else:
        state = PrState.open
    return PullRequest(
        number=pull.number,
        url=pull.html_url,
        state=state,
        branch=pull.head.ref,
        draft=bool(pull.draft),
        warnings=warnings,
        body=pull.body or "",
        title=pull.title or "",
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
