"""Run git so that nothing from a repository, or from the host's git configuration, executes.

Every git command of the appliance goes through :func:`run_git`:

* argv list, never a shell; the process gets its own session and the whole group is
  killed when the call's timeout passes;
* an environment built from scratch (only ``PATH``, proxies, CA settings and the ssh
  agent are taken from the host): no system or global configuration (the host user's
  ``~/.gitconfig`` could define filters, textconv or hooks), ``HOME`` an empty directory,
  no prompts, no LFS smudging, no replace objects, ``LC_ALL=C``;
* ``-c`` settings on every call (:data:`HARDENING`) that win over the repository's own
  configuration: hooks from an empty directory this module owns, no fsmonitor, only the
  usual transports (``ext::`` never; ``file`` only when asked for directly, never by a
  submodule), no submodule recursion, symlinks checked out as symlinks;
* credentials for https remotes only in the environment (``GIT_CONFIG_COUNT`` …,
  ``http.extraHeader``), never in argv or in a URL git could store (a URL with a
  password is refused by git itself: ``transfer.credentialsInUrl=die``);
* a failure raises :class:`~appliance.errors.RepoError` whose message names the command,
  the exit code and the end of stderr, with URLs' userinfo and every secret masked.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from appliance.errors import InvalidInput, RepoError
from appliance.logs import redactor

log = logging.getLogger(__name__)

NETWORK_TIMEOUT = 1800.0  # clone, fetch, ls-remote: big repositories over slow links
CHECKOUT_TIMEOUT = 600.0  # worktree add, add --all, commit, diff: work over a whole tree
LOCAL_TIMEOUT = 120.0  # everything else reads a few objects

STDERR_LINES = 20  # how much of stderr a RepoError quotes

# Taken from the host's environment; everything else (GIT_DIR, GIT_CONFIG_PARAMETERS,
# GIT_SSH_COMMAND, GIT_ASKPASS, GIT_EXTERNAL_DIFF, ...) is left behind.
_PASSTHROUGH = (
    "PATH",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)

# Settings given with -c on every call. Command-line settings beat the repository's own
# config file; global and system files are not read at all. core.hooksPath is added by
# hardening() because its directory is made on first use.
HARDENING: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.symlinks", "true"),  # checked out as links; the tools layer never follows them
    ("core.protectNTFS", "true"),
    ("core.protectHFS", "true"),
    ("core.useReplaceRefs", "false"),  # a mirror fetches refs/replace/* too
    ("core.askPass", ""),
    ("credential.helper", ""),  # no stored credentials, no helper programs
    ("transfer.credentialsInUrl", "die"),  # a password in a URL is refused, never stored
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.ssh.allow", "always"),
    ("protocol.git.allow", "always"),
    ("protocol.file.allow", "user"),  # a clone of a local repository, never a submodule's
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("safe.bareRepository", "explicit"),  # a bare repo inside a checkout is never picked up
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gc.autoDetach", "false"),  # no git left running in the background after a call
    ("http.lowSpeedLimit", "1000"),  # a stalled transfer fails instead of hanging
    ("http.lowSpeedTime", "120"),
    ("advice.detachedHead", "false"),
    ("advice.addEmbeddedRepo", "false"),
    ("init.defaultBranch", "main"),
)

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]+@")
_MASK = "***"


@dataclass(frozen=True)
class Credentials:
    """HTTP basic credentials for an https remote; sent as a header set in the env."""

    username: str
    token: str

    def __repr__(self) -> str:  # never print the token by accident
        return f"Credentials(username={self.username!r}, token='***')"

    @property
    def header(self) -> str:
        pair = f"{self.username}:{self.token}".encode()
        return "Authorization: Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.token, self.header.split(" ", 2)[2])


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """stdout as text, surrounding whitespace removed."""
        return self.stdout.decode("utf-8", "replace").strip()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets, URLs' userinfo and credential-shaped values masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return redactor(_USERINFO.sub(r"\1" + _MASK + "@", text))


def split_credentials(
    url: str, *, token: str | None = None, username: str = "oauth2"
) -> tuple[str, Credentials | None]:
    """The URL to give git (no userinfo for http/https) and the credentials to send.

    ``https://user:secret@host/x.git`` becomes ``https://host/x.git`` with ``user`` and
    ``secret``; an explicit ``token`` wins over a password in the URL. Other URLs (ssh,
    local paths) are returned as they are, with the token (if any) unused.
    """
    if not url or url != url.strip() or any(ord(c) < 32 for c in url):
        raise InvalidInput("the repository URL is empty or holds control characters", field="url")
    if url.startswith("-"):
        raise InvalidInput(f"{redact(url)!r} is not a repository URL", field="url")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url, None
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    host = parts.netloc.rpartition("@")[2]
    clean = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    secret = token or password
    if password:
        redactor.add_secret(password)
    if not secret:
        return clean, None
    redactor.add_secret(secret)
    return clean, Credentials(user if (user and not token) else username, secret)


def _owned_dirs() -> tuple[Path, Path]:
    """(hooks, home): two empty directories made on first use, removed at exit. ``home``
    is also the working directory of calls that name no repository."""
    hooks, home = _make_owned_dirs()
    if not (hooks.is_dir() and home.is_dir()):  # a /tmp cleaner took them: make new ones
        _make_owned_dirs.cache_clear()
        hooks, home = _make_owned_dirs()
    return hooks, home


@cache
def _make_owned_dirs() -> tuple[Path, Path]:
    base = Path(tempfile.mkdtemp(prefix="appliance-git-"))
    hooks, home = base / "hooks", base / "home"
    hooks.mkdir()
    home.mkdir()
    for path in (hooks, home):
        path.chmod(0o500)  # nothing is meant to be written here, by anyone
    atexit.register(_remove_owned, base)
    return hooks, home


def _remove_owned(base: Path) -> None:
    for path in (base / "hooks", base / "home"):
        with contextlib.suppress(OSError):
            path.chmod(0o700)
    shutil.rmtree(base, ignore_errors=True)


def hooks_dir() -> Path:
    """The empty directory given as ``core.hooksPath``; refuses to go on if it is not empty."""
    hooks, _ = _owned_dirs()
    if any(hooks.iterdir()):
        raise RepoError(f"{hooks} (the empty hooks directory) holds files; refusing to run git")
    return hooks


def hardening() -> list[tuple[str, str]]:
    return [("core.hooksPath", str(hooks_dir())), *HARDENING]


def git_env(
    credentials: Credentials | None = None,
    extra: Mapping[str, str] | None = None,
    env_config: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a git process. ``env_config`` (and the credentials' header)
    become ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``: settings kept out of argv."""
    _, home = _owned_dirs()
    env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_SYSTEM=os.devnull,
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ATTR_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_LFS_SKIP_SMUDGE="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",  # no password prompt from ssh either
        GIT_EDITOR=":",  # git's own no-op, nothing is run
        GIT_PAGER="cat",
        GIT_CEILING_DIRECTORIES=str(home.parent),  # no repository discovered around home
        LC_ALL="C",
        LANG="C",
    )
    hidden = list((env_config or {}).items())
    if any(key.lower() == "http.sslcainfo" for key, _ in hidden):
        # git lets GIT_SSL_CAINFO/CAPATH win over http.sslCAInfo: a repository's own CA
        # bundle (a company CA) must win over the host's default one
        env.pop("GIT_SSL_CAINFO", None)
        env.pop("GIT_SSL_CAPATH", None)
    if credentials is not None:
        hidden.append(("http.extraHeader", credentials.header))
    if hidden:
        env["GIT_CONFIG_COUNT"] = str(len(hidden))
        for i, (key, value) in enumerate(hidden):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
    env.update(extra or {})
    return env


def git_argv(
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    config: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv of one git call: hardening settings, explicit repository, then ``args``."""
    argv = ["git"]
    for key, value in [*hardening(), *(config or {}).items()]:
        argv += ["-c", f"{key}={value}"]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    return argv + list(args)


def run_git(
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    cwd: Path | None = None,
    input: bytes | None = None,
    timeout: float = LOCAL_TIMEOUT,
    credentials: Credentials | None = None,
    config: Mapping[str, str] | None = None,
    env_config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> GitResult:
    """Run ``git <args>`` hardened; raise ``RepoError`` on a non-zero exit when ``check``.

    ``git_dir``/``work_tree`` name the repository explicitly, so nothing is discovered
    from ``cwd`` (a worktree's ``.git`` file is content the sandbox could have rewritten).
    ``config`` goes in argv as ``-c``; ``env_config`` (a proxy with a password, a CA
    path) through the environment, like the credentials. ``env`` adds variables.
    """
    git_dir = git_dir.absolute() if git_dir is not None else None
    work_tree = work_tree.absolute() if work_tree is not None else None
    argv = git_argv(args, git_dir=git_dir, work_tree=work_tree, config=config)
    secrets = credentials.secrets if credentials else ()
    shown = redact("git " + shlex.join(args), secrets)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd if cwd is not None else (git_dir or _owned_dirs()[1]),
            env=git_env(credentials, env, env_config),
            start_new_session=True,  # its own process group: a timeout kills every helper
        )
    except OSError as exc:  # no git on PATH, or the repository directory is gone
        raise RepoError(redact(f"{shown} could not start: {exc}", secrets)) from exc
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise RepoError(f"{shown} did not finish in {timeout:g} s and was stopped") from None
    except BaseException:
        _kill(proc)
        raise
    elapsed = time.monotonic() - started
    log.debug("%s: exit %d in %.3f s", shown, proc.returncode, elapsed)
    result = GitResult(proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise RepoError(failure_message(shown, result, secrets))
    return result


def failure_message(shown: str, result: GitResult, secrets: Iterable[str] = ()) -> str:
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    tail = "\n".join(lines[-STDERR_LINES:])[-4000:]
    message = f"{shown} failed (exit {result.returncode})"
    return redact(f"{message}: {tail}" if tail else message, secrets)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)
