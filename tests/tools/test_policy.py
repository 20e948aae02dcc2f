"""EditPolicy: which paths an edit may touch, and the request's file budget."""

from __future__ import annotations

import pytest

from appliance.errors import PathRefused
from appliance.tools.policy import EditPolicy


def refusal(policy: EditPolicy, path: str, changed: tuple[str, ...] = ()) -> str:
    with pytest.raises(PathRefused) as caught:
        policy.check_write(path, changed)
    return caught.value.message


def test_a_file_the_request_avoids_is_refused_with_the_rule_named() -> None:
    policy = EditPolicy(avoid_files=["shop/secrets.py", "docs/**"])
    message = refusal(policy, "shop/secrets.py")
    assert message.startswith(
        "shop/secrets.py is in the request's files to avoid ('shop/secrets.py'); leave it unchanged"
    )
    assert "('docs/**')" in refusal(policy, "docs/api/index.md")
    policy.check_write("src/shop/secrets.py")  # anchored: only the file named
    policy.check_write("shop/orders.py")


def test_repository_globs_follow_gitignore_rules() -> None:
    policy = EditPolicy(protected=["# generated code", "migrations/", "*.lock", "!keep.lock"])
    assert "protected by this repository's settings ('migrations/')" in refusal(
        policy, "shop/migrations/0001_initial.py"
    )
    assert "('*.lock')" in refusal(policy, "web/yarn.lock")
    policy.check_write("keep.lock")
    policy.check_write("shop/models.py")


@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        ".env",
        "deploy/.env.production",
        "certs/server.pem",
        "CODEOWNERS",
    ],
)
def test_ci_definitions_and_credential_files_are_protected_by_default(path: str) -> None:
    assert "not changed by the agent unless the repository allows it" in refusal(EditPolicy(), path)


def test_example_env_files_are_not_credentials() -> None:
    EditPolicy().check_write(".env.example")
    EditPolicy().check_write("config/.env.sample")


def test_a_repository_lifts_a_builtin_protection_but_not_its_own_or_the_requests() -> None:
    policy = EditPolicy(
        unprotected=[".github/workflows/**"],
        protected=[".github/workflows/release.yml"],
        avoid_files=[".github/workflows/deploy.yml"],
    )
    policy.check_write(".github/workflows/ci.yml")
    assert "protected by this repository's settings" in refusal(
        policy, ".github/workflows/release.yml"
    )
    assert "files to avoid" in refusal(policy, ".github/workflows/deploy.yml")
    assert "unless the repository allows it" in refusal(policy, ".gitlab-ci.yml")


def test_a_new_file_past_the_budget_is_refused_with_the_limit_and_the_changed_files() -> None:
    policy = EditPolicy(max_files_changed=2)
    changed = ("shop/orders.py", "shop/cart.py")
    assert refusal(policy, "shop/util.py", changed) == (
        "changing shop/util.py would change more than 2 files, the most this request allows; "
        "the files changed so far are: shop/cart.py, shop/orders.py. Make the change within "
        "those files, or undo one of them first"
    )
    policy.check_write("shop/orders.py", changed)  # already changed: still allowed
    policy.check_write("shop/util.py", ("shop/orders.py",))


def test_the_budget_counts_every_new_file_of_one_change() -> None:
    policy = EditPolicy(max_files_changed=3)
    with pytest.raises(PathRefused, match=r"changing b\.py, c\.py, d\.py would change more than 3"):
        policy.check_count(["a.py", "b.py", "c.py", "d.py"], ["a.py"])
    policy.check_count(["a.py", "b.py", "c.py"], ["a.py"])


def test_without_a_budget_any_number_of_files_may_change() -> None:
    EditPolicy().check_count([f"f{n}.py" for n in range(500)], [])


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_files_changed"):
        EditPolicy(max_files_changed=0)


def test_breaches_name_every_file_a_finished_change_may_not_touch() -> None:
    # what a command in the sandbox changed never went through check_write
    policy = EditPolicy(protected=["migrations/"], avoid_files=["README.md"])
    refused, too_many = policy.breaches(
        ["shop/orders.py", "README.md", "migrations/0002.py", ".github/workflows/ci.yml",
         "vendor/.git/config"]
    )  # fmt: skip
    assert sorted(refused) == [
        ".github/workflows/ci.yml",
        "README.md",
        "migrations/0002.py",
        "vendor/.git/config",
    ]
    assert "in the request's files to avoid" in refused["README.md"]
    assert "protected by this repository's settings" in refused["migrations/0002.py"]
    assert "CI definitions" in refused[".github/workflows/ci.yml"]
    assert "inside .git/" in refused["vendor/.git/config"]
    assert too_many is None


def test_breaches_count_the_files_of_the_whole_change_against_the_budget() -> None:
    policy = EditPolicy(max_files_changed=2)
    assert policy.breaches(["a.py", "b.py"]) == ({}, None)
    refused, too_many = policy.breaches(["a.py", "b.py", "c.py"])
    assert refused == {}
    assert too_many == "3 files are changed (a.py, b.py, c.py), more than the 2 this request allows"
