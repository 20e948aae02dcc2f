"""Extracting a tar archive that may be hostile: nothing lands outside the destination.

Python 3.11.4+ has ``tarfile``'s ``data`` filter (no absolute paths, no ``..``, no links
out, no devices, sane modes); Debian 12 ships 3.11.2, which lacks it. There, the same rules
are checked here member by member before anything is written.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from appliance.errors import InvalidInput


def _check(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    target = (dest / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not target.is_relative_to(dest):
        raise InvalidInput(f"archive member {name!r} would land outside {dest}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise InvalidInput(f"archive member {name!r} is a device or a FIFO; refusing it")
    if member.issym() or member.islnk():
        base = target.parent if member.issym() else dest
        link = (base / member.linkname).resolve()
        if os.path.isabs(member.linkname) or not link.is_relative_to(dest):
            raise InvalidInput(f"archive member {name!r} links outside {dest}")


def extract_all(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract every member of ``tar`` into ``dest`` under the ``data`` filter's rules."""
    dest = Path(dest).resolve()
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    members = tar.getmembers()
    for member in members:
        _check(member, dest)
        member.mode &= 0o755 if member.isdir() else 0o644 | (member.mode & 0o111)
        member.uid = member.gid = os.getuid()
    tar.extractall(dest, members=members)  # noqa: S202 - every member checked above
