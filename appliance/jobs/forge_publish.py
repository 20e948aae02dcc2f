"""Bump branches as GitHub pull requests / GitLab merge requests, and the forges' branch
host for the clean-up.

:class:`ForgeBumpPublisher` keeps one branch per bump group, ``appliance/deps/<key>``
(:func:`appliance.forges.rules.bump_branch`), and one open PR on it:

* the open bump PRs are read back from the forge; each body ends with the marker
  ``<!-- appliance-deps key=... fingerprint=... -->`` that :func:`appliance.deps.render.
  group_body` writes, so the planner knows which bumps are already proposed;
* a newer bump of the same group (the fingerprint changed) lands on the same branch
  and updates the open PR's title and body, with a comment saying what changed: never a
  second PR for the same group;
* the forge rules forbid force-pushing, even for the appliance's own branches. The new
  bump commit sits on the current default branch while the branch holds the old one, so
  the publisher pushes a merge commit with both as parents and the new commit's tree: a
  fast-forward for the forge, and a PR whose diff is exactly the new bump (the merge
  base with the default branch is its newest commit).

A red bump that the repair could not fix is published all the same, as a draft titled
"needs a human", labelled ``needs-human``, with the diagnosis on top of the body.
"""

from __future__ import annotations

import re
from typing import cast

from appliance.config import Settings
from appliance.deps import BumpGroup
from appliance.forges import rules
from appliance.forges.base import BranchForge, Forge, PrRequest, PrState, PullRequest
from appliance.forges.connect import forge_for
from appliance.jobs.errors import JobError
from appliance.repos.git import run_git
from appliance.repos.mirror import GitRepo
from appliance.repos.worktree import Worktree
from appliance.store.models import ForgeKind, Repository

MARKER_RE = re.compile(r"<!-- appliance-deps key=(\S+) fingerprint=(\S+) -->")
LABELS = ("dependencies",)
NEEDS_HUMAN_LABEL = "needs-human"
NEEDS_HUMAN_TITLE = " (needs a human)"

_BRANCH_OPERATIONS = ("open_prs", "pr_for_branch", "branches", "delete_branch")


def publisher_for(settings: Settings, repo: Repository) -> ForgeBumpPublisher | None:
    """PRs/MRs for GitHub/GitLab repositories; None for plain git, whose bumps are pushed
    as branches (:class:`~appliance.jobs.publish.GitBranchPublisher`)."""
    if repo.forge_kind == ForgeKind.git:
        return None
    return ForgeBumpPublisher(branch_forge(forge_for(settings, repo)))


def branch_host_for(settings: Settings, repo: Repository) -> ForgeBranchHost | None:
    """The branch clean-up's view of a GitHub/GitLab repository; None for plain git."""
    if repo.forge_kind == ForgeKind.git:
        return None
    return ForgeBranchHost(branch_forge(forge_for(settings, repo)))


def branch_forge(forge: Forge) -> BranchForge:
    """``forge`` as a :class:`BranchForge`, or a clear error for forges without PRs."""
    if not all(callable(getattr(forge, name, None)) for name in _BRANCH_OPERATIONS):
        raise JobError(
            f"the {forge.kind} forge cannot list pull requests and branches; bump PRs and "
            "the branch clean-up need a GitHub or GitLab forge"
        )
    return cast(BranchForge, forge)


class ForgeBumpPublisher:
    def __init__(self, forge: BranchForge) -> None:
        self.forge = forge

    def open_bump_prs(self, repository: Repository, mirror: GitRepo) -> dict[str, str]:
        found: dict[str, str] = {}
        for pr in self.forge.open_prs(branch_prefix=rules.BUMP_PREFIX):
            marker = MARKER_RE.search(pr.body)
            if marker is None:  # someone else's branch under the prefix, or an edited body
                continue
            key, fingerprint = marker.groups()
            if pr.branch == rules.BUMP_PREFIX + key:
                found.setdefault(key, fingerprint)  # newest first
        return found

    def publish(
        self,
        repository: Repository,
        mirror: GitRepo,
        worktree: Worktree,
        group: BumpGroup,
        *,
        needs_human: str | None,
        evidence: str = "",
    ) -> str:
        branch = rules.bump_branch(group.key)
        commit = mirror.resolve(f"refs/heads/{worktree.branch}")
        with mirror.locked():
            tip = mirror.resolve(f"refs/heads/{branch}") if mirror.has_branch(branch) else None
            head = commit if tip is None else _on_top(mirror, tip, commit, group)
            mirror.git("update-ref", f"refs/heads/{branch}", head)
        self.forge.push(worktree.path, branch)
        title = group.title + (NEEDS_HUMAN_TITLE if needs_human else "")
        body = _body(group, needs_human, evidence)
        existing = self.forge.pr_for_branch(branch)
        pr: PullRequest
        if existing is not None and existing.state == PrState.open:
            pr = self.forge.update_pr(existing.number, title=title, body=body)
            old = MARKER_RE.search(existing.body)
            if old is None or old.group(2) != group.fingerprint:
                self.forge.comment(existing.number, _update_note(group, needs_human))
        else:
            labels = [*LABELS, *([NEEDS_HUMAN_LABEL] if needs_human else [])]
            pr = self.forge.open_pr(
                PrRequest(
                    branch=branch,
                    title=title,
                    body=body,
                    labels=labels,
                    draft=bool(needs_human),
                    changed_files=sorted({str(b.dep.file) for b in group.bumps}),
                )
            )
        state = "needs human" if needs_human else "ready"
        return f"{pr.url} ({state})"

    def retire(self, repository: Repository, mirror: GitRepo, key: str, reason: str) -> str:
        branch = rules.bump_branch(key)
        pr = self.forge.pr_for_branch(branch)
        if pr is None or pr.state != PrState.open:
            return f"{branch}: no open pull request"
        self.forge.comment(pr.number, reason)
        closed = self.forge.close_pr(pr.number)
        return f"{closed.url} (closed)"  # the branch goes with the nightly clean-up

    def close(self) -> None:
        self.forge.close()


class ForgeBranchHost:
    """The appliance branches of a GitHub/GitLab repository, for the nightly clean-up."""

    def __init__(self, forge: BranchForge) -> None:
        self.forge = forge

    def appliance_branches(self) -> list[str]:
        return self.forge.branches(rules.BRANCH_PREFIX)

    def pr_state(self, branch: str) -> PrState | None:
        pr = self.forge.pr_for_branch(branch)
        return pr.state if pr is not None else None

    def delete_branch(self, branch: str) -> None:
        self.forge.delete_branch(branch)

    def close(self) -> None:
        self.forge.close()


def _on_top(mirror: GitRepo, tip: str, commit: str, group: BumpGroup) -> str:
    """A commit that the forge takes as a fast-forward of ``tip`` and whose tree is
    ``commit``'s (see the module docstring); ``commit`` itself when it already is one."""
    if (
        tip == commit
        or mirror.git("merge-base", "--is-ancestor", tip, commit, check=False).returncode == 0
    ):
        return commit
    message = (
        f"{group.title}\n\nReplaces the previous bump on this branch with the bumps above, "
        "on top of the current default branch.\n"
    )
    # the committer is the bump commit's own (the job's identity)
    who = mirror.git("log", "-1", "--format=%an%x00%ae", commit).text.split("\0")
    identity = {
        "GIT_AUTHOR_NAME": who[0],
        "GIT_AUTHOR_EMAIL": who[1],
        "GIT_COMMITTER_NAME": who[0],
        "GIT_COMMITTER_EMAIL": who[1],
    }
    args = ["commit-tree", f"{commit}^{{tree}}", "-p", tip, "-p", commit, "-m", message]
    return run_git(args, git_dir=mirror.path, env=identity).text.strip()


def _body(group: BumpGroup, needs_human: str | None, evidence: str) -> str:
    parts = []
    if needs_human:
        parts.append(
            "> **Needs a human.** The tests fail with these bumps and the agent's repair did "
            "not make them pass. Its diagnosis:\n\n" + _quote(needs_human) + "\n"
        )
    body = group.body
    marker = MARKER_RE.search(body)
    tail = ""
    if marker is not None:  # the marker stays last, where people do not read it
        body, tail = body[: marker.start()].rstrip() + "\n", marker.group(0) + "\n"
    parts.append(body)
    if evidence.strip():
        parts.append("### Tests\n\n" + evidence.strip() + "\n")
    return "\n".join([*parts, tail]).rstrip() + "\n"


def _update_note(group: BumpGroup, needs_human: str | None) -> str:
    versions = ", ".join(f"{b.dep.name} {b.from_version} → {b.to_version}" for b in group.bumps)
    state = "the tests still fail (needs a human)" if needs_human else "the tests pass"
    return f"Updated by the nightly dependency job: now {versions}; {state}."


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines())
