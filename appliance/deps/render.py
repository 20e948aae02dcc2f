"""PR titles and bodies for bump groups: plain functions over the planned bumps.

Title: ``Bump requests from 2.31.0 to 2.32.3`` for one package (every occurrence of it),
``Bump 4 non-major Python dependencies`` for a group. Body: a markdown table (package,
from, to, update type, release date, where and how the spec changes, and the Maven
property it is written in), release-notes links when the index gave one, what held a
newer version back (for Go that includes a newer major version, which is a new module
path), and a hidden marker line ``<!-- appliance-deps key=… fingerprint=… -->`` by which
the scheduler recognises its own PRs and sees whether one is current.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from appliance.deps.model import Ecosystem

if TYPE_CHECKING:
    from appliance.deps.plan import Bump

ECOSYSTEM_LABEL: dict[Ecosystem, str] = {
    "python": "Python",
    "npm": "npm",
    "go": "Go",
    "maven": "Maven",
}


def _versions(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(values))


def group_title(bumps: Sequence[Bump], kind: str) -> str:
    names = sorted({b.dep.name for b in bumps})
    if len(names) == 1:
        froms = _versions(sorted({b.from_version for b in bumps}))
        to = _versions([b.to_version for b in bumps])
        return f"Bump {names[0]} from {froms} to {to}"
    label = ECOSYSTEM_LABEL[bumps[0].dep.ecosystem]
    return f"Bump {len(names)} {kind} {label} dependencies"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def group_body(bumps: Sequence[Bump], *, key: str, kind: str, fingerprint: str) -> str:
    label = ECOSYSTEM_LABEL[bumps[0].dep.ecosystem]
    what = "patch and minor updates" if kind == "non-major" else "a major update"
    lines = [
        f"Bumps {len({b.dep.key for b in bumps})} {label} dependencies ({what}).",
        "",
        "| Package | From | To | Update | Released | Manifest | Spec |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in bumps:
        released = b.release_date.date().isoformat() if b.release_date else "unknown"
        spec = (
            "lockfile only"
            if b.lock_only
            else f"`{_cell(b.dep.spec) or '(none)'}` → `{_cell(b.new_spec)}`"
        )
        via = f", via `{b.dep.via}`" if b.dep.via else ""
        where = f"`{b.dep.file}` ({b.dep.group}{via})"
        lines.append(
            f"| {b.dep.name} | {b.from_version} | {b.to_version} | {b.update_type} "
            f"| {released} | {where} | {spec} |"
        )
    links = {b.dep.name: b.changelog_url for b in bumps if b.changelog_url}
    if links:
        lines += ["", "### Release notes", ""]
        lines += [f"- {name}: {url}" for name, url in sorted(links.items())]
    held = {b.dep.name: b.held_back for b in bumps if b.held_back}
    if held:
        lines += ["", "### Newer versions held back", ""]
        lines += [f"- {name} {reason}" for name, reason in sorted(held.items())]
    lines += [
        "",
        "Updates below 1.0 that change the second number (0.4 → 0.5) count as major.",
        "",
        f"<!-- appliance-deps key={key} fingerprint={fingerprint} -->",
    ]
    return "\n".join(lines) + "\n"
