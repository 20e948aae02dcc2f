"""CODEOWNERS: path patterns → owners, and the reviewers for a set of changed files.

The file format is shared by GitHub and GitLab: one rule per line, a gitignore-style
pattern followed by owners (``@user``, ``@org/team``, ``@group/subgroup``,
``email@example.com``); ``#`` starts a comment; the last matching rule wins. GitLab's
``[Section]`` headers are skipped (their rules still count), as are its optional
``^[Section]`` markers; a rule with a pattern but no owner clears ownership.

Pattern rules: a leading ``/`` or a ``/`` in the middle anchors the pattern at the
repository root, otherwise it matches at any depth; ``*`` and ``?`` stay within one
path segment, ``**`` crosses them; a pattern that names a directory (or ends in
``/``) owns everything below it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

SECTION_RE = re.compile(r"^\^?\[[^\]]+\](\[\d+\])?")


@dataclass(frozen=True)
class OwnerRule:
    pattern: str
    owners: tuple[str, ...]

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern)


@dataclass(frozen=True)
class CodeOwners:
    rules: tuple[OwnerRule, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """Pattern → owners, in file order (a later duplicate replaces an earlier one)."""
        return {rule.pattern: rule.owners for rule in self.rules}

    def owners_of(self, path: str) -> tuple[str, ...]:
        path = path.lstrip("/")
        for rule in reversed(self.rules):
            if rule.regex.match(path):
                return rule.owners
        return ()

    def owners_for(self, paths: Iterable[str]) -> list[str]:
        """Every owner of any of ``paths``, first-seen order, without duplicates."""
        seen: dict[str, None] = {}
        for path in paths:
            for owner in self.owners_of(path):
                seen.setdefault(owner, None)
        return list(seen)


def parse_codeowners(text: str) -> CodeOwners:
    rules: list[OwnerRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or SECTION_RE.match(line):
            continue
        line = re.sub(r"\s+#.*$", "", line)
        parts = re.split(r"(?<!\\)\s+", line)
        pattern = parts[0].replace("\\ ", " ")
        owners = tuple(p for p in parts[1:] if p.startswith("@") or "@" in p)
        rules.append(OwnerRule(pattern, owners))
    return CodeOwners(tuple(rules))


def _compile(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(ch))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    if body == "*":
        return re.compile(r".*\Z")  # the catch-all owner of every file
    # "docs/*" owns the files in docs/, not those in its subdirectories (GitHub's rule)
    below = "" if body.endswith("/*") else r"(?:/.*)?"
    return re.compile(prefix + "".join(out) + below + r"\Z")
