"""Translate PyGithub, python-gitlab and requests failures into ForgeError subclasses.

Forge code runs every library call inside ``with map_github_errors(...)`` or
``with map_gitlab_errors(...)``; nothing of those libraries' exception types leaves
the package. The classification is by HTTP status and headers, not by the libraries'
exception classes, so both forges give the same answer for the same response:

* 401 → :class:`ForgeAuthError`, 404 → :class:`ForgeNotFound`,
  409/422 → :class:`ForgeConflict` (with the server's own explanation),
* 429, or 403 with ``X-RateLimit-Remaining: 0`` (GitHub) / ``RateLimit-Remaining: 0``
  (GitLab) / ``Retry-After`` / a rate-limit message → :class:`ForgeRateLimited`
  carrying the seconds to wait,
* any other 403 → :class:`ForgePermissionError`, 5xx → :class:`ForgeUnavailable`,
* certificate failures → :class:`ForgeTLSError`; timeouts, refused connections, DNS and
  proxy failures → :class:`ForgeUnavailable`; a local file requests could not read (a
  ``ca_bundle`` that does not exist: requests raises a bare ``OSError``) →
  :class:`ForgeTLSError` naming the file.

With ``verify_tls=False`` urllib3 warns on every request; the forge has already
logged one warning of its own, so these contexts silence exactly that warning class.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import github
import gitlab
import requests
import urllib3

from appliance.forges.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    ForgePermissionError,
    ForgeRateLimited,
    ForgeTLSError,
    ForgeUnavailable,
)

SCOPE_HINTS = {
    "GitHub": (
        "A classic token needs the 'repo' scope; a fine-grained token needs read/write "
        "access to Contents and Pull requests and read access to Checks and Commit statuses "
        "for this repository."
    ),
    "GitLab": (
        "The token needs the 'api' scope, and its account at least the Developer role in "
        "the project."
    ),
}


@dataclass(frozen=True)
class Where:
    """What was being done, against which server: the subject of every message."""

    forge: str  # "GitHub" or "GitLab"
    url: str
    action: str  # "open the pull request", ...
    timeout: float | None = None


def http_error(
    status: int,
    message: str,
    headers: Mapping[str, str],
    where: Where,
    *,
    clock: Callable[[], float] = time.time,
) -> ForgeError:
    lower = {k.lower(): v for k, v in headers.items()}
    said = f"{status} {message}".strip()
    rate_limited = status == 429 or (
        status == 403
        and (
            lower.get("x-ratelimit-remaining") == "0"  # GitHub
            or lower.get("ratelimit-remaining") == "0"  # GitLab
            or "retry-after" in lower
            or "rate limit" in message.lower()
        )
    )
    if rate_limited:
        wait = _retry_after(lower, clock)
        when = f" Try again in {wait:.0f} s." if wait is not None else " Try again later."
        return ForgeRateLimited(
            f"{where.forge} rate-limited the request to {where.action} ({said}).{when}",
            retry_after=wait,
        )
    if status == 401:
        return ForgeAuthError(
            f"{where.forge} at {where.url} rejected the token while trying to {where.action} "
            f"({said}): it is invalid, expired or revoked. Create a new token and set it in "
            "the forge settings (token)."
        )
    if status == 403:
        return ForgePermissionError(
            f"{where.forge} refused to {where.action} ({said}): the token lacks a scope or "
            f"its account a role. {SCOPE_HINTS.get(where.forge, '')}".rstrip()
        )
    if status == 404:
        return ForgeNotFound(
            f"{where.forge} found nothing to {where.action} ({said}): the repository, branch "
            "or pull request does not exist, or the token cannot see it. Check the "
            "repository path in the settings and the token's access."
        )
    if status in (409, 422):
        return ForgeConflict(
            f"{where.forge} refused to {where.action}: {message or 'conflict'} ({status})."
        )
    if status >= 500:
        return ForgeUnavailable(
            f"{where.forge} at {where.url} failed to {where.action} ({said}): the server has "
            "a problem; nothing was lost, try again later."
        )
    return ForgeError(f"{where.forge} refused to {where.action} ({said}).")


def transport_error(exc: requests.RequestException, where: Where) -> ForgeError:
    if isinstance(exc, requests.exceptions.SSLError):
        return ForgeTLSError(
            f"the TLS certificate of {where.forge} at {where.url} could not be verified "
            f"({_reason(exc)}): set the CA bundle (ca_bundle) to the PEM file of the CA that "
            "signed it or, knowingly, verify_tls=false."
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return ForgeUnavailable(
            f"the proxy refused or failed the connection to {where.forge} at {where.url} "
            f"while trying to {where.action} ({_reason(exc)}): check proxy_url."
        )
    if isinstance(exc, requests.exceptions.Timeout):
        secs = f" within {where.timeout:g} s" if where.timeout else ""
        return ForgeUnavailable(
            f"{where.forge} at {where.url} did not answer{secs} while trying to "
            f"{where.action}: check that the server is up and base_url/proxy_url are right, "
            "or raise timeout. Nothing was lost; try again."
        )
    return ForgeUnavailable(
        f"could not connect to {where.forge} at {where.url} to {where.action} "
        f"({_reason(exc)}): check base_url, proxy_url and the network. Nothing was lost; "
        "try again."
    )


def local_error(exc: OSError, where: Where) -> ForgeError:
    """requests raises a bare OSError when ``ca_bundle`` names no file (and for other local
    files it cannot read): say which file and which setting."""
    filename = exc.filename or str(exc).rsplit(":", 1)[-1].strip()
    return ForgeTLSError(
        f"could not read the CA bundle {filename} needed to reach {where.forge} at "
        f"{where.url} to {where.action} ({exc.strerror or exc}): set ca_bundle to an "
        "existing PEM file of the CA that signed the forge's certificate."
    )


@contextlib.contextmanager
def quiet_insecure(insecure: bool) -> Iterator[None]:
    if not insecure:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


@contextlib.contextmanager
def map_github_errors(
    where: Where, *, clock: Callable[[], float] = time.time, insecure: bool = False
) -> Iterator[None]:
    try:
        with quiet_insecure(insecure):
            yield
    except github.GithubException as exc:
        message = _github_message(exc.data, exc.message)
        raise http_error(exc.status, message, exc.headers or {}, where, clock=clock) from exc
    except requests.RequestException as exc:
        raise transport_error(exc, where) from exc
    except OSError as exc:  # after RequestException, which is one too
        raise local_error(exc, where) from exc


@contextlib.contextmanager
def map_gitlab_errors(
    where: Where,
    *,
    headers: Callable[[], Mapping[str, str]] = dict,
    clock: Callable[[], float] = time.time,
    insecure: bool = False,
) -> Iterator[None]:
    """``headers`` returns the last response's headers (python-gitlab's errors lack them)."""
    try:
        with quiet_insecure(insecure):
            yield
    except gitlab.GitlabError as exc:
        if exc.response_code is None:
            raise ForgeError(
                f"GitLab gave an unexpected answer while trying to {where.action}: "
                f"{exc.error_message}"
            ) from exc
        message = _gitlab_message(exc.error_message)
        raise http_error(exc.response_code, message, headers(), where, clock=clock) from exc
    except requests.RequestException as exc:
        raise transport_error(exc, where) from exc
    except OSError as exc:  # after RequestException, which is one too
        raise local_error(exc, where) from exc


def _retry_after(headers: Mapping[str, str], clock: Callable[[], float]) -> float | None:
    with contextlib.suppress(ValueError):
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
        for name in ("x-ratelimit-reset", "ratelimit-reset"):
            if name in headers:
                return max(0.0, float(headers[name]) - clock())
    return None


def _github_message(data: Any, fallback: str | None) -> str:
    if not isinstance(data, dict):
        return fallback or ""
    message = str(data.get("message") or fallback or "")
    details = [
        str(e.get("message") or e.get("code"))
        for e in data.get("errors") or []
        if isinstance(e, dict) and (e.get("message") or e.get("code"))
    ]
    return f"{message}: {'; '.join(details)}" if details else message


def _gitlab_message(message: Any) -> str:
    if isinstance(message, list):
        return "; ".join(str(m) for m in message)
    if isinstance(message, dict):
        return json.dumps(message, sort_keys=True)
    return str(message)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "Name or service"):
        if marker in text:
            start = text.index(marker)
            return text[start : start + 120].split("'")[0].split(")")[0]
    return text[:200]
