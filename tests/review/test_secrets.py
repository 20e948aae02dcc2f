"""The scan finds each kind of secret an agent might write, where it wrote it, masked."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from appliance.review import Finding, Severity, is_blocking, scan_diff, scan_text, summarize
from tests.review.conftest import Repo, Secrets

CRITICAL, HIGH, MEDIUM = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM


def _agent_diff(repo: Repo, fake: Secrets) -> str:
    repo.commit(
        {
            "config/settings.py": '"""Settings."""\n\nDEBUG = False\nTIMEZONE = "UTC"\n',
            "deploy/values.yaml": "replicas: 2\ndatabase:\n  host: db.internal\n  user: app\n",
            ".env": "APP_ENV=production\n",
        }
    )
    return repo.diff(
        {
            "config/settings.py": (
                '"""Settings."""\n\nDEBUG = False\n'
                f'password = "{fake.db_password}"\nTIMEZONE = "UTC"\n'
            ),
            "deploy/values.yaml": (
                "replicas: 2\ndatabase:\n  host: db.internal\n  user: app\n"
                f"  password: {fake.yaml_password}\n"
            ),
            ".env": f"APP_ENV=production\nDB_PASSWORD={fake.env_password}\n",
            "keys/deploy.pem": fake.rsa_pem,
            "src/cloud.py": (
                "import boto3\n\n"
                f'AWS_ACCESS_KEY_ID = "{fake.aws_key_id}"\n'
                f'AWS_SECRET_ACCESS_KEY = "{fake.aws_secret}"\n'
            ),
            "scripts/release.sh": (
                f'#!/bin/sh\nexport GITHUB_TOKEN={fake.github}\ngh release create "$1"\n'
            ),
            "ci/publish.toml": (
                f'[gitlab]\nurl = "https://gitlab.example.com"\ntoken = "{fake.gitlab}"\n'
            ),
            "src/db.py": f'ENGINE_URL = "postgresql://app:{fake.url_password}@db.internal/app"\n',
            "src/signing.py": f'import hmac\n\nSIGNING_SEED = "{fake.entropy}"\n',
            "src/integrations.py": (
                f'GITHUB = "{fake.github_pat}"\nSLACK = "{fake.slack}"\nOPENAI = "{fake.openai}"\n'
            ),
        }
    )


def _all_secrets(fake: Secrets) -> list[str]:
    values = [v for k, v in vars(fake).items() if k != "rsa_pem"]
    key_lines = [line for line in fake.rsa_pem.splitlines() if "-----" not in line]
    return values + key_lines


def test_each_secret_is_found_at_its_new_file_line(repo: Repo, fake: Secrets) -> None:
    findings = scan_diff(_agent_diff(repo, fake))

    assert {(f.path, f.line, f.rule, f.severity) for f in findings} == {
        ("config/settings.py", 4, "generic-password-assignment", HIGH),
        ("deploy/values.yaml", 5, "generic-password-assignment", HIGH),
        (".env", 2, "generic-password-assignment", HIGH),
        ("keys/deploy.pem", 1, "private-key", CRITICAL),
        ("src/cloud.py", 3, "aws-access-key", CRITICAL),
        ("src/cloud.py", 4, "aws-secret-key", CRITICAL),
        ("scripts/release.sh", 2, "github-token", CRITICAL),
        ("ci/publish.toml", 3, "gitlab-token", CRITICAL),
        ("src/db.py", 1, "connection-string-with-password", HIGH),
        ("src/signing.py", 3, "high-entropy-string", MEDIUM),
        ("src/integrations.py", 1, "github-token", CRITICAL),
        ("src/integrations.py", 2, "slack-token", CRITICAL),
        ("src/integrations.py", 3, "openai-key", CRITICAL),
    }
    assert is_blocking(findings)


def test_no_secret_appears_in_findings_or_summary(repo: Repo, fake: Secrets) -> None:
    findings = scan_diff(_agent_diff(repo, fake))
    shown = [repr(f) + str(f) + f.excerpt for f in findings] + [summarize(findings)]

    for secret in _all_secrets(fake):
        assert not any(secret in text for text in shown), "a secret leaked into a finding"


def test_excerpts_keep_the_first_characters_then_stars(repo: Repo, fake: Secrets) -> None:
    by_rule = {f.rule: f for f in scan_diff(_agent_diff(repo, fake))}

    assert by_rule["aws-access-key"].excerpt == 'AWS_ACCESS_KEY_ID = "AKIA****"'
    assert by_rule["gitlab-token"].excerpt == 'token = "glpa****"'
    assert by_rule["connection-string-with-password"].excerpt == (
        f'ENGINE_URL = "postgresql://app:{fake.url_password[:3]}****@db.internal/app"'
    )
    assert by_rule["private-key"].excerpt == "-----BEGIN RSA PRIVATE KEY-----"


def test_fingerprint_is_the_sha256_of_the_secret(repo: Repo, fake: Secrets) -> None:
    by_rule = {f.rule: f for f in scan_diff(_agent_diff(repo, fake))}

    assert by_rule["gitlab-token"].fingerprint == hashlib.sha256(fake.gitlab.encode()).hexdigest()
    body = "".join(line for line in fake.rsa_pem.splitlines() if "-----" not in line)
    assert by_rule["private-key"].fingerprint == hashlib.sha256(body.encode()).hexdigest()


def test_line_numbers_follow_the_hunk_headers_of_a_long_file(repo: Repo, fake: Secrets) -> None:
    lines = [f"value_{i} = {i}" for i in range(1, 200)]
    repo.commit({"app/config.py": "\n".join(lines) + "\n"})
    lines.insert(9, f'api_key = "{fake.entropy}"')  # new line 10
    lines[149] = f'db_password = "{fake.db_password}"'  # replaces a line, new line 150
    lines.append(f'token = "{fake.github}"')  # last line, 201

    findings = scan_diff(repo.diff({"app/config.py": "\n".join(lines) + "\n"}))

    assert [(f.line, f.rule) for f in findings] == [
        (10, "generic-secret-assignment"),
        (150, "generic-password-assignment"),
        (201, "github-token"),
    ]


def test_a_secret_already_in_the_file_and_untouched_is_not_the_agents(
    repo: Repo, fake: Secrets
) -> None:
    repo.commit({"app.py": f'import os\nTOKEN = "{fake.github}"\n\n\ndef main():\n    pass\n'})

    diff = repo.diff(
        {"app.py": f'import os\nTOKEN = "{fake.github}"\n\n\ndef main():\n    return 1\n'}
    )

    assert f'TOKEN = "{fake.github}"' in diff  # it is there, as context
    assert scan_diff(diff) == []


def test_secrets_on_removed_lines_are_not_findings(repo: Repo, fake: Secrets) -> None:
    repo.commit(
        {
            "settings.py": f'password = "{fake.db_password}"\nAWS = "{fake.aws_key_id}"\n',
            ".env": f"DB_PASSWORD={fake.env_password}\nGITLAB={fake.gitlab}\n",
            "old.pem": fake.rsa_pem,
        }
    )

    diff = repo.diff(
        {
            "settings.py": 'import os\npassword = os.environ["DB_PASSWORD"]\n',
            ".env": None,
            "old.pem": None,
        }
    )

    assert diff.count("\n-") >= 5
    assert scan_diff(diff) == []


def test_private_key_inside_a_json_string_is_found(repo: Repo, fake: Secrets) -> None:
    account = {"type": "service_account", "private_key": fake.rsa_pem, "client_id": "1049"}
    repo.commit({})

    findings = scan_diff(repo.diff({"gcp/sa.json": json.dumps(account, indent=2) + "\n"}))

    assert [(f.line, f.rule, f.severity) for f in findings] == [(3, "private-key", CRITICAL)]
    assert '"private_key": "-----BEGIN RSA PRIVATE KEY-----' in findings[0].excerpt
    assert "****" in findings[0].excerpt
    assert not any(chunk in findings[0].excerpt for chunk in _all_secrets(fake)[-3:])


def test_scan_text_scans_a_whole_file(fake: Secrets) -> None:
    text = f"# deploy\nhost: db\npassword: {fake.yaml_password}\n"

    findings = scan_text("deploy/db.yaml", text)

    assert [(f.path, f.line, f.rule) for f in findings] == [
        ("deploy/db.yaml", 3, "generic-password-assignment")
    ]


@pytest.mark.parametrize(
    ("path", "line", "rule"),
    [
        ("tests/test_login.py", 'login(password="Sup3rS3cretPassw0rd")',
         "generic-password-assignment"),
        ("src/app.py", 'KEY_ID = "AKIAIOSFODNN7EXAMPLE"', "aws-access-key"),
        ("src/app.py", 'GH = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"', "github-token"),
    ],
)  # fmt: skip
def test_test_fixtures_and_fake_values_are_downgraded_not_dropped(
    path: str, line: str, rule: str
) -> None:
    findings = scan_text(path, line + "\n")

    assert [(f.rule, f.severity) for f in findings] == [(rule, MEDIUM)]
    assert not is_blocking(findings)


def test_real_token_in_a_test_file_stays_critical(fake: Secrets) -> None:
    findings = scan_text("tests/test_forge.py", f'TOKEN = "{fake.github}"\n')

    assert [(f.rule, f.severity) for f in findings] == [("github-token", CRITICAL)]


def test_two_secrets_on_one_line_are_both_masked_in_each_excerpt(fake: Secrets) -> None:
    line = f'connect(password="{fake.db_password}", token="{fake.gitlab}")\n'

    findings: list[Finding] = scan_text("src/connect.py", line)

    assert sorted(f.rule for f in findings) == ["generic-password-assignment", "gitlab-token"]
    for finding in findings:
        assert fake.db_password not in finding.excerpt
        assert fake.gitlab not in finding.excerpt


def test_a_jwt_is_found_whole_with_its_signature(fake: Secrets) -> None:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    signature = fake.entropy.replace("+", "-").replace("/", "_")
    token = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'svc-deploy'})}.{signature}"

    findings = scan_text("src/auth.py", f'DEFAULT_TOKEN = "{token}"\n')

    assert [(f.rule, f.severity) for f in findings] == [("jwt", HIGH)]
    assert findings[0].fingerprint == hashlib.sha256(token.encode()).hexdigest()
    assert signature not in findings[0].excerpt


@pytest.mark.timeout(20)
def test_megabyte_lines_built_to_trip_regexes_scan_in_linear_time() -> None:
    lines = [
        "http://a:" * 100_000,
        "//registry/:_authToken=" * 40_000,
        "password: a" * 80_000,
        "'\"" * 300_000,
        "eyJabcdefgh." * 80_000,
    ]

    assert scan_text("dist/app.min.env", "\n".join(lines)) == []
