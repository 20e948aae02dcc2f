"""What the secret scan reports, how a secret is masked, and the admin's allow-list.

Severity mapping (see :data:`RULE_SEVERITY` for the rule-by-rule table):

* ``critical`` — private keys and live-looking cloud / forge / SaaS tokens (AWS, GitHub,
  GitLab, Slack, OpenAI, Stripe, Google, ...). Any critical finding blocks the diff.
* ``high`` — passwords and secrets in assignments, URLs with ``user:password@``, JWTs, and
  tokens of chat services.
* ``medium`` — high-entropy strings; and any finding downgraded because it sits under a
  test path (heuristic rules only) or its value looks fake (``EXAMPLE``, ``xxxx``, ...).

A :class:`Finding` never holds the secret: only a masked excerpt (first characters then
``****``) and the secret's sha256 :attr:`~Finding.fingerprint`, which an admin can put on the
allow-list. The fingerprint of a *weak* password can be guessed from a dictionary, so it is
left out of ``repr`` and only its first 12 characters go into :func:`summarize`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pathspec


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"

    @property
    def rank(self) -> int:
        """0 for the most severe."""
        return _RANKS[self]


_RANKS = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2}

RULE_SEVERITY: dict[str, Severity] = {
    # critical: a credential that works as soon as someone has it
    "private-key": Severity.CRITICAL,
    "aws-access-key": Severity.CRITICAL,
    "aws-secret-key": Severity.CRITICAL,
    "github-token": Severity.CRITICAL,
    "gitlab-token": Severity.CRITICAL,
    "slack-token": Severity.CRITICAL,
    "openai-key": Severity.CRITICAL,
    "anthropic-key": Severity.CRITICAL,
    "google-api-key": Severity.CRITICAL,
    "stripe-key": Severity.CRITICAL,
    "sendgrid-key": Severity.CRITICAL,
    "pypi-token": Severity.CRITICAL,
    "npm-token": Severity.CRITICAL,
    "twilio-key": Severity.CRITICAL,
    "azure-storage-key": Severity.CRITICAL,
    # high: a credential, but its shape alone does not prove it is live
    "slack-webhook": Severity.HIGH,
    "discord-token": Severity.HIGH,
    "telegram-token": Severity.HIGH,
    "square-oauth-secret": Severity.HIGH,
    "mailchimp-key": Severity.HIGH,
    "jwt": Severity.HIGH,
    "connection-string-with-password": Severity.HIGH,
    "generic-password-assignment": Severity.HIGH,
    "generic-secret-assignment": Severity.HIGH,
    # medium: random-looking, no more
    "high-entropy-string": Severity.MEDIUM,
}

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def fingerprint_of(secret: str) -> str:
    """sha256 (hex) of the secret's UTF-8 bytes: what an admin allow-lists."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mask(secret: str) -> str:
    """The first characters of a secret then ``****``: at most 4, and at most a quarter."""
    return secret[: min(4, len(secret) // 4)] + "****"


@dataclass(frozen=True)
class Finding:
    """One secret on one added line. Holds no secret: ``excerpt`` is masked."""

    path: str
    line: int
    """1-based line number in the new version of the file."""
    rule: str
    severity: Severity
    excerpt: str
    """The line, trimmed, with every secret found on it masked."""
    _fingerprint: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """sha256 of the secret (for a private key: of its base64 body, whitespace removed)."""
        return self._fingerprint

    def __str__(self) -> str:
        return f"{self.severity} {self.rule} at {self.path}:{self.line}: {self.excerpt}"


class AllowList:
    """Fingerprints (64 hex characters) and path globs (gitignore syntax) an admin allowed."""

    def __init__(self, entries: Sequence[str]) -> None:
        cleaned = [entry.strip() for entry in entries if entry.strip()]
        self.fingerprints = frozenset(e.lower() for e in cleaned if _FINGERPRINT.match(e.lower()))
        globs = [e for e in cleaned if not _FINGERPRINT.match(e.lower())]
        self._paths = pathspec.GitIgnoreSpec.from_lines(globs) if globs else None

    def allows_path(self, path: str) -> bool:
        return self._paths is not None and self._paths.match_file(path)

    def allows(self, finding: Finding) -> bool:
        return finding.fingerprint in self.fingerprints or self.allows_path(finding.path)


def is_blocking(findings: Iterable[Finding]) -> bool:
    """True when any finding is critical: the diff must not be shown or pushed."""
    return any(f.severity is Severity.CRITICAL for f in findings)


def summarize(findings: Sequence[Finding]) -> str:
    """A masked, multi-line summary for the audit log and the alert event."""
    if not findings:
        return "secret scan: no findings"
    counts = Counter(f.severity for f in findings)
    head = ", ".join(f"{counts[s]} {s}" for s in Severity if counts[s])
    verdict = "blocking" if is_blocking(findings) else "not blocking"
    lines = [f"secret scan: {len(findings)} finding(s) ({head}); {verdict}"]
    ordered = sorted(findings, key=lambda f: (f.severity.rank, f.path, f.line))
    lines += [
        f"- {f.severity} {f.rule} {f.path}:{f.line} [{f.fingerprint[:12]}] {f.excerpt}"
        for f in ordered
    ]
    return "\n".join(lines)
