"""Go module versions and paths: what ``go.mod`` and a GOPROXY write, and how they order.

A Go version is semver with a mandatory ``v`` (``v1.2.3``, ``v1.3.0-rc.1``); build
metadata is ignored in ordering, and the only one Go writes is ``+incompatible`` (a v2+
tag of a module without a ``go.mod``, kept on the unsuffixed path). Order is semver's,
so :class:`~appliance.deps.semver.SemVer` does the comparing; the text keeps the ``v``
and any ``+incompatible``, because that is what goes back into ``go.mod``.

A *pseudo-version* names a commit, not a release (``v0.0.0-20240506185415-9bf2ced13842``,
``v1.2.4-0.2024…``, ``v1.3.0-rc.1.0.2024…``): :func:`is_pseudo` tells them apart so the
reader can leave them alone.

**Major versions live in the path.** From v2 on, a module's path ends in ``/vN``
(``gopkg.in`` paths in ``.vN``), so v1 → v2 is a new module with new import paths, not a
version bump. :func:`major_of_path` and :func:`path_for_major` name those paths, and
:func:`refusal` tells the planner never to cross into one (the newer major is then
reported as held back). v0 and v1 share the unsuffixed path, so v0.x → v1.x is an
ordinary (major) bump.

:func:`escape` writes a module path or version the way the GOPROXY protocol wants it in
a URL: every upper-case letter becomes ``!`` and its lower-case form.
"""

from __future__ import annotations

import re

from appliance.deps.semver import SemVer

_VERSION = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z.-]+))?$"
)
# The three pseudo-version shapes: vX.0.0-TIME-HASH, vX.Y.Z-pre.0.TIME-HASH and
# vX.Y.(Z+1)-0.TIME-HASH; TIME is yyyymmddhhmmss (UTC), HASH a commit's 12-hex prefix.
_PSEUDO = re.compile(
    r"^v\d+\.(?:0\.0-|\d+\.\d+-(?:[0-9A-Za-z.-]*\.)?0\.)\d{14}-[0-9A-Za-z]+(?:\+[0-9A-Za-z.-]+)?$"
)
_PATH_MAJOR = re.compile(r"/v([2-9]|[1-9]\d+)$")
_GOPKG_MAJOR = re.compile(r"^(gopkg\.in/.+)\.v(0|[1-9]\d*)(-unstable)?$")
INCOMPATIBLE = "+incompatible"


def parse(text: str) -> SemVer | None:
    """``text`` as a semantic version; None unless it is a canonical Go version."""
    match = _VERSION.match(text)
    if match is None:
        return None
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return SemVer(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)


def is_pseudo(text: str) -> bool:
    return parse(text) is not None and _PSEUDO.match(text) is not None


def is_incompatible(text: str) -> bool:
    return text.endswith(INCOMPATIBLE)


def major_of_path(path: str) -> int | None:
    """The major version a module path is for (``/v3`` → 3, ``gopkg.in/x.v2`` → 2); None
    for an unsuffixed path, which holds v0 and v1."""
    gopkg = _GOPKG_MAJOR.match(path)
    if gopkg:
        return int(gopkg.group(2))
    suffix = _PATH_MAJOR.search(path)
    return int(suffix.group(1)) if suffix else None


def path_for_major(path: str, major: int) -> str:
    """The path of ``path``'s module at ``major`` (``example.com/m`` → ``example.com/m/v2``)."""
    gopkg = _GOPKG_MAJOR.match(path)
    if gopkg:
        return f"{gopkg.group(1)}.v{major}"
    base = _PATH_MAJOR.sub("", path)
    return base if major < 2 else f"{base}/v{major}"


def refusal(path: str, current: str, candidate: str) -> str | None:
    """Why ``candidate`` cannot replace ``current`` by editing the version alone, if so."""
    if is_incompatible(candidate) and not is_incompatible(current):
        return f"a major version without a go.mod ({INCOMPATIBLE}); move to it by hand if at all"
    old, new_version = parse(current), parse(candidate)
    if old is None or new_version is None or is_incompatible(candidate):
        return None
    if new_version.major != old.major and max(new_version.major, old.major) >= 2:
        new = path_for_major(path, new_version.major)
        return (
            f"a new major version of a Go module is a new module path ({new}); change the "
            "require line and the import paths by hand"
        )
    return None


def escape(text: str) -> str:
    """``text`` in the GOPROXY protocol's case encoding (``BurntSushi`` → ``!burnt!sushi``)."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group().lower(), text)
