"""What is not a secret stays quiet: placeholders, lookups, hashes, lock files, UUIDs."""

from __future__ import annotations

import socket

import pytest

from appliance.review import scan_diff, scan_text
from tests.review.conftest import Repo, Secrets


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("app/db.py", 'password = os.environ["DB_PASSWORD"]'),
        ("app/db.py", 'password = os.getenv("DB_PASSWORD", "")'),
        ("app/db.py", "password: str = Field(description='the database password')"),
        ("app/db.py", 'if password == "hunter2-but-compared":'),
        ("app/db.py", 'password = "changeme"'),
        ("app/db.py", 'password = "<password>"'),
        ("app/db.py", 'password = f"{prefix}{suffix}"'),
        ("app/db.py", 'api_key = "xxxxxxxxxxxxxxxxxxxxxxxx"'),
        ("app/db.py", 'api_key = "your-api-key-here"'),
        ("app/db.py", 'PASSWORD_MIN_LENGTH = 12'),
        ("app/db.py", 'token_url = "https://auth.internal/oauth/token"'),
        ("app/db.py", 'password_field = "password"'),
        ("app/db.py", 'DATABASE_URL = "postgresql://app:password@localhost/app"'),
        ("app/db.py", 'url = f"postgresql://{user}:{password}@{host}/app"'),
        ("deploy/values.yaml", 'password: "{{ vault_db_password }}"'),
        ("deploy/values.yaml", "password: ${DB_PASSWORD}"),
        ("deploy/values.yaml", "password: !vault |"),
        ("deploy/values.yaml", "passwordSecretRef: db-credentials"),
        (".env", "DB_PASSWORD=${DB_PASSWORD}"),
        (".env", "DB_PASSWORD="),
        (".env", "SECRET_KEY=changeme-in-production"),
        ("docs/setup.md", "Set `password` to the value of `DB_PASSWORD`."),
        ("app/keys.py", 'if "-----BEGIN RSA PRIVATE KEY-----" in text:'),
        ("app/ids.py", 'REQUEST_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"'),
        ("app/ids.json", '{"id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "version": 3}'),
        ("app/pins.py", 'sha256 = "9f86d081884c7d659a2feaa0c55ad015'
                        'a3bf4f1b2b0b822cd15d6c15b0f00a08"'),
        ("app/pins.py", 'commit = "4a1c2e9b7f3d5a6c8e0b1d2f3a4b5c6d7e8f9a0b"'),
        ("app/pins.py", 'ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'
                        'abcdefghijklmnopqrstuvwxyz0123456789"'),
        ("web/index.html", '<script src="app.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6'
                           '+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"></script>'),
        ("app/models.py", 'test_edit_outside_worktree_is_refused = "TestEditOutsideWorktree"'),
    ],
)  # fmt: skip
def test_not_a_secret(path: str, line: str) -> None:
    assert scan_text(path, line + "\n") == []


def test_lock_file_hashes_are_not_secrets(repo: Repo) -> None:
    repo.commit({})
    lock = (
        '{\n  "name": "web",\n  "lockfileVersion": 3,\n  "packages": {\n'
        '    "node_modules/left-pad": {\n      "version": "1.3.0",\n'
        '      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",\n'
        '      "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQtLTV2I7RMFW3TVKk4UqL'
        'BOvbyHuNmUs9mCp7ESQXzfRyhGTQJ6OzQk5Ovw5ZwUdfZz7dA=="\n    }\n  }\n}\n'
    )
    go_sum = (
        "golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=\n"
        "golang.org/x/text v0.14.0/go.mod h1:18ZOQIKpY8NJVqYksKHtTdi31H5itFRjB5/qKTNYzSU=\n"
    )

    diff = repo.diff({"web/package-lock.json": lock, "go.sum": go_sum})

    assert scan_diff(diff) == []


def test_a_token_in_a_lock_file_url_is_still_found(repo: Repo, fake: Secrets) -> None:
    repo.commit({})
    lock = f'{{"resolved": "https://gitlab.example.com/x.tgz?private_token={fake.gitlab}"}}\n'

    findings = scan_diff(repo.diff({"package-lock.json": lock}))

    assert [f.rule for f in findings] == ["gitlab-token"]


def test_scanning_never_touches_the_network(
    repo: Repo, fake: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the scanner tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    repo.commit({})
    diff = repo.diff(
        {
            "a.py": f'AWS = "{fake.aws_key_id}"\nSECRET = "{fake.aws_secret}"\n',
            "b.py": f'SLACK = "{fake.slack}"\nGH = "{fake.github}"\n',
            "c.pem": fake.rsa_pem,
        }
    )

    assert len(scan_diff(diff)) == 5
