"""The hardened git runner: environment, config, transports, errors, timeouts, secrets."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import InvalidInput, RepoError
from appliance.logs import redactor
from appliance.repos.git import (
    Credentials,
    git_argv,
    git_env,
    hooks_dir,
    redact,
    run_git,
    split_credentials,
)
from tests.gitrepos import Upstream, plain_git


def test_the_environment_is_built_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "GIT_DIR": "/evil",
        "GIT_CONFIG_PARAMETERS": "'core.hookspath'='/evil'",
        "GIT_ASKPASS": "/evil/askpass",
        "SSH_ASKPASS": "/evil/askpass",
        "GIT_SSH_COMMAND": "/evil/ssh",
        "GIT_EXTERNAL_DIFF": "/evil/diff",
        "GIT_ALLOW_PROTOCOL": "ext",
        "HOME": "/evil-home",
    }.items():
        monkeypatch.setenv(name, value)
    env = git_env()
    assert not any("evil" in value for value in env.values())
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_LFS_SKIP_SMUDGE"] == "1"
    assert env["LC_ALL"] == "C"
    assert "GIT_ASKPASS" not in env
    assert "SSH_ASKPASS" not in env
    assert Path(env["HOME"]).is_dir()
    assert not any(Path(env["HOME"]).iterdir())


def test_the_hosts_global_config_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil.gitconfig"
    evil.write_text("[core]\n\thooksPath = /evil\n[user]\n\tname = evil\n[alias]\n\tst = !evil\n")
    (tmp_path / ".gitconfig").write_text(evil.read_text())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(evil))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    listed = run_git(["config", "--list", "--show-origin"]).text
    assert "evil" not in listed
    assert f"core.hookspath={hooks_dir()}" in listed
    assert "protocol.ext.allow=never" in listed
    assert "core.fsmonitor=false" in listed


def test_hardening_wins_over_the_repositorys_own_config(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    plain_git(tmp_path, "init", "--quiet", "--bare", str(repo))
    for key, value in (
        ("core.hooksPath", "/evil"),
        ("core.fsmonitor", "/evil/fsmonitor"),
        ("protocol.ext.allow", "always"),
        ("core.symlinks", "false"),
    ):
        plain_git(repo, "config", key, value)

    def get(key: str) -> str:
        return run_git(["config", "--get", key], git_dir=repo).text

    assert get("core.hooksPath") == str(hooks_dir())
    assert get("core.fsmonitor") == "false"
    assert get("protocol.ext.allow") == "never"
    assert get("core.symlinks") == "true"


def test_the_hooks_directory_is_empty_and_checked(tmp_path: Path) -> None:
    hooks = hooks_dir()
    assert hooks.is_dir()
    assert list(hooks.iterdir()) == []
    assert git_argv(["status"])[:3] == ["git", "-c", f"core.hooksPath={hooks}"]
    hooks.chmod(0o700)
    planted = hooks / "post-checkout"
    planted.write_text("#!/bin/sh\n")
    try:
        with pytest.raises(RepoError, match="holds files"):
            run_git(["version"])
    finally:
        planted.unlink()
        hooks.chmod(0o500)
    run_git(["version"])


def test_the_ext_transport_never_runs_a_command(tmp_path: Path) -> None:
    marker = tmp_path / "ext-ran"
    with pytest.raises(RepoError, match="transport 'ext' not allowed"):
        run_git(["clone", f"ext::sh -c touch% {marker}", str(tmp_path / "dest")])
    assert not marker.exists()


def test_the_file_transport_is_for_direct_use_only(upstream: Upstream, tmp_path: Path) -> None:
    run_git(["clone", "--quiet", "--bare", upstream.url, str(tmp_path / "direct.git")])
    with pytest.raises(RepoError, match="transport 'file' not allowed"):
        run_git(
            ["clone", "--quiet", "--bare", upstream.url, str(tmp_path / "indirect.git")],
            env={"GIT_PROTOCOL_FROM_USER": "0"},  # what git sets for submodules
        )


def test_a_failure_names_the_command_the_exit_code_and_stderr(upstream: Upstream) -> None:
    with pytest.raises(RepoError) as caught:
        run_git(["rev-parse", "--verify", "no-such-ref"], git_dir=upstream.bare)
    assert str(caught.value) == (
        "git rev-parse --verify no-such-ref failed (exit 128): fatal: Needed a single revision"
    )
    result = run_git(["rev-parse", "--verify", "no-such-ref"], git_dir=upstream.bare, check=False)
    assert result.returncode == 128


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """Accepts one connection, never answers, and says when the client went away."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                return
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], closed
    finally:
        listener.close()
        thread.join(35)


def test_a_timeout_kills_git_and_its_helpers(
    silent_server: tuple[int, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    port, closed = silent_server
    started = time.monotonic()
    with pytest.raises(RepoError, match=r"did not finish in 1 s and was stopped"):
        run_git(["ls-remote", f"http://127.0.0.1:{port}/x.git"], timeout=1)
    assert time.monotonic() - started < 10
    # git-remote-http held the connection; it was in the killed process group
    assert closed.wait(10)


def test_credentials_go_in_the_environment_not_in_argv(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording(argv: list[str], **kwargs: object) -> object:
        seen.append((argv, kwargs["env"]))  # type: ignore[arg-type]
        return real_popen(argv, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", recording)  # what run_git starts
    creds = Credentials("bot", "tok-123456789")
    run_git(["ls-remote", upstream.url], credentials=creds)
    ((argv, env),) = seen
    assert not any("tok-123456789" in a or creds.secrets[1] in a for a in argv)
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_VALUE_0"] == creds.header
    assert "tok-123456789" not in repr(creds)

    seen.clear()
    proxy = {"http.proxy": "http://user:proxy-pass-1@proxy.example:3128"}
    run_git(["ls-remote", upstream.url], credentials=creds, env_config=proxy)
    ((argv, env),) = seen
    assert not any("proxy-pass-1" in a for a in argv)
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert (env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == (
        "http.proxy",
        proxy["http.proxy"],
    )
    assert (env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == (
        "http.extraHeader",
        creds.header,
    )


def test_split_credentials_takes_userinfo_out_of_https_urls() -> None:
    clean, creds = split_credentials("https://alice:pa%40ss-word@git.example.com/a/b.git")
    assert clean == "https://git.example.com/a/b.git"
    assert creds == Credentials("alice", "pa@ss-word")
    clean, creds = split_credentials("https://git.example.com/x.git", token="t0ken-abcdef")
    assert (clean, creds) == (
        "https://git.example.com/x.git",
        Credentials("oauth2", "t0ken-abcdef"),
    )
    assert split_credentials("https://git.example.com/x.git") == (
        "https://git.example.com/x.git",
        None,
    )
    assert split_credentials("/srv/git/x.git", token="unused-token") == ("/srv/git/x.git", None)
    assert split_credentials("git@host:x.git") == ("git@host:x.git", None)
    for bad in ("", "--upload-pack=evil", "https://host/x\n.git"):
        with pytest.raises(InvalidInput):
            split_credentials(bad)


def test_redact_masks_userinfo_and_given_secrets() -> None:
    text = "fatal: unable to access 'https://bob:hunter22@host/x.git/': token sekrit-value-1"
    masked = redact(text, ["sekrit-value-1"])
    assert masked == "fatal: unable to access 'https://***@host/x.git/': token ***"
    redactor.add_secret("registered-secret-42")
    assert "registered-secret-42" not in redact("it was registered-secret-42")


def test_a_missing_repository_is_a_repo_error(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="could not start"):
        run_git(["rev-parse", "HEAD"], git_dir=tmp_path / "gone.git")


def test_a_password_in_a_url_is_refused_by_git_itself(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="credentials") as caught:
        run_git(["ls-remote", "https://bob:hunter2-secret@127.0.0.1:9/x.git"])
    assert "hunter2" not in str(caught.value)
