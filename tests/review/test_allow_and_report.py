"""The admin's allow-list, the audit summary, the blocking verdict, and unreadable input."""

from __future__ import annotations

import hashlib

import pytest

from appliance.review import (
    DiffUnreadable,
    Severity,
    is_blocking,
    scan_diff,
    scan_text,
    summarize,
)
from tests.review.conftest import Repo, Secrets


def _diff(repo: Repo, fake: Secrets) -> str:
    repo.commit({})
    return repo.diff(
        {
            "keys/deploy.pem": fake.rsa_pem,
            "src/forge.py": f'TOKEN = "{fake.github}"\nOTHER = "{fake.gitlab}"\n',
            "deploy/values.yaml": f"password: {fake.yaml_password}\n",
        }
    )


def test_allow_by_fingerprint_drops_only_that_secret(repo: Repo, fake: Secrets) -> None:
    allowed = hashlib.sha256(fake.github.encode()).hexdigest()

    findings = scan_diff(_diff(repo, fake), allow=[allowed])

    assert sorted(f.rule for f in findings) == [
        "generic-password-assignment",
        "gitlab-token",
        "private-key",
    ]


def test_allow_by_path_glob(repo: Repo, fake: Secrets) -> None:
    findings = scan_diff(_diff(repo, fake), allow=["*.pem", "deploy/"])

    assert sorted(f.path for f in findings) == ["src/forge.py", "src/forge.py"]


def test_a_glob_does_not_allow_more_than_it_says(fake: Secrets) -> None:
    findings = scan_text("src/keys/deploy.py", f'TOKEN = "{fake.github}"\n', allow=["keys/*.py"])

    assert [f.rule for f in findings] == ["github-token"]


def test_summary_counts_and_masks(repo: Repo, fake: Secrets) -> None:
    findings = scan_diff(_diff(repo, fake))

    summary = summarize(findings)

    assert summary.splitlines()[0] == ("secret scan: 4 finding(s) (3 critical, 1 high); blocking")
    assert "- critical github-token src/forge.py:1" in summary
    assert 'TOKEN = "ghp_****"' in summary
    for secret in (fake.github, fake.gitlab, fake.yaml_password):
        assert secret not in summary
    assert summarize([]) == "secret scan: no findings"


def test_only_critical_findings_block(fake: Secrets) -> None:
    high = scan_text("deploy/values.yaml", f"password: {fake.yaml_password}\n")
    critical = scan_text("src/a.py", f'T = "{fake.gitlab}"\n')

    assert [f.severity for f in high] == [Severity.HIGH]
    assert not is_blocking(high)
    assert is_blocking(high + critical)
    assert "; not blocking" in summarize(high).splitlines()[0]


def test_an_empty_diff_has_no_findings() -> None:
    assert scan_diff("") == []


def test_text_that_is_not_a_diff_is_refused_not_passed(fake: Secrets) -> None:
    with pytest.raises(DiffUnreadable):
        scan_diff(f"please push this: TOKEN={fake.github}\n")


def test_a_truncated_diff_is_refused_without_quoting_it(repo: Repo, fake: Secrets) -> None:
    repo.commit({"a.py": "x = 1\n"})
    diff = repo.diff({"a.py": f'x = 1\nTOKEN = "{fake.github}"\ny = 2\nz = 3\n'})
    truncated = diff.replace("@@ -1 +1,4 @@", "@@ -1 +1,9 @@")
    assert truncated != diff

    with pytest.raises(DiffUnreadable) as caught:
        scan_diff(truncated)

    assert fake.github not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
