from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from appliance.forges.errors import PushRefused, QuotaExceeded
from appliance.forges.rules import (
    PrQuota,
    branch_name,
    check_push,
    commit_message,
    validate_branch_name,
)

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def test_branch_name_has_time_and_safe_slug() -> None:
    name = branch_name(NOW, "Add JWT middleware (API) — ünïcode & `rm -rf /`!")
    assert name == "appliance/20240501-0930-add-jwt-middleware-api-unicode-rm-rf"
    assert validate_branch_name(name) == name


def test_long_title_is_cut_at_a_word_and_empty_title_gets_a_slug() -> None:
    name = branch_name(NOW, "word " * 40)
    slug = name.removeprefix("appliance/20240501-0930-")
    assert len(slug) <= 50
    assert not slug.endswith("-")
    assert branch_name(NOW, "!!!") == "appliance/20240501-0930-task"


@pytest.mark.parametrize(
    "name",
    ["main", "appliance/x", "appliance/20240501-0930-Bad", "feature/20240501-0930-x", "../evil"],
)
def test_foreign_branch_names_are_refused(name: str) -> None:
    with pytest.raises(PushRefused, match="appliance/YYYYMMDD-HHMM"):
        validate_branch_name(name)


@pytest.mark.parametrize(
    ("branch", "force", "options"),
    [
        ("appliance/20240501-0930-x", True, ()),
        ("+appliance/20240501-0930-x", False, ()),
        ("appliance/20240501-0930-x:+appliance/20240501-0930-x", False, ()),
        ("appliance/20240501-0930-x", False, ("--force",)),
        ("appliance/20240501-0930-x", False, ("--force-with-lease=x",)),
        ("--force", False, ()),
    ],
)
def test_every_form_of_force_is_refused(branch: str, force: bool, options: tuple[str]) -> None:
    with pytest.raises(PushRefused, match="force-pushing is never allowed"):
        check_push(branch, force=force, options=options)


def test_push_refspec_is_explicit_and_never_forced() -> None:
    spec = check_push("refs/heads/appliance/20240501-0930-x", default_branch="main")
    assert spec == "refs/heads/appliance/20240501-0930-x:refs/heads/appliance/20240501-0930-x"


def test_default_and_protected_branches_are_refused_even_with_an_appliance_name() -> None:
    name = "appliance/20240501-0930-x"
    with pytest.raises(PushRefused, match="default branch"):
        check_push(name, default_branch=name)
    with pytest.raises(PushRefused, match="protected branch"):
        check_push(name, protected=["appliance/*"])
    with pytest.raises(PushRefused, match="protected branch"):
        check_push("release/1.0", protected=["release/*"])
    with pytest.raises(PushRefused, match="onto another"):
        check_push(f"{name}:main")


def test_commit_message_has_co_author_trailer() -> None:
    msg = commit_message(
        "Add JWT   middleware",
        "Checks the token on /api.",
        co_author_name="Dana <Dev>",
        co_author_email="dana@acme.example",
    )
    assert msg == (
        "Add JWT middleware\n\nChecks the token on /api.\n\n"
        "Co-authored-by: Dana Dev <dana@acme.example>\n"
    )
    with pytest.raises(ValueError, match="not an e-mail"):
        commit_message("x", co_author_name="D", co_author_email="dana>\nSigned-off-by: x")


def test_quota_counts_through_the_callable_and_refuses_the_eleventh() -> None:
    opened: dict[tuple[str, date], int] = {("dana", NOW.date()): 9}
    quota = PrQuota(lambda user, day: opened.get((user, day), 0), now=lambda: NOW)
    assert quota.check("dana") == 1
    opened[("dana", NOW.date())] = 10
    with pytest.raises(QuotaExceeded, match="10 pull requests today") as err:
        quota.check("dana")
    assert err.value.user == "dana"
    assert "2024-05-02" in err.value.message
    assert quota.check("dave") == 10


def test_branch_names_of_two_tasks_with_the_same_title_differ() -> None:
    now = datetime(2026, 11, 22, 5, 56, tzinfo=UTC)
    title = "Fix the greeting that says Helo instead of Hello in every language we support"
    a = branch_name(now, title, unique="7ff257dc")
    b = branch_name(now, title, unique="a1b2c3d4")
    assert a != b
    assert a.startswith("appliance/20261122-0556-fix-the-greeting")
    assert a.endswith("-7ff257dc")
    assert validate_branch_name(a) == a
