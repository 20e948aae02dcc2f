"""A small private git runner for pushing and reading a remote's HEAD.

Kept inside the forge package on purpose (``appliance.repos.git`` is written in
parallel; the two should be merged). It runs git with:

* an argv list, never a shell, and a timeout;
* an environment built from scratch: ``PATH`` and ``LC_ALL=C`` only, plus
  ``GIT_CONFIG_NOSYSTEM=1``, ``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_TERMINAL_PROMPT=0``
  and ssh in batch mode, so neither the host's git configuration nor a prompt can
  interfere;
* ``-c core.hooksPath=/dev/null`` (no hook of the worktree runs), ``--no-verify``,
  ``protocol.ext.allow=never`` and no credential helper;
* credentials only as ``http.extraHeader`` through ``GIT_CONFIG_COUNT`` /
  ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n``: never in argv or a URL, where ``ps``
  or the remote's config could show them. CA bundle, TLS switch and proxy travel the
  same way.

git's stderr is classified into the same :class:`ForgeError` subclasses as HTTP
failures, with secrets masked by the log redactor.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from appliance.forges.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    ForgePermissionError,
    ForgeTLSError,
    ForgeUnavailable,
)
from appliance.forges.settings import ForgeSettings
from appliance.logs import redactor

HARDENING = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "credential.helper=",
)


def transport_config(settings: ForgeSettings) -> dict[str, str]:
    """git settings that mirror the forge's TLS and proxy settings."""
    config: dict[str, str] = {}
    if not settings.verify_tls:
        config["http.sslVerify"] = "false"
    elif settings.ca_bundle is not None:
        config["http.sslCAInfo"] = str(settings.ca_bundle)
    if settings.proxy_url:
        config["http.proxy"] = settings.proxy_url
    return config


def git_env(config: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    config: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    action: str = "run git",
) -> str:
    """Run ``git <args>``; return stdout or raise a :class:`ForgeError` subclass."""
    argv = ["git", *HARDENING, *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=git_env(config or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ForgeUnavailable(
            f"git did not finish within {timeout:g} s while trying to {action}: the remote "
            "is slow or unreachable. Nothing was lost; try again."
        ) from exc
    if proc.returncode != 0:
        # push --porcelain reports a rejected ref on stdout, the rest on stderr
        raise classify_git_failure(proc.stdout + proc.stderr, action)
    return proc.stdout


def classify_git_failure(stderr: str, action: str) -> ForgeError:
    text = redactor(stderr.strip())
    tail = "\n".join(text.splitlines()[-6:])
    low = text.lower()
    said = f"failed to {action}: {tail}"
    if "[rejected]" in low or "non-fast-forward" in low or "fetch first" in low:
        return ForgeConflict(
            f"git {said}\nThe remote branch has commits the local one lacks; the appliance "
            "never force-pushes. Fetch it and rebase the work onto it, or use a new branch."
        )
    if "ssl certificate" in low or "certificate verif" in low or "server certificate" in low:
        return ForgeTLSError(
            f"git {said}\nSet the CA bundle (ca_bundle) or, knowingly, verify_tls=false."
        )
    if "authentication failed" in low or "could not read username" in low or " 401" in low:
        return ForgeAuthError(
            f"git {said}\nThe token is missing, invalid or expired: set it in the forge "
            "settings (token)."
        )
    if " 403" in low or "protected branch" in low or "permission denied" in low:
        return ForgePermissionError(
            f"git {said}\nThe token may not push here: it needs write access to the "
            "repository, and the branch must not be protected."
        )
    if (
        "could not resolve host" in low
        or "connection refused" in low
        or "failed to connect" in low
        or "timed out" in low
        or "connection reset" in low
    ):
        return ForgeUnavailable(f"git {said}\nCheck the remote URL, the proxy and the network.")
    if "does not appear to be a git repository" in low or "not found" in low or " 404" in low:
        return ForgeNotFound(
            f"git {said}\nCheck the repository URL, and that the token can see it."
        )
    if "src refspec" in low and "does not match" in low:
        return ForgeError(f"git {said}\nThe branch does not exist in the worktree; commit first.")
    return ForgeError(f"git {said}")


def push(
    worktree: Path,
    url: str,
    refspec: str,
    *,
    config: Mapping[str, str],
    timeout: float,
) -> None:
    """Push exactly ``refspec`` (already checked by the rules) to ``url``."""
    if refspec.startswith("+") or ":+" in refspec or ":" not in refspec:
        raise AssertionError(f"unchecked refspec {refspec!r}")  # rules.check_push makes them
    run_git(
        ["push", "--porcelain", "--no-verify", "--", url, refspec],
        cwd=worktree,
        config=config,
        timeout=timeout,
        action=f"push {refspec.split(':', 1)[0].removeprefix('refs/heads/')}",
    )


def remote_default_branch(url: str, *, config: Mapping[str, str], timeout: float) -> str | None:
    """The branch a remote's HEAD points at (``git ls-remote --symref URL HEAD``)."""
    out = run_git(
        ["ls-remote", "--symref", "--", url, "HEAD"],
        config=config,
        timeout=timeout,
        action="read the remote's default branch",
    )
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[5:-5].removeprefix("refs/heads/")
    return None
