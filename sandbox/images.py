"""Sandbox images built without a registry.

A root filesystem comes from the distribution's package mirror (mmdebstrap, no
network beyond the mirror), is imported with ``podman import`` as the sandbox user,
and what else the image needs is layered with ``podman build --network=none``.
Images are built once and reused; ``podman save``/``load`` move them to air-gapped
hosts.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import SandboxError, SandboxUnavailable
from sandbox.service import SETUP_HINT, SandboxUser

log = logging.getLogger(__name__)

SUITE = "bookworm"
IMAGE_VERSION = "1"
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
)
# Offline installs inside the sandbox read from the per-repository caches mounted
# at /deps (a pip wheelhouse, an npm cache); nothing reaches a network.
_PIP_CONF = """[global]
no-index = true
find-links = /deps/wheelhouse
disable-pip-version-check = true
"""
_NPMRC = """offline=true
cache=/deps/npm-cache
audit=false
fund=false
update-notifier=false
"""


@dataclass(frozen=True)
class ImageRecipe:
    kind: str
    packages: tuple[str, ...]
    containerfile: str

    @property
    def name(self) -> str:
        return f"localhost/appliance-sandbox-{self.kind}:{IMAGE_VERSION}"

    @property
    def base_name(self) -> str:
        return f"localhost/appliance-sandbox-{self.kind}-rootfs:{IMAGE_VERSION}"


_COMMON = ("ca-certificates", "git", "coreutils", "procps")
# The base of the appliance's own image (the Containerfile's BASE) when no Python image
# can be carried in (the Containerfile names it localhost/python:3.11-slim-bookworm):
# Debian's Python 3.11, venv, git and useradd, from the mirror alone.
APPLIANCE_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "git", "passwd")
RECIPES: dict[str, ImageRecipe] = {
    "python": ImageRecipe(
        kind="python",
        packages=(
            *_COMMON,
            "python3",
            "python3-pip",
            "python3-venv",
            "python3-pytest",
            "python3-flake8",
            "build-essential",
        ),
        containerfile=(
            "FROM {base}\n"
            "COPY pip.conf /etc/pip.conf\n"
            "RUN mkdir -p /deps /workspace && python3 -m pytest --version\n"
            'LABEL appliance.sandbox.kind="python"\n'
            "WORKDIR /workspace\n"
        ),
    ),
    "node": ImageRecipe(
        kind="node",
        packages=(*_COMMON, "nodejs", "npm"),
        containerfile=(
            "FROM {base}\n"
            "COPY npmrc /etc/npmrc\n"
            "RUN mkdir -p /deps /workspace && node --version && npm --version\n"
            'LABEL appliance.sandbox.kind="node"\n'
            "WORKDIR /workspace\n"
        ),
    ),
}


def recipe(kind: str) -> ImageRecipe:
    try:
        return RECIPES[kind]
    except KeyError:
        raise SandboxError(f"no sandbox image kind {kind!r}; known: {', '.join(RECIPES)}") from None


def host_apt_sources(root: Path = Path("/etc/apt")) -> list[str]:
    """The host's mirror as one-line ``deb URI SUITE COMPONENTS`` entries (deb822 and
    classic formats), so images come from the same mirror the host uses."""
    lines: list[str] = []
    classic = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in classic:
        if path.is_file():
            for raw in path.read_text().splitlines():
                raw = raw.split("#", 1)[0].strip()
                if raw.startswith("deb "):
                    lines.append(raw)
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for raw in stanza.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                key, _, value = raw.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    lines.append(f"deb {uri} {suite} {fields.get('components', 'main')}")
    return [line for line in lines if SUITE in line.split()[2]]


def image_exists(user: SandboxUser, name: str) -> bool:
    return user.run(["podman", "image", "exists", name], timeout=60).returncode == 0


def import_rootfs(
    packages: tuple[str, ...],
    name: str,
    *,
    user: SandboxUser,
    sources: list[str] | None = None,
) -> None:
    """A minimal Debian root filesystem with ``packages``, made from the host's mirror by
    mmdebstrap and imported as the image ``name`` into ``user``'s store: the sandbox
    images' bases, and a Python base for the appliance's own Containerfile."""
    if shutil.which("mmdebstrap") is None:
        raise SandboxUnavailable(f"mmdebstrap is not installed: {SETUP_HINT}")
    sources = sources if sources is not None else host_apt_sources()
    if not sources:
        raise SandboxUnavailable(
            f"no apt source for {SUITE} found in /etc/apt; pass the mirror explicitly"
        )
    debstrap = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--include=" + ",".join(packages),
        *(f"--dpkgopt=path-exclude={p}" for p in _DPKG_EXCLUDES),
        SUITE,
        "-",
        *sources,
    ]
    importer = user.command(
        [
            "podman",
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            "--change",
            "ENV LANG=C.UTF-8",
            "-",
            name,
        ]
    )
    with subprocess.Popen(debstrap, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as strap:
        assert strap.stdout is not None
        imported = subprocess.run(
            importer, stdin=strap.stdout, capture_output=True, check=False, timeout=1800
        )
        strap.stdout.close()
        strap_err = strap.stderr.read().decode(errors="replace") if strap.stderr else ""
        strap.wait(timeout=1800)
    if strap.returncode != 0:
        raise SandboxError(f"mmdebstrap failed ({strap.returncode}): {strap_err[-2000:]}")
    if imported.returncode != 0:
        raise SandboxError(
            f"podman import failed: {imported.stderr.decode(errors='replace')[-2000:]}"
        )


def build(
    kind: str,
    *,
    user: SandboxUser,
    sources: list[str] | None = None,
    if_missing: bool = False,
    progress: Callable[[str], None] = print,
) -> str:
    """Build the image of ``kind``; return its name."""
    spec = recipe(kind)
    if if_missing and image_exists(user, spec.name):
        progress(f"{spec.name} is present; nothing to build")
        return spec.name
    started = time.monotonic()
    progress(f"[1/2] root filesystem for {kind} (mmdebstrap) ...")
    import_rootfs(spec.packages, spec.base_name, user=user, sources=sources)
    progress(f"[2/2] layering {spec.name} (podman build --network=none) ...")
    with tempfile.TemporaryDirectory(prefix="appliance-image-") as tmp:
        context = Path(tmp)
        context.chmod(0o755)
        (context / "Containerfile").write_text(spec.containerfile.format(base=spec.base_name))
        (context / "pip.conf").write_text(_PIP_CONF)
        (context / "npmrc").write_text(_NPMRC)
        for child in context.iterdir():
            child.chmod(0o644)
        built = user.run(
            [
                "podman",
                "build",
                "--network=none",
                "--pull=never",
                "-t",
                spec.name,
                "-f",
                str(context / "Containerfile"),
                str(context),
            ],
            timeout=1800,
        )
    if built.returncode != 0:
        raise SandboxError(
            f"podman build failed: {(built.stdout + built.stderr).decode(errors='replace')[-2000:]}"
        )
    progress(f"built {spec.name} in {time.monotonic() - started:.0f} s")
    return spec.name


def save(kind: str, output: Path, *, user: SandboxUser) -> None:
    """Write the image to a tarball for an air-gapped host (``podman save``)."""
    spec = recipe(kind)
    with output.open("wb") as fh:
        result = subprocess.run(
            user.command(["podman", "save", spec.name]),
            stdout=fh,
            stderr=subprocess.PIPE,
            check=False,
            timeout=1800,
        )
    if result.returncode != 0:
        raise SandboxError(f"podman save failed: {result.stderr.decode(errors='replace')[-1000:]}")


def load(archive: Path, *, user: SandboxUser) -> None:
    """Load an image tarball written by :func:`save` (``podman load``)."""
    with archive.open("rb") as fh:
        result = subprocess.run(
            user.command(["podman", "load"]),
            stdin=fh,
            capture_output=True,
            check=False,
            timeout=1800,
        )
    if result.returncode != 0:
        raise SandboxError(f"podman load failed: {result.stderr.decode(errors='replace')[-1000:]}")
