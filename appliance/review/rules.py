"""Token rules: the shapes of known credentials, found anywhere on a line.

Most shapes come from Yelp's maintained ``detect-secrets`` plugins: we run their ``denylist``
patterns ourselves (for the span of each match on the line). That bypasses detect-secrets'
global settings, filters and its *verification* step (which would send the secret to the
vendor's API), so nothing here can reach the network. Our own rules cover what
detect-secrets 1.5 lacks or gets wrong: GitHub fine-grained tokens (``github_pat_``), current
OpenAI and Anthropic keys, Google API keys, npm tokens (its pattern is quadratic), JWTs (its
pattern drops the signature), AWS secret access keys written unquoted (``.env``), and URL
passwords with their exact span.

Each rule yields :class:`Candidate` spans; the scanner keeps the most specific one where
spans overlap (see :data:`PRIORITY`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector


@dataclass(frozen=True)
class Candidate:
    """A possible secret: its rule and where it sits on the line (``line[start:end]``)."""

    rule: str
    start: int
    end: int
    secret: str


# Lower wins where two candidates overlap: a known token shape beats a URL password, which
# beats a keyword assignment, which beats mere entropy.
PRIORITY = {"connection-string-with-password": 10, "jwt": 20}
PRIORITY |= {"generic-password-assignment": 30, "generic-secret-assignment": 30}
PRIORITY |= {"high-entropy-string": 40}


def priority(rule: str) -> int:
    return PRIORITY.get(rule, 0)


_AWS_KEY_ID = re.compile(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}")


def _aws(secret: str) -> str:
    return "aws-access-key" if _AWS_KEY_ID.fullmatch(secret) else "aws-secret-key"


def _slack(secret: str) -> str:
    return "slack-webhook" if secret.lower().startswith("https://") else "slack-token"


def _fixed(rule: str) -> Callable[[str], str]:
    return lambda _secret: rule


@cache
def _plugins() -> tuple[tuple[RegexBasedDetector, Callable[[str], str]], ...]:
    """The detect-secrets plugins we trust, each with how its matches are named."""
    return (
        (AWSKeyDetector(), _aws),
        (GitHubTokenDetector(), _fixed("github-token")),
        (GitLabTokenDetector(), _fixed("gitlab-token")),
        (SlackDetector(), _slack),
        (OpenAIDetector(), _fixed("openai-key")),
        (StripeDetector(), _fixed("stripe-key")),
        (SendGridDetector(), _fixed("sendgrid-key")),
        (PypiTokenDetector(), _fixed("pypi-token")),
        (TwilioKeyDetector(), _fixed("twilio-key")),
        (AzureStorageKeyDetector(), _fixed("azure-storage-key")),
        (DiscordBotTokenDetector(), _fixed("discord-token")),
        (TelegramBotTokenDetector(), _fixed("telegram-token")),
        (SquareOAuthDetector(), _fixed("square-oauth-secret")),
        (MailchimpDetector(), _fixed("mailchimp-key")),
    )


# Our own shapes, each with the group that is the secret.
_OWN_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("github-token", re.compile(r"(?<![A-Za-z0-9_])(github_pat_[A-Za-z0-9_]{60,255})")),
    (
        "openai-key",
        re.compile(r"(?<![\w-])(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,})"),
    ),
    ("openai-key", re.compile(r"(?<![\w-])(sk-[A-Za-z0-9]{48})(?![\w-])")),
    ("anthropic-key", re.compile(r"(?<![\w-])(sk-ant-[A-Za-z0-9_-]{32,})")),
    ("google-api-key", re.compile(r"(?<![\w-])(AIza[0-9A-Za-z_-]{35})(?![\w-])")),
    # detect-secrets' npm pattern (`//.+/:_authToken=`) takes quadratic time on long lines
    ("npm-token", re.compile(r":_authToken=\s*(npm_[A-Za-z0-9]{36}|[A-Fa-f0-9-]{36})")),
    ("npm-token", re.compile(r"(?<![\w-])(npm_[A-Za-z0-9]{36})(?![\w-])")),
    # detect-secrets' JWT pattern ends lazily and drops the signature; ours keeps all three parts
    ("jwt", re.compile(r"(?<![\w-])(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)")),
    (
        "aws-secret-key",
        re.compile(
            r"(?i)aws[\w.-]{0,20}?secret[\w.-]{0,20}?[\"']?\s*[:=]\s*[\"']?"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
)


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    """The secret within a detect-secrets match: its longest group when that is a real value.

    Some of its patterns capture the secret (AWS: the 40 characters after ``aws...key``),
    others only a prefix (GitHub: ``ghp``), so a group shorter than 8 means the whole match.
    """
    groups = [i for i in range(1, (match.re.groups or 0) + 1) if match.group(i)]
    best = max(groups, key=lambda i: len(match.group(i)), default=0)
    if best and len(match.group(best)) >= 8:
        return match.span(best)
    return match.span()


def _bounded(line: str, start: int, end: int) -> bool:
    """A whole-match token must not be glued to a word (``billion_laughs_...`` is no token)."""
    before = line[start - 1] if start else " "
    after = line[end] if end < len(line) else " "
    return not (before.isalnum() or before == "_") and not after.isalnum()


def token_candidates(line: str) -> Iterator[Candidate]:
    """Every known token shape on a line."""
    for plugin, name in _plugins():
        for pattern in plugin.denylist:
            for match in pattern.finditer(line):
                start, end = _secret_span(match)
                secret = line[start:end].strip()
                start = line.index(secret, start)
                end = start + len(secret)
                if (start, end) == match.span() and not _bounded(line, start, end):
                    continue
                yield Candidate(name(secret), start, end, secret)
    for rule, pattern in _OWN_RULES:
        for match in pattern.finditer(line):
            secret = match.group(1)
            if rule == "jwt" and not JwtTokenDetector.is_formally_valid(secret):
                continue
            yield Candidate(rule, match.start(1), match.end(1), secret)


_URL_PASSWORD = re.compile(
    r"(?<![\w+.-])[A-Za-z][\w+.-]*://"  # scheme
    r"(?P<user>[^\s:/?#\[\]@\"'`]*):(?P<password>[^\s/?#\[\]@\"'`]+)@"  # user:password@
    r"(?P<host>[A-Za-z0-9.\-_\[\]:%]+)"
)


def url_password_candidates(line: str) -> Iterator[Candidate]:
    """The passwords of ``scheme://user:password@host`` URLs."""
    for match in _URL_PASSWORD.finditer(line):
        start, end = match.span("password")
        yield Candidate("connection-string-with-password", start, end, match.group("password"))
