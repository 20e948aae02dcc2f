"""Hostile archives never write outside the destination, with or without Python's own
``data`` filter (Debian 12's Python 3.11.2 lacks it: the fallback is what runs there)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest

from appliance.errors import ApplianceError
from appliance.util.tarsafe import extract_all


def archive(*members: tuple[str, bytes | None, str | None]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            else:
                payload = data or b""
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@pytest.fixture(params=["python filter", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":  # what Debian 12's Python 3.11.2 has
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_an_ordinary_archive_extracts(mode: str, tmp_path: Path) -> None:
    with archive(("db/appliance.db", b"sqlite", None), ("manifest.json", b"{}", None)) as tar:
        extract_all(tar, tmp_path)
    assert (tmp_path / "db" / "appliance.db").read_bytes() == b"sqlite"


@pytest.mark.parametrize(
    "member",
    [("../escape.txt", b"x", None), ("/tmp/abs-escape.txt", b"x", None), ("link", None, "/etc")],
)
def test_escapes_are_refused_and_nothing_lands_outside(
    mode: str, member: tuple[str, bytes | None, str | None], tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with archive(member) as tar, contextlib.suppress(ApplianceError, tarfile.TarError):
        extract_all(tar, dest)  # refused, or (absolute names) kept inside dest
    assert not (tmp_path / "escape.txt").exists()
    assert not (dest / "link").is_symlink() or (dest / "link").resolve().is_relative_to(dest)
    assert not Path("/tmp/abs-escape.txt").exists()
