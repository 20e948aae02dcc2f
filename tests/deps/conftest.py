"""A real package index over HTTP for the bump engine's tests.

:class:`IndexServer` serves a directory with ``http.server`` in a thread: ``/simple/<name>/``
answers ``<root>/simple/<name>/index.json`` as PEP 691 JSON, ``/pypi/<name>/json`` the
PyPI JSON API, ``/npm/<name>`` (``@scope%2fname`` included) an npm packument,
``/goproxy/<escaped module>/@v/list`` and ``…/@v/<version>.info`` a GOPROXY (module
paths case-encoded on disk as on the wire), ``/maven/<group/path>/<artifact>/`` a Maven
repository (``maven-metadata.xml`` and each version's ``.pom``), and
``/status/<code>/...`` answers that HTTP status. Every file is served with its mtime as
``Last-Modified``, as static servers do; the Maven POMs' mtimes are their release times.
The fixture files are written by :func:`write_index` from the tables below: several
versions with upload times, a yanked release, pre-releases, a deprecated npm version, Go
modules with a newer major at another path, and Maven artifacts in two variants. "Now"
for the planner is ``NOW``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from appliance.deps import GoProxy, MavenRepository, NpmRegistry, PythonIndex

NOW = datetime(2024, 7, 1, tzinfo=UTC)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


# name -> [(version, upload time, yanked)]
PYTHON: dict[str, list[tuple[str, str, bool]]] = {
    "requests": [
        ("2.30.0", ago(420), False),
        ("2.31.0", ago(400), False),
        ("2.32.0", ago(45), True),  # yanked
        ("2.32.3", ago(33), False),
        ("3.0.0b1", ago(20), False),  # pre-release
    ],
    "flask": [("2.3.3", ago(300), False), ("3.0.0", ago(270), False), ("3.0.3", ago(90), False)],
    "attrs": [("23.1.0", ago(400), False), ("23.2.0", ago(200), False), ("24.1.0", ago(1), False)],
    "pydantic-core": [("2.18.0", ago(100), False), ("2.20.1", ago(10), False)],
    "httpx": [("0.26.0", ago(200), False), ("0.27.0", ago(120), False)],
    "pytest": [("7.4.4", ago(200), False), ("8.2.2", ago(30), False)],
}

# name -> (versions {version: deprecated message or None}, time map, latest)
NPM: dict[str, list[tuple[str, str, str | None]]] = {
    "react": [
        ("18.2.0", ago(700), None),
        ("18.3.0", ago(70), "broken build, use 18.3.1"),
        ("18.3.1", ago(66), None),
        ("19.0.0-rc.1", ago(30), None),
    ],
    "lodash": [("4.17.20", ago(1300), None), ("4.17.21", ago(1200), None)],
    "@types/node": [
        ("20.1.0", ago(400), None),
        ("20.14.9", ago(5), None),
        ("22.0.0", ago(20), None),
    ],
    "left-pad": [("1.1.0", ago(3000), None), ("1.3.0", ago(2500), None)],
}


# Go module path -> [(version, time)]; listed out of order, as proxies may
GO: dict[str, list[tuple[str, str]]] = {
    "github.com/BurntSushi/toml": [("v1.3.2", ago(200)), ("v1.2.1", ago(500)), ("v1.4.0", ago(1))],
    "github.com/jackc/pgx/v4": [("v4.18.3", ago(90)), ("v4.18.1", ago(400))],
    "github.com/jackc/pgx/v5": [("v5.5.5", ago(100)), ("v5.6.0", ago(30))],
    "github.com/google/uuid": [
        ("v1.5.0", ago(300)),
        ("v1.7.0-rc.1", ago(10)),
        ("v1.6.0", ago(150)),
    ],
    "github.com/stretchr/testify": [("v1.8.4", ago(300)), ("v1.9.0", ago(100))],
    "golang.org/x/net": [("v0.20.0", ago(200)), ("v0.26.0", ago(20))],
    "gopkg.in/yaml.v2": [("v2.4.0", ago(1200))],
    "gopkg.in/yaml.v3": [("v3.0.0", ago(900)), ("v3.0.1", ago(800))],
}

# groupId:artifactId -> [(version, release time)], in the order the metadata lists them
MAVEN: dict[str, list[tuple[str, str]]] = {
    "com.fasterxml.jackson.core:jackson-databind": [
        ("2.16.1", ago(200)),
        ("2.17.0", ago(100)),
        ("2.17.1", ago(60)),
        ("2.17.2", ago(20)),
    ],
    "com.fasterxml.jackson.core:jackson-core": [
        ("2.16.1", ago(200)),
        ("2.17.0", ago(100)),
        ("2.17.1", ago(60)),
    ],
    "com.google.guava:guava": [
        ("32.1.3-android", ago(300)),
        ("32.1.3-jre", ago(300)),
        ("33.2.1-android", ago(40)),
        ("33.2.1-jre", ago(40)),
        ("33.3.0-android", ago(10)),
    ],
    "org.junit.jupiter:junit-jupiter": [
        ("5.10.0", ago(300)),
        ("5.10.3", ago(50)),
        ("5.11.0-M2", ago(15)),
    ],
    "org.apache.maven.plugins:maven-surefire-plugin": [
        ("3.1.2", ago(400)),
        ("3.2.5", ago(150)),
        ("3.3.0", ago(30)),
    ],
    "org.slf4j:slf4j-api": [
        ("2.0.9", ago(300)),
        ("2.0.13", ago(80)),
        ("2.1.0-alpha1", ago(70)),
        ("2.1.0-SNAPSHOT", ago(5)),
    ],
    "org.springframework.boot:spring-boot-starter-parent": [
        ("3.2.5", ago(100)),
        ("3.3.1", ago(20)),
    ],
}


def go_escape(path: str) -> str:
    return re.sub("[A-Z]", lambda m: "!" + m.group().lower(), path)


def _maven_metadata(key: str, releases: list[tuple[str, str]]) -> str:
    group, artifact = key.split(":")
    versions = "\n".join(f"      <version>{v}</version>" for v, _ in releases)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>{group}</groupId>
  <artifactId>{artifact}</artifactId>
  <versioning>
    <latest>{releases[-1][0]}</latest>
    <release>{releases[-1][0]}</release>
    <versions>
{versions}
    </versions>
    <lastUpdated>20240630120000</lastUpdated>
  </versioning>
</metadata>
"""


def _write_go(root: Path) -> None:
    for module, releases in GO.items():
        base = root / "goproxy" / go_escape(module) / "@v"
        base.mkdir(parents=True)
        (base / "list").write_text("".join(f"{v}\n" for v, _ in releases))
        for version, when in releases:
            info = {"Version": version, "Time": when}
            (base / f"{go_escape(version)}.info").write_text(json.dumps(info))


def _write_maven(root: Path) -> None:
    for key, releases in MAVEN.items():
        group, artifact = key.split(":")
        base = root / "maven" / group.replace(".", "/") / artifact
        base.mkdir(parents=True)
        (base / "maven-metadata.xml").write_text(_maven_metadata(key, releases))
        for version, when in releases:
            pom = base / version / f"{artifact}-{version}.pom"
            pom.parent.mkdir()
            pom.write_text(f"<project><artifactId>{artifact}</artifactId></project>\n")
            stamp = datetime.fromisoformat(when).timestamp()
            os.utime(pom, (stamp, stamp))


def _simple_doc(name: str, releases: list[tuple[str, str, bool]]) -> dict[str, Any]:
    files = []
    for version, when, yanked in releases:
        stem = name.replace("-", "_")
        for filename in (f"{stem}-{version}-py3-none-any.whl", f"{stem}-{version}.tar.gz"):
            files.append(
                {
                    "filename": filename,
                    "url": f"/files/{filename}",
                    "hashes": {"sha256": "0" * 64},
                    "upload-time": when,
                    "yanked": "broken" if yanked else False,
                }
            )
    return {"meta": {"api-version": "1.1"}, "name": name, "files": files}


def _json_api_doc(name: str, releases: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {
        "info": {
            "name": name,
            "project_urls": {
                "Homepage": f"https://example.org/{name}",
                "Changelog": f"https://example.org/{name}/changes",
            },
        },
        "releases": {
            version: [
                {
                    "filename": f"{name}-{version}.tar.gz",
                    "upload_time_iso_8601": when,
                    "yanked": yanked,
                }
            ]
            for version, when, yanked in releases
        },
    }


def _npm_doc(name: str, releases: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for version, _, deprecated in releases:
        versions[version] = {"name": name, "version": version}
        if deprecated:
            versions[version]["deprecated"] = deprecated
    stable = [v for v, _, _ in releases if "-" not in v]
    return {
        "name": name,
        "dist-tags": {"latest": stable[-1]},
        "versions": versions,
        "time": {"created": releases[0][1], **{v: when for v, when, _ in releases}},
        "repository": {"type": "git", "url": f"git+https://github.com/example/{name}.git"},
    }


def write_index(root: Path) -> Path:
    for name, releases in PYTHON.items():
        (root / "simple" / name).mkdir(parents=True)
        (root / "simple" / name / "index.json").write_text(json.dumps(_simple_doc(name, releases)))
        (root / "pypi" / name).mkdir(parents=True)
        (root / "pypi" / name / "json").write_text(json.dumps(_json_api_doc(name, releases)))
    for name, npm_releases in NPM.items():
        (root / "npm" / name).mkdir(parents=True)
        (root / "npm" / name / "index.json").write_text(json.dumps(_npm_doc(name, npm_releases)))
    _write_go(root)
    _write_maven(root)
    return root


class _Handler(BaseHTTPRequestHandler):
    root: Path

    def do_GET(self) -> None:
        path = unquote(self.path.split("?")[0])
        if path.startswith("/status/"):
            self._send(int(path.split("/")[2]), b"{}", "application/json")
            return
        target = (self.root / path.strip("/")).resolve()
        if target.is_dir():
            target = target / "index.json"
        if not target.is_relative_to(self.root) or not target.is_file():
            self._send(404, b'{"error": "not found"}', "application/json")
            return
        if path.startswith("/html/"):
            kind = "text/html"
        elif path.startswith("/simple/"):
            kind = "application/vnd.pypi.simple.v1+json"
        elif path.endswith("/@v/list"):
            kind = "text/plain; charset=utf-8"
        elif path.endswith((".xml", ".pom")):
            kind = "application/xml"
        else:
            kind = "application/json"
        self.server.requests.append(path)  # type: ignore[attr-defined]
        modified = formatdate(target.stat().st_mtime, usegmt=True)
        self._send(200, target.read_bytes(), kind, modified)

    def _send(self, status: int, body: bytes, kind: str, modified: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if modified is not None:
            self.send_header("Last-Modified", modified)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class IndexServer:
    def __init__(self, root: Path) -> None:
        handler = type("Handler", (_Handler,), {"root": root.resolve()})
        self.root = root
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests  # type: ignore[attr-defined, no-any-return]

    def __enter__(self) -> IndexServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    with IndexServer(write_index(tmp_path / "index")) as server:
        yield server


@pytest.fixture
def python_index(index_server: IndexServer) -> Iterator[PythonIndex]:
    with PythonIndex(f"{index_server.url}/simple") as index:
        yield index


@pytest.fixture
def npm_registry(index_server: IndexServer) -> Iterator[NpmRegistry]:
    with NpmRegistry(f"{index_server.url}/npm") as registry:
        yield registry


@pytest.fixture
def go_proxy(index_server: IndexServer) -> Iterator[GoProxy]:
    with GoProxy(f"{index_server.url}/goproxy") as proxy:
        yield proxy


@pytest.fixture
def maven_repository(index_server: IndexServer) -> Iterator[MavenRepository]:
    with MavenRepository(f"{index_server.url}/maven") as repository:
        yield repository
