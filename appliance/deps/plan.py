"""Planning: which version each dependency moves to, and how bumps are grouped into PRs.

For each dependency, the candidates are the index's releases newer than the current
version, minus yanked and deprecated ones, minus pre-releases unless the current
version is one. Walking them newest first, the target is the first that the policy
allows (not an ignored ``name@major``, an allowed update type, old enough); when that is
not the newest, the bump says what held the newest back. The spec is then rewritten
with the range strategy; under ``widen`` a spec that already admits the target changes
only the lockfile (a *lock-only* bump) when a lockfile records an older version, and
nothing otherwise. An ecosystem's own refusal comes first (a Go major version is a new
module path; a Maven version of another variant), and a release date the index does not
know counts as too young whenever a minimum age is set (the reason says so, and how to
turn the check off).

**Shared specs.** Maven dependencies that take their version from one property share one
span. They move as one: the target is the newest version that every one of them has and
the policy allows for each; when there is none, all of them are skipped with the reason.
They always land in the same group, named by the property (``maven-jackson.version-…``).

**Groups and keys.** With ``non_major_together`` the patch and minor bumps of one
ecosystem form the group ``<ecosystem>-non-major`` and each major bump is alone in
``<ecosystem>-<package>-major``; with ``none`` every package is ``<ecosystem>-<package>-
<non-major|major>``. Every occurrence of a package (several manifests) moves together.
The key names the package set and the kind of target, never the versions, so it is
stable from night to night and the branch is ``deps/<key>``:

* a newer bump of the same set (2.32.0 yesterday, 2.32.3 tonight; or 3.0 then 4.0)
  has the same key: the open PR's branch is force-updated, not duplicated;
* the ``fingerprint`` hashes the exact edits: same key and same fingerprint as the open
  PR → nothing to do; same key, other fingerprint → update it;
* an open bump PR whose key is no longer planned (the bump landed, a major replaced the
  minor, the package was ignored) is ``obsolete`` and may be closed.

``max_open_prs`` counts the open bump PRs; planned groups that update an open PR are
always kept, new ones are opened non-major first while room is left, the rest deferred.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Literal

from appliance.deps.errors import PackageNotFound
from appliance.deps.index import PackageIndex, PackageInfo, Release
from appliance.deps.model import ECOSYSTEMS, Dependency, Ecosystem
from appliance.deps.policy import BumpPolicy
from appliance.deps.render import group_body, group_title
from appliance.deps.versions import RULES, Rules, UpdateType, Ver, classify

SkipKind = Literal[
    "frozen",
    "ignored",
    "no_version",
    "no_index",
    "not_found",
    "up_to_date",
    "too_young",
    "update_type",
    "unrewritable",
    "already_admitted",
    "max_open_prs",
]
Action = Literal["open", "update", "unchanged"]


@dataclass(frozen=True)
class Bump:
    dep: Dependency
    from_version: str
    to_version: str
    update_type: UpdateType
    release_date: datetime | None
    changelog_url: str | None
    new_spec: str
    held_back: str | None = None  # why the newest version was not taken, if it was not

    @property
    def lock_only(self) -> bool:
        return self.new_spec == self.dep.spec


@dataclass(frozen=True)
class BumpGroup:
    key: str
    ecosystem: Ecosystem
    kind: Literal["non-major", "major"]
    bumps: tuple[Bump, ...]
    title: str
    body: str
    action: Action = "open"

    @property
    def branch(self) -> str:
        return f"deps/{self.key}"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.bumps)

    @property
    def packages(self) -> list[str]:
        return sorted({b.dep.name for b in self.bumps})


@dataclass(frozen=True)
class Skip:
    kind: SkipKind
    reason: str
    dep: Dependency | None = None
    group: BumpGroup | None = None


@dataclass
class Plan:
    groups: list[BumpGroup] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)  # open PR keys no longer planned


def fingerprint(bumps: Iterable[Bump]) -> str:
    lines = sorted(
        f"{b.dep.file}:{b.dep.location.start}:{b.dep.key}:{b.to_version}:{b.new_spec}"
        for b in bumps
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-.")


def plan_bumps(
    deps: Sequence[Dependency],
    index: PackageIndex | Mapping[Ecosystem, PackageIndex],
    policy: BumpPolicy,
    now: datetime,
    *,
    open_prs: Mapping[str, str] | None = None,
) -> list[BumpGroup]:
    """The groups to open or update tonight (see :func:`plan` for skips and reasons)."""
    return plan(deps, index, policy, now, open_prs=open_prs).groups


def plan(
    deps: Sequence[Dependency],
    index: PackageIndex | Mapping[Ecosystem, PackageIndex],
    policy: BumpPolicy,
    now: datetime,
    *,
    open_prs: Mapping[str, str] | None = None,
) -> Plan:
    """Plan bumps for ``deps``. ``open_prs`` maps the keys of open bump PRs to the
    fingerprints they were opened with. Index errors other than a missing package go up."""
    indexes: Mapping[Ecosystem, PackageIndex] = (
        index if isinstance(index, Mapping) else {index.ecosystem: index}
    )
    result = Plan()
    bumps: list[Bump] = []
    infos: _Infos = {}
    spans: dict[tuple[PurePosixPath, int, int], list[Dependency]] = {}
    for dep in deps:
        spans.setdefault((dep.file, dep.location.start, dep.location.end), []).append(dep)
    for members in spans.values():
        if len(members) == 1:
            outcomes = [_plan_one(members[0], indexes, infos, policy, now)]
        else:
            outcomes = _plan_shared(members, indexes, infos, policy, now)
        for outcome in outcomes:
            if isinstance(outcome, Bump):
                bumps.append(outcome)
            else:
                result.skipped.append(outcome)
    groups = _group(bumps, policy)
    _limit(groups, policy, dict(open_prs or {}), result)
    return result


_Infos = dict[tuple[Ecosystem, str], PackageInfo | PackageNotFound]


@dataclass(frozen=True)
class _Prepared:
    """A dependency that has a current version and an index answer, with its candidates."""

    dep: Dependency
    rules: Rules
    current: Ver
    info: PackageInfo
    candidates: list[tuple[Ver, Release]]  # newest first


def _prepare(
    dep: Dependency,
    indexes: Mapping[Ecosystem, PackageIndex],
    infos: _Infos,
    policy: BumpPolicy,
) -> _Prepared | Skip:
    if dep.frozen_reason:
        return Skip("frozen", dep.frozen_reason, dep)
    if policy.ignores_package(dep.ecosystem, dep.key):
        return Skip("ignored", "on the policy's ignore list", dep)
    rules = RULES[dep.ecosystem]
    current = rules.parse(dep.current) if dep.current else None
    if current is None:
        return Skip("no_version", f"no current version in {dep.spec or 'an empty spec'}", dep)
    source = indexes.get(dep.ecosystem)
    if source is None:
        return Skip("no_index", f"no package index configured for {dep.ecosystem}", dep)
    cache_key = (dep.ecosystem, dep.key)
    if cache_key not in infos:
        try:
            infos[cache_key] = source.package(dep.key)
        except PackageNotFound as exc:
            infos[cache_key] = exc
    info = infos[cache_key]
    if isinstance(info, PackageNotFound):
        return Skip("not_found", info.message, dep)
    candidates = sorted(_candidates(info.releases, current, rules.parse), reverse=True)
    if not candidates:
        return Skip("up_to_date", f"{current.text} is the newest usable version", dep)
    return _Prepared(dep, rules, current, info, candidates)


def _plan_one(
    dep: Dependency,
    indexes: Mapping[Ecosystem, PackageIndex],
    infos: _Infos,
    policy: BumpPolicy,
    now: datetime,
) -> Bump | Skip:
    prepared = _prepare(dep, indexes, infos, policy)
    if isinstance(prepared, Skip):
        return prepared
    held_back: tuple[SkipKind, str] | None = None
    for version, release in prepared.candidates:
        refusal = _refusal(prepared, version, release, policy, now)
        if refusal is None:
            return _bump(prepared, version, release, policy, held_back)
        held_back = held_back or (refusal[0], f"{version.text}: {refusal[1]}")
    assert held_back is not None
    return Skip(held_back[0], held_back[1], dep)


def _plan_shared(
    members: list[Dependency],
    indexes: Mapping[Ecosystem, PackageIndex],
    infos: _Infos,
    policy: BumpPolicy,
    now: datetime,
) -> list[Bump | Skip]:
    """Dependencies written in one span: one target that all of them have and may take."""
    via = members[0].via or f"the spec in {members[0].file}:{members[0].location.line}"
    prepared: list[_Prepared] = []
    for dep in members:
        outcome = _prepare(dep, indexes, infos, policy)
        if isinstance(outcome, Skip):
            reason = f"{via} is shared with {dep.name}, which is not bumped: {outcome.reason}"
            return [
                outcome if other is dep else Skip(outcome.kind, reason, other) for other in members
            ]
        prepared.append(outcome)
    versions = {v.text: v for p in prepared for v, _ in p.candidates}
    held_back: tuple[SkipKind, str] | None = None
    for version in sorted(versions.values(), reverse=True):
        releases = _shared_releases(prepared, version, via, policy, now)
        if isinstance(releases, list):
            return [
                _bump(p, version, release, policy, held_back)
                for p, release in zip(prepared, releases, strict=True)
            ]
        held_back = held_back or (releases[0], f"{version.text}: {releases[1]}")
    assert held_back is not None
    return [Skip(held_back[0], held_back[1], dep) for dep in members]


def _shared_releases(
    prepared: list[_Prepared], version: Ver, via: str, policy: BumpPolicy, now: datetime
) -> list[Release] | tuple[SkipKind, str]:
    """Each member's release of ``version``, or why one of them cannot take it."""
    releases: list[Release] = []
    for p in prepared:
        release = next((r for v, r in p.candidates if v.text == version.text), None)
        if release is None:
            return "unrewritable", f"not released for {p.dep.name}, which shares {via}"
        refusal = _refusal(p, version, release, policy, now)
        if refusal is not None:
            return refusal[0], f"{p.dep.name}: {refusal[1]}"
        releases.append(release)
    return releases


def _candidates(
    releases: Iterable[Release], current: Ver, parse: Callable[[str], Ver | None]
) -> Iterable[tuple[Ver, Release]]:
    for release in releases:
        version = parse(release.version)
        if version is None or version <= current:
            continue
        if release.yanked or release.deprecated:
            continue
        if version.prerelease and not current.prerelease:
            continue
        yield version, release


def _refusal(
    prepared: _Prepared,
    version: Ver,
    release: Release,
    policy: BumpPolicy,
    now: datetime,
) -> tuple[SkipKind, str] | None:
    dep = prepared.dep
    pattern = policy.ignores_version(dep.ecosystem, dep.key, version.release[0])
    if pattern is not None:
        return "ignored", f"ignored by {pattern}"
    refuse = prepared.rules.refuse
    reason = refuse(dep.key, prepared.current, version) if refuse else None
    if reason is not None:
        return "update_type", reason
    kind = classify(prepared.current, version)
    if kind not in policy.update_types:
        return "update_type", f"{kind} updates are not allowed by the policy"
    if policy.min_release_age_days > 0:
        uploaded = prepared.info.uploaded(release)
        if uploaded is None:
            return "too_young", (
                "release date unknown (the index gives no upload time); set the policy's "
                "min_release_age_days to 0 to accept versions of unknown age"
            )
        age = now - uploaded
        if age < timedelta(days=policy.min_release_age_days):
            days = age.total_seconds() / 86400
            return "too_young", (
                f"released {days:.1f} days ago, the policy wants {policy.min_release_age_days:g}"
            )
    return None


def _bump(
    prepared: _Prepared,
    target: Ver,
    release: Release,
    policy: BumpPolicy,
    held_back: tuple[SkipKind, str] | None,
) -> Bump | Skip:
    dep, rules, current = prepared.dep, prepared.rules, prepared.current
    new_spec = rules.rewrite(dep.spec, target, policy.range_strategy)
    if new_spec is None:
        return Skip(
            "unrewritable",
            f"cannot rewrite {dep.spec!r} to admit {target.text} ({policy.range_strategy})",
            dep,
        )
    if new_spec == dep.spec:
        locked = rules.parse(dep.locked) if dep.locked else None
        if locked is None or locked >= target:
            return Skip("already_admitted", f"{dep.spec!r} already admits {target.text}", dep)
    return Bump(
        dep=dep,
        from_version=current.text,
        to_version=target.text,
        update_type=classify(current, target),
        release_date=prepared.info.uploaded(release),
        changelog_url=prepared.info.changelog_url,
        new_spec=new_spec,
        held_back=held_back[1] if held_back else None,
    )


def _group(bumps: list[Bump], policy: BumpPolicy) -> list[BumpGroup]:
    buckets: dict[tuple[Ecosystem, str, str], list[Bump]] = {}
    for bump in bumps:
        kind = "major" if bump.update_type == "major" else "non-major"
        package = (
            ""
            if kind == "non-major" and policy.grouping == "non_major_together"
            else bump.dep.via or bump.dep.key
        )
        buckets.setdefault((bump.dep.ecosystem, kind, package), []).append(bump)
    groups: list[BumpGroup] = []
    for (ecosystem, kind, package), members in buckets.items():
        key = "-".join(p for p in (ecosystem, slug(package), kind) if p)
        ordered = tuple(sorted(members, key=lambda b: (b.dep.key, str(b.dep.file))))
        title = group_title(ordered, kind)
        body = group_body(ordered, key=key, kind=kind, fingerprint=fingerprint(ordered))
        groups.append(
            BumpGroup(
                key, ecosystem, "major" if kind == "major" else "non-major", ordered, title, body
            )
        )
    groups.sort(key=lambda g: (g.kind == "major", ECOSYSTEMS.index(g.ecosystem), g.key))
    return groups


def _limit(
    groups: list[BumpGroup], policy: BumpPolicy, open_prs: dict[str, str], result: Plan
) -> None:
    room = policy.max_open_prs - len(open_prs)
    planned = {g.key for g in groups}
    result.obsolete = sorted(k for k in open_prs if k not in planned)
    for group in groups:
        if group.key in open_prs:
            same = open_prs[group.key] == group.fingerprint
            result.groups.append(_with_action(group, "unchanged" if same else "update"))
        elif room > 0:
            room -= 1
            result.groups.append(group)
        else:
            reason = f"{policy.max_open_prs} bump PRs are open already (max_open_prs)"
            result.skipped.append(Skip("max_open_prs", reason, group=group))


def _with_action(group: BumpGroup, action: Action) -> BumpGroup:
    return BumpGroup(
        group.key, group.ecosystem, group.kind, group.bumps, group.title, group.body, action
    )
