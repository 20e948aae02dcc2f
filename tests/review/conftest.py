"""Real git repositories whose ``git diff`` the scanner reads, and realistic fake secrets.

The secrets are built at run time from a seeded generator, so this test suite itself holds
no secret-shaped literal for a scanner (ours or the forge's) to trip on.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FileContent = str | bytes | None  # None deletes the file

_ALNUM = string.ascii_letters + string.digits


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "LC_ALL": "C",
    }
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()  # unstripped: a diff's trailing context line matters


@dataclass
class Repo:
    root: Path

    def write(self, files: Mapping[str, FileContent]) -> None:
        for name, content in files.items():
            path = self.root / name
            if content is None:
                path.unlink()
            elif isinstance(content, bytes):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)

    def commit(self, files: Mapping[str, FileContent]) -> None:
        self.write(files)
        _git(self.root, "add", "--all")
        _git(self.root, "commit", "--quiet", "--allow-empty", "-m", "base")

    def diff(self, files: Mapping[str, FileContent], *renames: tuple[str, str]) -> str:
        """The diff `git diff` prints for these changes against the last commit."""
        for old, new in renames:
            (self.root / new).parent.mkdir(parents=True, exist_ok=True)
            _git(self.root, "mv", old, new)
        self.write(files)
        _git(self.root, "add", "--all")
        return _git(self.root, "diff", "--cached", "-M", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    _git(tmp_path, "init", "--quiet")
    return Repo(tmp_path)


@dataclass(frozen=True)
class Secrets:
    """Values shaped like the real thing, random enough to pass every entropy check."""

    rsa_pem: str
    aws_key_id: str
    aws_secret: str
    github: str
    github_pat: str
    gitlab: str
    slack: str
    openai: str
    db_password: str
    yaml_password: str
    env_password: str
    url_password: str
    entropy: str


def _random(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


@pytest.fixture(scope="session")
def fake() -> Secrets:
    rng = random.Random(20240611)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    digits = string.digits
    return Secrets(
        rsa_pem=pem,
        aws_key_id="AKIA" + _random(rng, string.ascii_uppercase + digits, 16),
        aws_secret=_random(rng, _ALNUM + "/+", 40),
        github="ghp_" + _random(rng, _ALNUM, 36),
        github_pat="github_pat_" + _random(rng, _ALNUM, 22) + "_" + _random(rng, _ALNUM, 59),
        gitlab="glpat-" + _random(rng, _ALNUM, 20),
        slack="xoxb-" + "-".join(_random(rng, digits, n) for n in (12, 13)) + "-"
        + _random(rng, _ALNUM, 24),
        openai="sk-proj-" + _random(rng, _ALNUM, 48),
        db_password=_random(rng, _ALNUM, 12) + "!#",
        yaml_password=_random(rng, _ALNUM, 16),
        env_password=_random(rng, _ALNUM, 18),
        url_password=_random(rng, _ALNUM, 14),
        entropy=_random(rng, _ALNUM + "+/", 44),
    )  # fmt: skip
