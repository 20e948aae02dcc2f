"""Images built without a registry, and moved to air-gapped hosts as tarballs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import images
from sandbox.errors import SandboxError
from sandbox.service import SandboxUser
from tests.servers import REPO_ROOT


def test_host_mirror_is_read_from_deb822_and_classic_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# a comment\ndeb http://mirror.corp/debian bookworm main contrib\n"
        "deb http://mirror.corp/other trixie main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.corp/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb-src\nURIs: http://x\nSuites: bookworm\n"
        "Components: main\n\nTypes: deb\nURIs: http://off\nSuites: bookworm\nEnabled: no\n"
    )
    assert images.host_apt_sources(tmp_path) == [
        "deb http://mirror.corp/debian bookworm main contrib",
        "deb http://mirror.corp/debian-security bookworm-security main",
    ]


def test_unknown_image_kind_says_which_exist() -> None:
    with pytest.raises(SandboxError, match="known: python, node"):
        images.recipe("cobol")


@pytest.mark.slow
def test_images_are_built_and_survive_a_save_load_round_trip(tmp_path: Path) -> None:
    user = SandboxUser.lookup()
    for recipe in images.RECIPES.values():
        assert images.image_exists(user, recipe.name), f"{recipe.name}: make test builds it"
    archive = tmp_path / "node.tar"
    saved = subprocess.run(
        [sys.executable, "-m", "appliance", "sandbox", "save-image", "node", "-o", str(archive)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=600,
    )
    assert saved.returncode == 0, saved.stderr
    assert archive.stat().st_size > 50 * 2**20
    loaded = subprocess.run(
        [sys.executable, "-m", "appliance", "sandbox", "load-image", str(archive)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert images.image_exists(user, images.recipe("node").name)
