"""Rewriting npm ranges for a target version, keeping the way they are written.

* ``pin``: the exact version (``1.4.0``).
* ``bump``: every lower bound moves to the target with the same shape: ``^1.2.3`` →
  ``^1.4.0``, ``~1.2`` → ``~1.4``, ``1.x`` → ``2.x``, ``>=1.2.3 <2`` → ``>=2.1.0 <3``;
  an upper bound that would exclude the target is widened with its granularity.
* ``widen``: keep what admits the old versions and add what admits the target:
  ``^1.2.3`` → ``^1.2.3 || ^2.0.0``, ``>=1.2.3 <2`` → ``>=1.2.3 <3``; an exact version can
  only be replaced. A range that already admits the target comes back unchanged.

Hyphen ranges and unions are only widened (or pinned); a result that would not admit the
target is refused (None), and the planner reports the dependency as not rewritable.
"""

from __future__ import annotations

import re

from appliance.deps.pep440 import RangeStrategy
from appliance.deps.semver import SemVer, floor_of, satisfies

_TOKEN = re.compile(r"(<=|>=|<|>|=|\^|~)?(\s*)(v?[0-9xX*][^\s|]*)")


def shaped(written: str, target: SemVer) -> str:
    """``target`` in the shape of ``written``: as many components, the same wildcards
    and ``v`` prefix (``1.x`` → ``2.x``, ``1.2`` → ``1.4``)."""
    prefix = "v" if written.startswith("v") else ""
    core = re.split(r"[-+]", written.removeprefix("v"), maxsplit=1)[0]
    parts = core.split(".")
    if target.is_prerelease:
        return prefix + str(target)
    out = [p if p in ("x", "X", "*") else str(target.release[i]) for i, p in enumerate(parts[:3])]
    return prefix + ".".join(out)


def _upper(written: str, target: SemVer) -> str:
    core = written.removeprefix("v").split("-")[0].split(".")
    nums = [int(p) if p.isdigit() else 0 for p in core] or [0]
    significant = max((i for i, n in enumerate(nums) if n), default=0)
    head = list(target.release[:significant])
    parts = [*head, target.release[significant] + 1]
    parts += [0] * max(0, len(nums) - len(parts))
    return ".".join(str(n) for n in parts)


def _bump_alternative(alt: str, target: SemVer, widen: bool) -> str | None:
    if re.search(r"\s-\s", alt):
        return None
    pieces: list[str] = []
    last = 0
    for match in _TOKEN.finditer(alt):
        op, space, written = match.group(1) or "", match.group(2), match.group(3)
        token = op + space + written
        admits = satisfies(target, token)
        if op in ("<", "<="):
            new = (
                token
                if admits
                else (op + space + (_upper(written, target) if op == "<" else str(target)))
            )
        elif widen:
            if not admits and not re.search(r"[<]", alt):
                return None  # nothing to widen inside this alternative
            new = token
        else:
            new_written = shaped(written, target)
            old_floor = floor_of(token)
            if (
                old_floor is not None
                and (SemVer.parse(new_written.removeprefix("v")) or target) <= old_floor
            ):
                new_written = ("v" if written.startswith("v") else "") + str(target)
            new = (">=" if op == ">" else op) + space + new_written
        pieces.append(alt[last : match.start()] + new)
        last = match.end()
    pieces.append(alt[last:])
    return "".join(pieces)


def rewrite_range(spec: str, target: SemVer, strategy: RangeStrategy) -> str | None:
    """The new range text admitting ``target``, or None when no rewrite can."""
    if strategy == "pin":
        return str(target)
    if strategy == "widen" and satisfies(target, spec):
        return spec
    alternatives = spec.split("||")
    if strategy == "bump" and len(alternatives) == 1:
        new = _bump_alternative(spec, target, widen=False)
    elif strategy == "bump":
        new = None
    else:
        new = _widen(spec, alternatives, target)
    return new if new is not None and satisfies(target, new) else None


def _widen(spec: str, alternatives: list[str], target: SemVer) -> str | None:
    last = alternatives[-1].strip()
    match = _TOKEN.fullmatch(last)
    exact = match is not None and re.fullmatch(r"v?\d+\.\d+\.\d+\S*", match.group(3))
    if len(alternatives) == 1 and match is not None and match.group(1) in (None, "=") and exact:
        return str(target)  # an exact version: replaced, not widened
    if match is not None and (match.group(1) in ("^", "~", None)):
        op = match.group(1) or ""
        return f"{spec.rstrip()} || {op}{shaped(match.group(3), target)}"
    if len(alternatives) == 1:
        return _bump_alternative(spec, target, widen=True)
    return None
