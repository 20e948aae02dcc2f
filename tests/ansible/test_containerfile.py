"""The appliance image, built the air-gapped way: the top-level Containerfile with
`podman build --network=none --pull=never` from a base image made from the Debian mirror
alone (mmdebstrap + podman import, the Containerfile's option b) and the release
wheelhouse. The image runs `appliance serve` as a non-root user and turns healthy.

Built in the sandbox user's rootless store (the Podman this host's other tests use);
the images and the container are removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.images import APPLIANCE_BASE_PACKAGES, import_rootfs
from sandbox.service import SandboxUser
from tests.ansible.release import Release, copy_sources
from tests.servers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# Test names, so an operator's own localhost/python and localhost/appliance stay untouched.
BASE = "localhost/appliance-test-python:3.11-bookworm"
IMAGE = "localhost/appliance-test:containerfile"
CONTAINER = "appliance-containerfile-test"


def _podman(
    user: SandboxUser, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return user.run(["podman", *args], timeout=timeout)


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def _context(release: Release, dest: Path) -> None:
    """What the Containerfile copies, and the wheelhouse, readable by the sandbox user."""
    copy_sources(dest)
    shutil.copy2(REPO_ROOT / "Containerfile", dest / "Containerfile")
    shutil.copytree(release.wheelhouse, dest / "wheelhouse")
    for root, dirs, files in os.walk(dest):
        for name in dirs:
            Path(root, name).chmod(0o755)
        for name in files:
            Path(root, name).chmod(0o644)
    dest.chmod(0o755)


@pytest.fixture(scope="module")
def user() -> SandboxUser:
    return SandboxUser.lookup()


@pytest.fixture(scope="module")
def image(release: Release, user: SandboxUser) -> Iterator[str]:
    try:
        import_rootfs(APPLIANCE_BASE_PACKAGES, BASE, user=user)
        with tempfile.TemporaryDirectory(prefix="appliance-containerfile-") as tmp:
            context = Path(tmp)
            _context(release, context)
            built = _podman(
                user,
                "build",
                "--format",
                "docker",
                "--network=none",
                "--pull=never",
                "--build-arg",
                f"BASE={BASE}",
                "-t",
                IMAGE,
                str(context),
                timeout=1500,
            )
        assert built.returncode == 0, f"podman build failed:\n{_text(built)[-6000:]}"
        yield IMAGE
    finally:
        _podman(user, "rm", "--force", "--ignore", CONTAINER)
        _podman(user, "rmi", "--force", "--ignore", IMAGE, BASE)
        _podman(user, "image", "prune", "--force")  # the build stage


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck(
    image: str, user: SandboxUser
) -> None:
    inspected = _podman(user, "image", "inspect", image)
    assert inspected.returncode == 0, _text(inspected)
    (config,) = json.loads(inspected.stdout)
    assert config["Config"]["User"] == "appliance"
    assert config["Config"]["Entrypoint"] == ["appliance"]
    health = config.get("Healthcheck") or {}  # kept by --format docker
    assert any("/readyz" in part for part in health.get("Test", [])), config["Config"]
    helped = _podman(user, "run", "--rm", image, "--help")
    assert helped.returncode == 0, _text(helped)
    assert "serve" in helped.stdout.decode()


def test_the_container_serves_and_turns_healthy(image: str, user: SandboxUser) -> None:
    started = _podman(
        user,
        "run",
        "--detach",
        "--name",
        CONTAINER,
        "--env",
        f"APPLIANCE_SECURITY__SECRET_KEY={os.urandom(32).hex()}",
        "--env",
        "APPLIANCE_SANDBOX__CLEANUP_ON_START=0",
        image,
    )
    assert started.returncode == 0, _text(started)
    deadline = time.monotonic() + 120
    health = _podman(user, "healthcheck", "run", CONTAINER)
    while health.returncode != 0 and time.monotonic() < deadline:
        time.sleep(2)
        health = _podman(user, "healthcheck", "run", CONTAINER)
    logs = _text(_podman(user, "logs", CONTAINER))
    assert health.returncode == 0, f"never healthy: {_text(health)}\n{logs[-4000:]}"
    uid = _podman(user, "exec", CONTAINER, "id", "-u")
    assert uid.returncode == 0, _text(uid)
    assert uid.stdout.strip() != b"0", "the appliance runs as root in its container"
    ready = _podman(
        user,
        "exec",
        CONTAINER,
        "python3",
        "-c",
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8000/readyz', timeout=5).read().decode())",
    )
    assert ready.returncode == 0, _text(ready)
    assert json.loads(ready.stdout)["status"] == "ready"
