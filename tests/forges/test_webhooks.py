from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

from appliance.forges.base import ReviewFeedback
from appliance.forges.webhooks import (
    parse_github_event,
    parse_gitlab_event,
    verify_github_signature,
    verify_gitlab_token,
)

HOOKS = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "whsec-3f9a1c"
BRANCH = "appliance/20240501-0930-add-jwt-middleware"


def load(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((HOOKS / name).read_text())
    return data


def test_github_signature_accepts_only_the_right_hmac() -> None:
    body = (HOOKS / "github_review_comment.json").read_bytes()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify_github_signature(body, good, SECRET)
    assert not verify_github_signature(body + b" ", good, SECRET)
    assert not verify_github_signature(body, good, "other-secret")
    assert not verify_github_signature(body, None, SECRET)
    assert not verify_github_signature(body, good.replace("sha256=", "sha1="), SECRET)
    assert not verify_github_signature(body, good, "")  # unconfigured secret accepts nothing


def test_gitlab_token_must_match_exactly() -> None:
    assert verify_gitlab_token(SECRET, SECRET)
    assert not verify_gitlab_token(SECRET + "x", SECRET)
    assert not verify_gitlab_token(None, SECRET)
    assert not verify_gitlab_token("", "")


def test_github_review_comment_payload() -> None:
    got = parse_github_event("pull_request_review_comment", load("github_review_comment.json"))
    assert got == ReviewFeedback(
        pr_number=7,
        branch=BRANCH,
        author="alice",
        body="Please check the token expiry here too.",
        path="src/api/auth.py",
        line=27,
        created_at=datetime(2024, 5, 1, 11, 15, tzinfo=UTC),
    )


def test_github_issue_comment_on_a_pr_and_on_an_issue() -> None:
    payload = load("github_issue_comment.json")
    got = parse_github_event("issue_comment", payload)
    assert got is not None
    assert (got.pr_number, got.branch, got.author, got.path) == (7, None, "alice", None)
    issue = payload["issue"]
    assert isinstance(issue, dict)
    del issue["pull_request"]
    assert parse_github_event("issue_comment", payload) is None


def test_github_review_with_body_and_events_that_are_not_feedback() -> None:
    got = parse_github_event("pull_request_review", load("github_review.json"))
    assert got is not None
    assert (got.body, got.branch) == ("Needs a test for expired tokens.", BRANCH)
    assert parse_github_event("push", load("github_review.json")) is None
    bot = load("github_review_comment.json")
    comment = bot["comment"]
    assert isinstance(comment, dict)
    comment["user"] = {"login": "ci[bot]", "type": "Bot"}
    assert parse_github_event("pull_request_review_comment", bot) is None


def test_gitlab_note_hook_on_a_merge_request() -> None:
    got = parse_gitlab_event(load("gitlab_note_mr.json"))
    assert got == ReviewFeedback(
        pr_number=3,
        branch=BRANCH,
        author="alice",
        body="Please check the token expiry here too.",
        path="src/api/auth.py",
        line=27,
        created_at=datetime(2024, 5, 1, 11, 15, tzinfo=UTC),
    )
    commit_note = load("gitlab_note_mr.json")
    attrs = commit_note["object_attributes"]
    assert isinstance(attrs, dict)
    attrs["noteable_type"] = "Commit"
    assert parse_gitlab_event(commit_note) is None
