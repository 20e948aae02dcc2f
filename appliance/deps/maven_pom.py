"""``pom.xml``: Maven dependencies and plugins, with the exact span of each version.

Entries read, keyed ``groupId:artifactId`` (the repository's name for an artifact):

* ``<dependencies>`` (group ``dependencies``, or ``dependencies:<scope>`` for a scope
  other than compile), ``<dependencyManagement>`` (BOM imports included),
  ``<build><plugins>`` and ``<build><pluginManagement>`` (a plugin without a groupId is
  ``org.apache.maven.plugins``'s), the same inside ``<profiles><profile>`` (group
  ``profile:<id>:…``), and ``<parent>`` unless the parent is a POM of this repository
  (its ``relativePath``, ``../pom.xml`` by default, exists here).
* A literal ``<version>`` is the spec; its span is the element's text. A version that is
  exactly ``${name}`` is looked up in ``<properties>``: the spec and span are that
  property's text, so one edit moves every entry that uses it (they share the span and
  name it in ``via``). A property also referred to anywhere else in the file, or also set
  in a profile, is frozen: the engine cannot tell what else the edit would move.
* Frozen, with a reason: version ranges (``[1.0,2.0)``) and ``-SNAPSHOT`` versions.
* Reported and left alone (:class:`ScanNote`): entries without a version (managed by a
  parent or a BOM), versions from undefined or nested properties or mixed with text,
  coordinates built from properties, versions written with comments/CDATA/references.

The file is untrusted XML: a document with a DTD or entity declarations is not read at
all (a note says so); see :mod:`appliance.deps.xml_spans`. Nothing is ever re-serialised.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from appliance.deps.errors import ManifestError
from appliance.deps.maven_versions import MavenVersion
from appliance.deps.model import Dependency, Location, Scan, ScanNote, line_of
from appliance.deps.requirements_txt import read_text, relative
from appliance.deps.xml_spans import InvalidXml, UnsafeXml, XmlElement, parse_spans

DEFAULT_PLUGIN_GROUP = "org.apache.maven.plugins"
# (path below <project> or <profile>, entry tag, group)
SECTIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("dependencies",), "dependency", "dependencies"),
    (("dependencyManagement", "dependencies"), "dependency", "dependencyManagement"),
    (("build", "plugins"), "plugin", "plugins"),
    (("build", "pluginManagement", "plugins"), "plugin", "pluginManagement"),
)
_PROPERTY = re.compile(r"\$\{([^}]*)\}")
_COORDINATES = re.compile(r"[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class _Entry:
    key: str
    element: XmlElement
    group: str


@dataclass(frozen=True)
class _Spec:
    text: str
    start: int
    end: int
    via: str | None = None


class _Pom:
    def __init__(self, root: Path, path: Path, rel: PurePosixPath, text: str) -> None:
        self.root, self.path, self.rel, self.text = root, path, rel, text
        self.scan = Scan([], [])

    def note(self, element: XmlElement, what: str, reason: str) -> None:
        self.scan.notes.append(ScanNote(self.rel, element.line, what, reason))

    def read(self, project: XmlElement) -> Scan:
        properties = {p.tag: p for p in _children(project.child("properties"))}
        in_profiles = {
            p.tag: profile.find("id")
            for profile in _children(project.child("profiles"))
            for p in _children(profile.child("properties"))
        }
        entries = list(self._entries(project))
        specs = [(entry, self._spec(entry, properties)) for entry in entries]
        used = Counter(spec.via for _, spec in specs if spec is not None and spec.via)
        written = Counter(f"${{{name}}}" for name in _PROPERTY.findall(self.text))
        for entry, spec in specs:
            if spec is None:
                continue
            frozen = _frozen(spec.text)
            if spec.via and written[spec.via] > used[spec.via]:
                frozen = (
                    f"{spec.via} is also used elsewhere in {self.rel.name}: the engine cannot "
                    "tell what else a bump would change; bump it by hand"
                )
            elif spec.via and spec.via[2:-1] in in_profiles:
                profile = in_profiles[spec.via[2:-1]]
                frozen = (
                    f"{spec.via} is also set in profile {profile.text if profile else '?'}: "
                    "bump it by hand"
                )
            version = MavenVersion.parse(spec.text)
            self.scan.dependencies.append(
                Dependency(
                    ecosystem="maven",
                    name=entry.key,
                    key=entry.key,
                    spec=spec.text,
                    current=spec.text if version is not None else None,
                    location=Location(
                        self.rel, spec.start, spec.end, spec.text, line_of(self.text, spec.start)
                    ),
                    group=entry.group,
                    frozen_reason=frozen,
                    via=spec.via,
                )
            )
        return self.scan

    def _entries(self, project: XmlElement) -> list[_Entry]:
        found: list[_Entry] = []
        parent = project.child("parent")
        if parent is not None and not self._local_parent(parent):
            found += self._entry(parent, "parent", None)
        for profile in _children(project.child("profiles")):
            ident = profile.child("id")
            prefix = f"profile:{ident.text if ident is not None else '?'}:"
            found += self._sections(profile, prefix)
        return self._sections(project, "") + found

    def _sections(self, base: XmlElement, prefix: str) -> list[_Entry]:
        found: list[_Entry] = []
        for path, tag, group in SECTIONS:
            for element in _children(base.find(*path), tag):
                default = DEFAULT_PLUGIN_GROUP if tag == "plugin" else None
                scope = element.child("scope")
                suffix = f":{scope.text}" if scope is not None and scope.text != "compile" else ""
                found += self._entry(element, f"{prefix}{group}{suffix}", default)
        return found

    def _entry(self, element: XmlElement, group: str, default_group: str | None) -> list[_Entry]:
        group_id = element.child("groupId")
        artifact = element.child("artifactId")
        group_text = group_id.text if group_id is not None else default_group
        if not group_text or artifact is None or not artifact.text:
            self.note(element, f"<{element.tag}>", "no groupId or artifactId: ignored")
            return []
        key = f"{group_text}:{artifact.text}"
        if "${" in key:
            self.note(element, key, "coordinates built from properties: not read")
            return []
        if not _COORDINATES.fullmatch(key):
            self.note(element, key, "not a groupId:artifactId Maven accepts: ignored")
            return []
        return [_Entry(key, element, group)]

    def _local_parent(self, parent: XmlElement) -> bool:
        relative_path = parent.child("relativePath")
        where = "../pom.xml" if relative_path is None else relative_path.text
        if not where:
            return False  # <relativePath/>: always from the repository
        target = self.path.parent / where
        if not where.endswith(".xml"):
            target = target / "pom.xml"
        target = target.resolve()
        return target.is_relative_to(self.root.resolve()) and target.is_file()

    def _spec(self, entry: _Entry, properties: dict[str, XmlElement]) -> _Spec | None:
        version = entry.element.child("version")
        if version is None:
            self.note(
                entry.element,
                f"{entry.key} (no version)",
                "no <version>: managed by a parent POM or an imported BOM; bump it there",
            )
            return None
        spec = self._literal(entry.key, version)
        if spec is None or "${" not in spec.text:
            return spec
        reference = _PROPERTY.fullmatch(spec.text)
        if reference is None:
            self.note(version, f"{entry.key} {spec.text}", "version mixes properties and text")
            return None
        prop = properties.get(reference.group(1))
        if prop is None:
            self.note(
                version,
                f"{entry.key} {spec.text}",
                f"{spec.text} is not set in this POM's <properties> (a parent's or a built-in "
                "property): bump it where it is set",
            )
            return None
        value = self._literal(entry.key, prop)
        if value is None:
            return None
        if "${" in value.text:
            self.note(
                prop,
                f"{entry.key} {spec.text} = {value.text}",
                "a property that refers to other properties: not rewritten",
            )
            return None
        return _Spec(value.text, value.start, value.end, spec.text)

    def _literal(self, key: str, element: XmlElement) -> _Spec | None:
        span = element.text_span(self.text)
        if span is None:
            self.note(
                element,
                f"{key} <{element.tag}>",
                "written with a comment, CDATA or a character reference: not rewritten",
            )
            return None
        if span[0] == span[1]:
            self.note(element, f"{key} <{element.tag}>", "empty: ignored")
            return None
        return _Spec(self.text[span[0] : span[1]], *span)


def _children(element: XmlElement | None, tag: str | None = None) -> list[XmlElement]:
    if element is None:
        return []
    return [c for c in element.children if tag is None or c.tag == tag]


def _frozen(spec: str) -> str | None:
    if spec.startswith(("[", "(")):
        return (
            f"version range {spec}: Maven picks a version within it; write one version to let "
            "the engine bump it"
        )
    if spec.upper().endswith("-SNAPSHOT"):
        return "snapshot version: a moving development build, not bumped"
    return None


def scan_pom(root: Path, path: Path) -> Scan:
    rel = relative(path, root)
    text = read_text(path)
    try:
        project = parse_spans(text)
    except UnsafeXml:
        note = ScanNote(
            rel,
            1,
            "<!DOCTYPE …>",
            "declares a DTD or entities: not read (an untrusted document could make the "
            "parser read files or exhaust memory); a POM needs neither, remove them",
        )
        return Scan([], [note])
    except InvalidXml as exc:
        raise ManifestError(
            f"{rel} is not well-formed XML ({exc}); fix the file and retry"
        ) from exc
    if project.tag != "project":
        note = ScanNote(rel, 1, f"<{project.tag}>", "not a Maven POM (no <project>): ignored")
        return Scan([], [note])
    return _Pom(root, path, rel, text).read(project)
