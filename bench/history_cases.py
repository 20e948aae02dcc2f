"""Localization cases from a repository's own history, for ``bench/localization.py``.

    .venv/bin/python bench/history_cases.py REPO --out cases.jsonl --worktrees DIR \\
        [--max 40] [--rev REV]

For each non-merge commit that modified existing source files, the case is: the commit
message as the request, the modified (not added) source files as the gold files, and a
checkout of the parent commit (a detached worktree under DIR) as the repository. A commit
message says what changed rather than what is wrong, so it is an easier request than an
issue report; it is still real text about real code. The last ``--max`` such commits up to
``--rev`` (default HEAD) are taken, and only their worktrees are made.

The case set the appliance is developed against is this project's own history; its
worktrees cannot be committed, so it is regenerated (the same commits give the same cases;
pin ``--rev`` to the commit named in ``bench/cases/README.md`` to get exactly that set):

    git clone -q /path/to/this/project /tmp/hist
    .venv/bin/python bench/history_cases.py /tmp/hist --out /tmp/cases.jsonl \\
        --worktrees /tmp/hist-worktrees --max 40
    .venv/bin/python bench/localization.py --cases /tmp/cases.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
from dataclasses import dataclass

from bench.repos import git

SOURCE = (".py", ".js", ".ts", ".tsx", ".go", ".java")


@dataclass(frozen=True)
class Candidate:
    parent: str
    message: str
    gold: list[str]


def candidates(repo: Path, rev: str, max_gold: int) -> list[Candidate]:
    """The commits that make a case, oldest first (reading git only, making nothing)."""
    commits = git("rev-list", "--no-merges", "--reverse", rev, cwd=repo).split()
    found = []
    for commit in commits[1:]:
        parent = git("rev-parse", f"{commit}^", cwd=repo)
        changes = git("diff", "--name-status", "--no-renames", parent, commit, cwd=repo)
        modified = [line[2:] for line in changes.splitlines() if line.startswith("M\t")]
        gold = [p for p in modified if p.endswith(SOURCE) and "/tests/" not in f"/{p}"]
        if not gold or len(gold) > max_gold:
            continue
        message = git("log", "-1", "--format=%B", commit, cwd=repo).strip()
        found.append(Candidate(parent, message, gold))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--worktrees", type=Path, required=True)
    parser.add_argument("--max", type=int, default=40, help="At most this many cases.")
    parser.add_argument("--max-gold", type=int, default=6, help="Skip commits touching more.")
    parser.add_argument("--rev", default="HEAD", help="The newest commit to take cases from.")
    args = parser.parse_args()
    repo = args.repo.resolve()
    chosen = candidates(repo, args.rev, args.max_gold)[-args.max :] if args.max > 0 else []
    cases = []
    for case in chosen:  # worktrees only for the cases kept
        worktree = args.worktrees.resolve() / case.parent[:12]
        if not worktree.exists():
            git("worktree", "add", "--detach", "-q", str(worktree), case.parent, cwd=repo)
        cases.append({"repo_dir": str(worktree), "query": case.message, "gold_files": case.gold})
    args.out.write_text("".join(json.dumps(c) + "\n" for c in cases))
    print(f"wrote {len(cases)} case(s) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
