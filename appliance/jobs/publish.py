"""Publishing bump branches to a plain git remote (no server, so no PR: the branch is it).

:class:`GitBranchPublisher` pushes the job's commit to ``refs/heads/deps/<key>`` of the
repository's remote. The fingerprint of the bumps is a trailer of the commit message
(``Bump-Fingerprint: ...``), so the open "PRs" are read back from the mirror (which
fetches every remote branch): a ``deps/<key>`` branch whose tip carries a fingerprint.

A branch already on the remote is replaced only with ``--force-with-lease`` naming the
tip the mirror saw: ``deps/*`` branches are written by this job alone, and a branch
someone else moved since is left alone (the push fails and the run says so).
"""

from __future__ import annotations

from appliance.deps import BumpGroup
from appliance.repos.git import NETWORK_TIMEOUT, run_git
from appliance.repos.mirror import GitRepo
from appliance.repos.worktree import Worktree
from appliance.store.models import Repository

FINGERPRINT_TRAILER = "Bump-Fingerprint"
NEEDS_HUMAN_TRAILER = "Needs-Human"


class GitBranchPublisher:
    def open_bump_prs(self, repository: Repository, mirror: GitRepo) -> dict[str, str]:
        out = mirror.git(
            "for-each-ref",
            f"--format=%(refname:lstrip=3)%00%(trailers:key={FINGERPRINT_TRAILER},valueonly)",
            "refs/heads/deps/",
        ).text
        found = {}
        for line in out.splitlines():
            key, _, fingerprint = line.partition("\0")
            if key and fingerprint.strip():
                found[key] = fingerprint.strip()
        return found

    def publish(
        self,
        repository: Repository,
        mirror: GitRepo,
        worktree: Worktree,
        group: BumpGroup,
        *,
        needs_human: str | None,
        evidence: str = "",  # no PR to show it in: the job run's details keep it
    ) -> str:
        commit = mirror.resolve(f"refs/heads/{worktree.branch}")
        target = f"refs/heads/{group.branch}"
        lease = []
        if mirror.has_branch(group.branch):
            lease = [f"--force-with-lease={target}:{mirror.resolve(target)}"]
        run_git(
            ["push", "--quiet", "--no-verify", *lease, repository.clone_url, f"{commit}:{target}"],
            git_dir=mirror.path,
            timeout=NETWORK_TIMEOUT,
        )
        state = "needs human" if needs_human else "ready"
        return f"{repository.clone_url} {group.branch} ({state})"

    def retire(self, repository: Repository, mirror: GitRepo, key: str, reason: str) -> str:
        # A plain remote has no PR to close and the branch may hold someone's review
        # notes: it is left, and the run says so.
        return f"{repository.clone_url} deps/{key} left in place (no longer needed)"

    def close(self) -> None:
        return None
