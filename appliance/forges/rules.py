"""Publishing rules that hold whatever the model or the user asks.

Every forge calls :func:`check_push` before it runs git and :meth:`PrQuota.check`
before it opens a pull/merge request, so the rules live here, once:

* never force: ``force=True``, a ``+`` refspec or a ``--force``-like option is refused;
  the push itself uses the explicit refspec ``refs/heads/X:refs/heads/X``;
* branch names are ``appliance/{yyyymmdd-hhmm}-{slug}`` (:func:`branch_name` makes one,
  :func:`validate_branch_name` checks one), or ``appliance/deps/{key}`` for the nightly
  dependency bumps (:func:`bump_branch`), so the appliance can only create its own
  branches;
* a branch is deleted only when it is one of those and neither the default nor a
  protected branch (:func:`check_delete`);
* never the default branch nor a protected branch (exact names or fnmatch patterns);
* at most ``limit`` PRs per user per day (:class:`PrQuota`).

:func:`commit_message` writes the message for the platform identity with a
``Co-authored-by`` trailer for the user who asked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase

from appliance.forges.errors import PushRefused, QuotaExceeded

BRANCH_PREFIX = "appliance/"
SLUG_MAX = 50
BRANCH_RE = re.compile(r"^appliance/\d{8}-\d{4}-[a-z0-9]+(?:-[a-z0-9]+)*$")
#: the nightly dependency bumps: one stable branch per bump group (its key), so that a
#: newer bump of the same group updates the open PR instead of opening another
BUMP_PREFIX = "appliance/deps/"
BUMP_RE = re.compile(r"^appliance/deps/[a-z0-9]+(?:[._-][a-z0-9]+)*$")
BUMP_KEY_MAX = 100
DEFAULT_PR_LIMIT = 10

_FORCE_OPTIONS = ("--force", "-f", "--force-with-lease", "--force-if-includes", "--mirror")


def slugify(title: str, max_len: int = SLUG_MAX) -> str:
    """Lower-case ASCII words joined by ``-``; ``task`` when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_len:
            if not slug:  # one very long word: cut it
                slug = word[:max_len]
            break
        slug = candidate
    return slug or "task"


def branch_name(now: datetime, title: str, *, unique: str = "") -> str:
    """``appliance/20250301-1430-add-jwt-middleware`` for a task created at ``now``; with
    ``unique`` (e.g. the start of the task id) appended, so that two tasks asking the same
    thing in the same minute never share a branch."""
    suffix = slugify(unique, 12) if unique else ""
    room = SLUG_MAX - (len(suffix) + 1 if suffix else 0)
    slug = slugify(title, room)
    return f"{BRANCH_PREFIX}{now:%Y%m%d-%H%M}-{slug}" + (f"-{suffix}" if suffix else "")


def bump_branch(key: str) -> str:
    """``appliance/deps/python-non-major`` for the bump group ``python-non-major``."""
    return validate_branch_name(BUMP_PREFIX + key)


def validate_branch_name(name: str) -> str:
    if BUMP_RE.match(name) and len(name) <= len(BUMP_PREFIX) + BUMP_KEY_MAX:
        return name
    if not BRANCH_RE.match(name) or len(name) > len(BRANCH_PREFIX) + 14 + SLUG_MAX:
        raise PushRefused(
            f"branch {name!r} is not an appliance branch: names must look like "
            "appliance/YYYYMMDD-HHMM-some-slug (lower-case letters, digits and dashes, "
            f"slug at most {SLUG_MAX} characters), or appliance/deps/<bump-group> for "
            "dependency bumps"
        )
    return name


def check_delete(
    branch: str, *, default_branch: str | None = None, protected: Iterable[str] = ()
) -> str:
    """Refuse to delete anything but the appliance's own, unprotected branches."""
    name = _strip_heads(branch)
    if name == default_branch or is_protected(name, protected):
        which = "the default branch" if name == default_branch else "a protected branch"
        raise PushRefused(f"refusing to delete {name!r}: it is {which}")
    try:
        return validate_branch_name(name)
    except PushRefused as exc:
        raise PushRefused(
            f"refusing to delete {name!r}: the appliance deletes only its own branches "
            "(appliance/YYYYMMDD-HHMM-slug, appliance/deps/<bump-group>)"
        ) from exc


def is_protected(branch: str, patterns: Iterable[str]) -> bool:
    return any(branch == p or fnmatchcase(branch, p) for p in patterns)


def check_push(
    branch: str,
    *,
    force: bool = False,
    options: Iterable[str] = (),
    default_branch: str | None = None,
    protected: Iterable[str] = (),
) -> str:
    """Refuse a push the rules forbid; return the refspec to push.

    ``branch`` may be given as a bare name, ``refs/heads/X`` or ``X:X``; whatever the
    form, the result is ``refs/heads/X:refs/heads/X`` with no ``+``.
    """
    opts = list(options)
    forced = [o for o in [*opts, branch] if o.split("=", 1)[0] in _FORCE_OPTIONS]
    if force or forced or branch.startswith("+") or ":+" in branch:
        raise PushRefused(
            "force-pushing is never allowed: the appliance only adds commits on top of the "
            "remote branch. Fetch the remote branch and rebase the work onto it instead."
        )
    if opts:
        raise PushRefused(f"extra push options are not accepted: {opts!r}")
    name = _branch_of(branch)
    protected = list(protected)
    if name == default_branch or is_protected(name, protected):
        which = "the default branch" if name == default_branch else "a protected branch"
        raise PushRefused(
            f"refusing to push to {name!r}: it is {which}. The appliance pushes only its own "
            "appliance/... branches and opens a pull/merge request for review."
        )
    validate_branch_name(name)
    return f"refs/heads/{name}:refs/heads/{name}"


def _branch_of(spec: str) -> str:
    if ":" in spec:
        src, dst = spec.split(":", 1)
        if _strip_heads(src) != _strip_heads(dst):
            raise PushRefused(
                f"refspec {spec!r} pushes one branch onto another; push a branch to the "
                "branch of the same name"
            )
        spec = dst
    return _strip_heads(spec)


def _strip_heads(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def commit_message(
    subject: str, body: str = "", *, co_author_name: str, co_author_email: str
) -> str:
    """Subject, blank line, body, blank line, ``Co-authored-by: Name <email>``."""
    subject = " ".join(subject.split())[:72] or "Changes made by the coding agent"
    name = " ".join(co_author_name.replace("<", "").replace(">", "").split())
    email = co_author_email.strip()
    if not re.fullmatch(r"[^\s<>@]+@[^\s<>@]+", email):
        raise ValueError(f"co-author email {co_author_email!r} is not an e-mail address")
    parts = [subject]
    if body.strip():
        parts.append(body.strip())
    parts.append(f"Co-authored-by: {name or email} <{email}>")
    return "\n\n".join(parts) + "\n"


class PrQuota:
    """At most ``limit`` PRs per user per UTC day, counted by the caller's ``count``.

    ``count(user, day)`` returns how many PRs ``user`` opened on ``day`` (the store
    supplies it). :meth:`check` raises :class:`QuotaExceeded` when none is left.
    """

    def __init__(
        self,
        count: Callable[[str, date], int],
        *,
        limit: int = DEFAULT_PR_LIMIT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._count = count
        self.limit = limit
        self._now = now

    def remaining(self, user: str) -> int:
        return max(0, self.limit - self._count(user, self._now().date()))

    def check(self, user: str) -> int:
        """Return how many PRs ``user`` may still open today, at least 1, or raise."""
        left = self.remaining(user)
        if left <= 0:
            tomorrow = datetime.combine(self._now().date() + timedelta(days=1), datetime.min.time())
            raise QuotaExceeded(
                f"{user} has opened {self.limit} pull requests today, the daily limit; the "
                f"approved change is kept and can be published after {tomorrow:%Y-%m-%d} "
                "00:00 UTC, or an administrator can raise the limit.",
                user=user,
                limit=self.limit,
            )
        return left
