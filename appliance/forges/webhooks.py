"""Webhook checks and parsers: review feedback from GitHub and GitLab events.

The HTTP route (written elsewhere) reads the raw body and headers, calls a verifier and,
when it passes, a parser:

* GitHub signs the raw body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`` with the
  webhook secret; :func:`verify_github_signature` recomputes and compares in constant
  time. GitLab sends the secret itself in ``X-Gitlab-Token``;
  :func:`verify_gitlab_token` compares it in constant time. An empty configured secret
  never verifies: an unconfigured webhook accepts nothing.
* :func:`parse_github_event` (``X-GitHub-Event`` + payload) understands
  ``pull_request_review_comment`` (created), ``issue_comment`` (created, on a pull
  request) and ``pull_request_review`` (submitted, with a body);
  :func:`parse_gitlab_event` understands a ``Note Hook`` on a merge request. Anything
  else, and comments by bots, gives ``None``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from appliance.forges.base import ReviewFeedback


def verify_github_signature(body: bytes, header: str | None, secret: str) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len("sha256=") :].strip().encode())


def verify_gitlab_token(header: str | None, secret: str) -> bool:
    if not secret or header is None:
        return False
    return hmac.compare_digest(header.encode(), secret.encode())


def parse_github_event(event: str | None, payload: Mapping[str, Any]) -> ReviewFeedback | None:
    action = payload.get("action")
    if event == "pull_request_review_comment" and action == "created":
        comment, pull = _dict(payload, "comment"), _dict(payload, "pull_request")
        return _github_feedback(
            pull.get("number"),
            _dict(pull, "head").get("ref"),
            comment,
            comment.get("created_at"),
            path=comment.get("path"),
            line=comment.get("line") or comment.get("original_line"),
        )
    if event == "issue_comment" and action == "created":
        issue = _dict(payload, "issue")
        if not issue.get("pull_request"):  # a comment on a plain issue
            return None
        comment = _dict(payload, "comment")
        return _github_feedback(issue.get("number"), None, comment, comment.get("created_at"))
    if event == "pull_request_review" and action == "submitted":
        review, pull = _dict(payload, "review"), _dict(payload, "pull_request")
        if not review.get("body"):  # an approval or a review made only of inline comments
            return None
        return _github_feedback(
            pull.get("number"),
            _dict(pull, "head").get("ref"),
            review,
            review.get("submitted_at"),
        )
    return None


def parse_gitlab_event(payload: Mapping[str, Any]) -> ReviewFeedback | None:
    attrs = _dict(payload, "object_attributes")
    if payload.get("object_kind") != "note" or attrs.get("noteable_type") != "MergeRequest":
        return None
    if attrs.get("system"):
        return None
    user = _dict(payload, "user")
    if user.get("bot") or str(user.get("username", "")).endswith("-bot"):
        return None
    mr = _dict(payload, "merge_request")
    position = _dict(attrs, "position")
    number = mr.get("iid")
    if not isinstance(number, int):
        return None
    line = position.get("new_line") or position.get("old_line")
    return ReviewFeedback(
        pr_number=number,
        branch=mr.get("source_branch"),
        author=str(user.get("username", "")),
        body=str(attrs.get("note", "")),
        path=position.get("new_path") or position.get("old_path"),
        line=line if isinstance(line, int) else None,
        created_at=parse_time(attrs.get("created_at")),
    )


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (``2024-05-01T10:00:00Z``) or GitLab's ``2024-05-01 10:00:00 UTC``."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _github_feedback(
    number: Any,
    branch: Any,
    item: Mapping[str, Any],
    created: Any,
    *,
    path: Any = None,
    line: Any = None,
) -> ReviewFeedback | None:
    user = _dict(item, "user")
    if not isinstance(number, int) or user.get("type") == "Bot":
        return None
    return ReviewFeedback(
        pr_number=number,
        branch=branch if isinstance(branch, str) else None,
        author=str(user.get("login", "")),
        body=str(item.get("body") or ""),
        path=path if isinstance(path, str) else None,
        line=line if isinstance(line, int) else None,
        created_at=parse_time(created),
    )


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}
