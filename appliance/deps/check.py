"""``appliance deps check REPO``: a dry-run report of what tonight's bump would do.

:func:`check` scans the worktree, plans with the policy and the configured indexes and
renders plain text: the planned groups (key, branch, whether an open PR would be opened,
updated or left as is) with each bump, then every dependency not bumped, grouped by
reason (ignored, too young, update type not allowed, ...), then the manifest lines the
engine does not handle. Nothing is written and only the configured indexes are asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from appliance.deps.index import PackageIndex
from appliance.deps.manifests import scan_worktree
from appliance.deps.model import Ecosystem
from appliance.deps.plan import BumpGroup, Skip, SkipKind, plan
from appliance.deps.policy import BumpPolicy

SKIP_HEADINGS: dict[SkipKind, str] = {
    "ignored": "Ignored by the policy",
    "too_young": "Too young (minimum release age)",
    "update_type": "Update type not allowed",
    "max_open_prs": "Deferred: too many open bump PRs",
    "not_found": "Not on the package index",
    "no_index": "No package index configured",
    "unrewritable": "Spec cannot be rewritten",
    "already_admitted": "Range already admits the newest version",
    "frozen": "Listed, never bumped",
    "no_version": "No version to compare with",
    "up_to_date": "Up to date",
}
_ACTIONS = {"open": "new PR", "update": "updates the open PR", "unchanged": "open PR is current"}


def check(
    worktree: Path,
    policy: BumpPolicy,
    indexes: Mapping[Ecosystem, PackageIndex],
    *,
    now: datetime | None = None,
    open_prs: Mapping[str, str] | None = None,
) -> str:
    scan = scan_worktree(worktree)
    result = plan(scan.dependencies, indexes, policy, now or datetime.now(UTC), open_prs=open_prs)
    files = {d.file for d in scan.dependencies}
    lines = [
        f"Dependency check of {worktree}",
        f"policy: update types {', '.join(sorted(policy.update_types))}; grouping "
        f"{policy.grouping}; strategy {policy.range_strategy}; minimum age "
        f"{policy.min_release_age_days:g} days; at most {policy.max_open_prs} open PRs",
        f"{len(scan.dependencies)} dependencies in {len(files)} manifests",
        "",
        f"Planned bump PRs: {len(result.groups)}",
    ]
    for group in result.groups:
        lines += _group_lines(group)
    by_kind: dict[SkipKind, list[Skip]] = {}
    for skip in result.skipped:
        by_kind.setdefault(skip.kind, []).append(skip)
    for kind, heading in SKIP_HEADINGS.items():
        skips = by_kind.get(kind)
        if not skips:
            continue
        lines += ["", f"{heading}: {len(skips)}"]
        lines += [f"  - {_skip_line(skip)}" for skip in skips]
    if result.obsolete:
        lines += [
            "",
            "Open bump PRs no longer planned (may be closed): " + ", ".join(result.obsolete),
        ]
    if scan.notes:
        lines += ["", f"Not handled: {len(scan.notes)}"]
        lines += [f"  - {n.file}:{n.line} {n.text!r}: {n.reason}" for n in scan.notes]
    return "\n".join(lines) + "\n"


def _group_lines(group: BumpGroup) -> list[str]:
    lines = [f"  {group.title}  [{group.branch}, {_ACTIONS[group.action]}]"]
    for b in group.bumps:
        change = "lockfile only" if b.lock_only else f"{b.dep.spec!r} -> {b.new_spec!r}"
        lines.append(
            f"    - {b.dep.name} {b.from_version} -> {b.to_version} ({b.update_type}) "
            f"{b.dep.file}:{b.dep.location.line} {change}"
        )
        if b.held_back:
            lines.append(f"      newer held back: {b.held_back}")
    return lines


def _skip_line(skip: Skip) -> str:
    if skip.dep is not None:
        dep = skip.dep
        return (
            f"{dep.name} {dep.spec!r} ({dep.file}:{dep.location.line}, {dep.group}): {skip.reason}"
        )
    assert skip.group is not None
    return f"{skip.group.title} [{skip.group.branch}]: {skip.reason}"
