"""pom.xml and a Maven repository: what is read, version order, the client, plans, rewrites."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance.deps import BumpPolicy, MavenRepository, apply_group, lockfile_command, plan
from appliance.deps.errors import (
    IndexResponseInvalid,
    IndexUnavailable,
    ManifestError,
    PackageNotFound,
    RewriteConflict,
)
from appliance.deps.manifests import scan_worktree
from appliance.deps.maven_versions import MavenVersion
from tests.deps.conftest import NOW, IndexServer

POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Service POM: versions are managed here. Ünïcode before the spans. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.2.5</version>
    <relativePath/> <!-- lookup parent from repository -->
  </parent>
  <groupId>com.example</groupId>
  <artifactId>service</artifactId>
  <version>1.4.0-SNAPSHOT</version>
  <packaging>pom</packaging>

  <properties>
    <java.version>17</java.version>
    <jackson.version>2.16.1</jackson.version>
    <guava.version>
      32.1.3-jre
    </guava.version>
  </properties>

  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.slf4j</groupId>
        <artifactId>slf4j-api</artifactId>
        <version>2.0.9</version>
      </dependency>
    </dependencies>
  </dependencyManagement>

  <dependencies>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-databind</artifactId>
      <version>${jackson.version}</version>
    </dependency>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-core</artifactId>
      <version>${jackson.version}</version>
    </dependency>
    <dependency>
      <groupId>com.google.guava</groupId>
      <artifactId>guava</artifactId>
      <version>${guava.version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
    </dependency>
    <dependency>
      <groupId>org.junit.jupiter</groupId>
      <artifactId>junit-jupiter</artifactId>
      <version>5.10.0</version>
      <scope>test</scope>
    </dependency>
    <dependency>
      <groupId>commons-io</groupId>
      <artifactId>commons-io</artifactId>
      <version>[2.11,3.0)</version>
    </dependency>
    <dependency>
      <groupId>com.example</groupId>
      <artifactId>module-a</artifactId>
      <version>${project.version}</version>
    </dependency>
    <dependency>
      <groupId>com.example</groupId>
      <artifactId>nightly</artifactId>
      <version>0.1.0-SNAPSHOT</version>
    </dependency>
  </dependencies>

  <build>
    <plugins>
      <plugin>
        <artifactId>maven-surefire-plugin</artifactId>
        <version>3.1.2</version>
      </plugin>
      <plugin>
        <groupId>org.springframework.boot</groupId>
        <artifactId>spring-boot-maven-plugin</artifactId>
      </plugin>
    </plugins>
  </build>
</project>
"""

MODULE = """\
<project>
  <parent>
    <groupId>com.example</groupId>
    <artifactId>service</artifactId>
    <version>1.4.0-SNAPSHOT</version>
  </parent>
  <artifactId>module-a</artifactId>
  <dependencies>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId></dependency>
  </dependencies>
</project>
"""


def _dependency(group: str, artifact: str, version: str) -> str:
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>"
    )


def _repo(root: Path, pom: str = POM) -> Path:
    (root / "module-a").mkdir(parents=True)
    (root / "pom.xml").write_bytes(pom.encode())
    (root / "module-a" / "pom.xml").write_text(MODULE)
    return root


def test_pom_entries_are_read_with_their_version_spans(tmp_path: Path) -> None:
    scan = scan_worktree(_repo(tmp_path / "svc"))
    found = [(d.group, d.key, d.spec, d.via) for d in scan.dependencies]
    assert found == [
        (
            "dependencies",
            "com.fasterxml.jackson.core:jackson-databind",
            "2.16.1",
            "${jackson.version}",
        ),
        ("dependencies", "com.fasterxml.jackson.core:jackson-core", "2.16.1", "${jackson.version}"),
        ("dependencies", "com.google.guava:guava", "32.1.3-jre", "${guava.version}"),
        ("dependencies:test", "org.junit.jupiter:junit-jupiter", "5.10.0", None),
        ("dependencies", "commons-io:commons-io", "[2.11,3.0)", None),
        ("dependencies", "com.example:nightly", "0.1.0-SNAPSHOT", None),
        ("dependencyManagement", "org.slf4j:slf4j-api", "2.0.9", None),
        ("plugins", "org.apache.maven.plugins:maven-surefire-plugin", "3.1.2", None),
        ("parent", "org.springframework.boot:spring-boot-starter-parent", "3.2.5", None),
    ]  # module-a's parent is the POM above it: not a dependency
    for dep in scan.dependencies:
        assert POM[dep.location.start : dep.location.end] == dep.spec
    databind, core = scan.dependencies[:2]
    assert databind.location == core.location  # both edit <jackson.version>
    assert databind.location.line == 20
    frozen = {d.key: d.frozen_reason for d in scan.dependencies if d.frozen_reason}
    assert set(frozen) == {"commons-io:commons-io", "com.example:nightly"}
    assert "version range [2.11,3.0)" in frozen["commons-io:commons-io"]
    assert "snapshot" in frozen["com.example:nightly"]
    notes = {(str(n.file), n.line, n.text): n.reason for n in scan.notes}
    assert set(notes) == {
        ("pom.xml", 52, "org.slf4j:slf4j-api (no version)"),
        ("pom.xml", 70, "com.example:module-a ${project.version}"),
        ("pom.xml", 85, "org.springframework.boot:spring-boot-maven-plugin (no version)"),
        ("module-a/pom.xml", 9, "org.slf4j:slf4j-api (no version)"),
    }
    assert (
        "managed by a parent POM or an imported BOM"
        in notes[("pom.xml", 52, "org.slf4j:slf4j-api (no version)")]
    )
    assert (
        "not set in this POM's <properties>"
        in notes[("pom.xml", 70, "com.example:module-a ${project.version}")]
    )


def test_a_property_used_elsewhere_is_frozen(tmp_path: Path) -> None:
    pom = POM.replace(
        "<java.version>17</java.version>",
        "<java.version>17</java.version>\n"
        "    <jackson-bom.version>${jackson.version}</jackson-bom.version>",
    )
    scan = scan_worktree(_repo(tmp_path / "svc", pom))
    jackson = [d for d in scan.dependencies if d.via == "${jackson.version}"]
    assert len(jackson) == 2
    assert all(
        d.frozen_reason and "also used elsewhere in pom.xml" in d.frozen_reason for d in jackson
    )


def test_profiles_and_plugin_management_are_read(tmp_path: Path) -> None:
    pom = """<project>
  <build><pluginManagement><plugins>
    <plugin><artifactId>maven-compiler-plugin</artifactId><version>3.11.0</version></plugin>
  </plugins></pluginManagement></build>
  <profiles><profile><id>it</id><dependencies>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.9</version></dependency>
  </dependencies></profile></profiles>
</project>
"""
    (tmp_path / "pom.xml").write_text(pom)
    found = [(d.group, d.key) for d in scan_worktree(tmp_path).dependencies]
    assert found == [
        ("pluginManagement", "org.apache.maven.plugins:maven-compiler-plugin"),
        ("profile:it:dependencies", "org.slf4j:slf4j-api"),
    ]


@pytest.mark.parametrize(
    "pom",
    [
        # XXE: an external entity would pull a local file into the version
        '<?xml version="1.0"?>\n<!DOCTYPE project [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        "<project><dependencies><dependency><groupId>a</groupId><artifactId>b</artifactId>"
        "<version>&xxe;</version></dependency></dependencies></project>\n",
        # billion laughs: entities that expand exponentially
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        "<project><name>&lol2;</name></project>\n",
        # a DOCTYPE alone is refused as well
        '<!DOCTYPE project SYSTEM "http://evil.example/p.dtd">\n<project/>\n',
    ],
)
def test_dtd_and_entity_declarations_are_refused(tmp_path: Path, pom: str) -> None:
    (tmp_path / "pom.xml").write_text(pom)
    scan = scan_worktree(tmp_path)
    assert scan.dependencies == []
    (note,) = scan.notes
    assert "declares a DTD or entities: not read" in note.reason


def test_malformed_pom_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pom.xml").write_text("<project><dependencies></project>")
    with pytest.raises(ManifestError, match=r"sub/pom.xml is not well-formed XML"):
        scan_worktree(tmp_path)


def test_versions_written_with_markup_are_not_rewritten(tmp_path: Path) -> None:
    entries = (
        _dependency("a", "b", "<!-- pinned -->1.0"),
        _dependency("a", "c", "&#49;.0"),
        _dependency("a", "d", "${x}-jre"),
    )
    pom = "<project><dependencies>\n" + "\n".join(entries) + "\n</dependencies></project>\n"
    (tmp_path / "pom.xml").write_text(pom)
    scan = scan_worktree(tmp_path)
    assert scan.dependencies == []
    reasons = [n.reason for n in scan.notes]
    assert (
        reasons[:2] == ["written with a comment, CDATA or a character reference: not rewritten"] * 2
    )
    assert reasons[2] == "version mixes properties and text"


@pytest.mark.parametrize(
    "ordered",
    [
        [
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-1",
            "1-2",
            "1-123",
        ],
        [
            "2.0",
            "2-1",
            "2.0.a",
            "2.0.0.a",
            "2.0.2",
            "2.0.123",
            "2.1.0",
            "2.1-a",
            "2.1b",
            "2.1-c",
            "2.1-1",
            "2.1.0.1",
            "2.2",
            "2.123",
            "11.a2",
            "11.a11",
            "11.b2",
            "11.b11",
            "11.m2",
            "11.m11",
            "11",
            "11.a",
            "11b",
            "11c",
            "11m",
        ],
        ["5.0.0.CR1", "5.0.0.Final", "5.0.1.Final"],
        ["2.17.0", "2.17.1", "2.17.10"],
    ],
)
def test_maven_version_order(ordered: list[str]) -> None:
    versions = [MavenVersion(v) for v in reversed(ordered)]
    assert [v.text for v in sorted(versions)] == ordered


@pytest.mark.parametrize(
    ("a", "b"),
    [("1", "1.0.0"), ("1-ga", "1"), ("1.0.0.Final", "1"), ("1cr1", "1rc1"), ("1a1", "1-alpha-1")],
)
def test_maven_equal_versions(a: str, b: str) -> None:
    assert MavenVersion(a) == MavenVersion(b)


@pytest.mark.parametrize(
    ("text", "prerelease", "variant"),
    [
        ("2.0.9", False, ()),
        ("2.1.0-alpha1", True, ()),
        ("1.0-M1", True, ()),
        ("5.0.0.CR1", True, ()),
        ("2.0.0.RELEASE", False, ()),
        ("33.2.1-jre", False, ("jre",)),
        ("1.2-sp1", False, ()),
    ],
)
def test_maven_pre_releases_and_variants(text: str, prerelease: bool, variant: tuple[str]) -> None:
    version = MavenVersion(text)
    assert version.is_prerelease is prerelease
    assert version.variant == variant


def test_repository_lists_versions_without_snapshots(
    maven_repository: MavenRepository, index_server: IndexServer
) -> None:
    info = maven_repository.package("org.slf4j:slf4j-api")
    assert [r.version for r in info.releases] == ["2.0.9", "2.0.13", "2.1.0-alpha1"]
    assert index_server.requests == ["/maven/org/slf4j/slf4j-api/maven-metadata.xml"]
    (release,) = [r for r in info.releases if r.version == "2.0.13"]
    uploaded = info.uploaded(release)  # the POM's Last-Modified
    assert uploaded is not None
    assert round((NOW - uploaded).total_seconds() / 86400) == 80
    assert index_server.requests[-1] == "/maven/org/slf4j/slf4j-api/2.0.13/slf4j-api-2.0.13.pom"


def test_missing_artifact_is_not_found(maven_repository: MavenRepository) -> None:
    with pytest.raises(PackageNotFound) as caught:
        maven_repository.package("org.example:nope")
    assert "/maven/org/example/nope/maven-metadata.xml (404)" in caught.value.message


def test_repository_server_error_names_the_setting(index_server: IndexServer) -> None:
    with (
        MavenRepository(f"{index_server.url}/status/500/maven") as repository,
        pytest.raises(IndexUnavailable, match=r"answered HTTP 500; .*deps.maven_repository_url"),
    ):
        repository.package("org.slf4j:slf4j-api")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><metadata>&x;</metadata>',
            "metadata that is not plain XML",
        ),
        ("<html><body>Nexus</body></html>", "XML that is not maven-metadata"),
        ("not xml at all", "metadata that is not plain XML"),
    ],
)
def test_bad_metadata_is_a_clear_error(index_server: IndexServer, body: str, message: str) -> None:
    base = index_server.root / "maven" / "org" / "example" / "odd"
    base.mkdir(parents=True)
    (base / "maven-metadata.xml").write_text(body)
    with (
        MavenRepository(f"{index_server.url}/maven") as repository,
        pytest.raises(IndexResponseInvalid, match=message),
    ):
        repository.package("org.example:odd")


def test_plan_moves_shared_properties_together_and_keeps_variants(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    repo = _repo(tmp_path / "svc")
    result = plan(scan_worktree(repo).dependencies, maven_repository, BumpPolicy(), NOW)
    assert [(g.key, g.title) for g in result.groups] == [
        ("maven-non-major", "Bump 6 non-major Maven dependencies"),
        ("maven-guava.version-major", "Bump com.google.guava:guava from 32.1.3-jre to 33.2.1-jre"),
    ]
    targets = {b.dep.key: b.to_version for b in result.groups[0].bumps}
    assert targets == {
        # databind has 2.17.2, core does not: the property moves to what both have
        "com.fasterxml.jackson.core:jackson-databind": "2.17.1",
        "com.fasterxml.jackson.core:jackson-core": "2.17.1",
        "org.junit.jupiter:junit-jupiter": "5.10.3",  # 5.11.0-M2 is a milestone
        "org.slf4j:slf4j-api": "2.0.13",  # 2.1.0-alpha1 is a pre-release
        "org.apache.maven.plugins:maven-surefire-plugin": "3.3.0",
        "org.springframework.boot:spring-boot-starter-parent": "3.3.1",
    }
    body = result.groups[0].body
    assert (
        "2.17.2: not released for com.fasterxml.jackson.core:jackson-core, which shares "
        "${jackson.version}" in body
    )
    assert "`pom.xml` (dependencies, via `${jackson.version}`)" in body
    guava = result.groups[1]
    assert "guava 33.3.0-android: another variant of the artifact (android instead of jre)" in (
        guava.body
    )
    skipped = {s.dep.key: s.kind for s in result.skipped if s.dep}
    assert skipped == {"commons-io:commons-io": "frozen", "com.example:nightly": "frozen"}


def test_shared_property_is_skipped_when_one_user_cannot_move(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    repo = _repo(tmp_path / "svc")
    policy = BumpPolicy(ignore=("com.fasterxml.jackson.core:jackson-core",))
    result = plan(scan_worktree(repo).dependencies, maven_repository, policy, NOW)
    bumped = {b.dep.key for g in result.groups for b in g.bumps}
    assert not bumped & {
        "com.fasterxml.jackson.core:jackson-databind",
        "com.fasterxml.jackson.core:jackson-core",
    }
    databind = next(s for s in result.skipped if s.dep and s.dep.key.endswith("jackson-databind"))
    assert databind.kind == "ignored"
    assert "${jackson.version} is shared with com.fasterxml.jackson.core:jackson-core" in (
        databind.reason
    )


def test_grouping_none_keeps_a_shared_property_in_one_pr(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    repo = _repo(tmp_path / "svc")
    result = plan(
        scan_worktree(repo).dependencies, maven_repository, BumpPolicy(grouping="none"), NOW
    )
    (jackson,) = [g for g in result.groups if "jackson" in g.key]
    assert jackson.key == "maven-jackson.version-non-major"
    assert len(jackson.bumps) == 2


def test_unknown_release_dates_are_too_young_unless_the_age_check_is_off(
    tmp_path: Path, maven_repository: MavenRepository, index_server: IndexServer
) -> None:
    # a mirror that has the metadata but not the POM (so no Last-Modified) for 2.0.13
    (index_server.root / "maven/org/slf4j/slf4j-api/2.0.13/slf4j-api-2.0.13.pom").unlink()
    dependency = _dependency("org.slf4j", "slf4j-api", "2.0.9")
    pom = f"<project><dependencies>{dependency}</dependencies></project>"
    (tmp_path / "pom.xml").write_text(pom)
    deps = scan_worktree(tmp_path).dependencies
    result = plan(deps, maven_repository, BumpPolicy(min_release_age_days=3), NOW)
    assert result.groups == []
    (skip,) = result.skipped
    assert skip.kind == "too_young"
    assert skip.reason == (
        "2.0.13: release date unknown (the index gives no upload time); set the policy's "
        "min_release_age_days to 0 to accept versions of unknown age"
    )
    (group,) = plan(deps, maven_repository, BumpPolicy(min_release_age_days=0), NOW).groups
    assert group.bumps[0].to_version == "2.0.13"
    assert "| org.slf4j:slf4j-api | 2.0.9 | 2.0.13 | patch | unknown |" in group.body


def test_apply_edits_each_version_span_once(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    repo = _repo(tmp_path / "svc", POM.replace("\n", "\r\n"))
    result = plan(scan_worktree(repo).dependencies, maven_repository, BumpPolicy(), NOW)
    for group in result.groups:
        apply_group(repo, group)
    expected = (
        POM.replace("<version>3.2.5</version>", "<version>3.3.1</version>")
        .replace("<jackson.version>2.16.1<", "<jackson.version>2.17.1<")
        .replace("      32.1.3-jre\n", "      33.2.1-jre\n")
        .replace("<version>2.0.9</version>", "<version>2.0.13</version>")
        .replace("<version>5.10.0</version>", "<version>5.10.3</version>")
        .replace("<version>3.1.2</version>", "<version>3.3.0</version>")
        .replace("\n", "\r\n")
    )
    assert (repo / "pom.xml").read_bytes() == expected.encode()
    assert (repo / "module-a" / "pom.xml").read_text() == MODULE
    assert lockfile_command(repo, "maven") is None


def test_a_shared_property_is_edited_once_even_when_its_length_changes(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    entries = (
        _dependency("com.fasterxml.jackson.core", "jackson-databind", "${jackson.version}"),
        _dependency("com.fasterxml.jackson.core", "jackson-core", "${jackson.version}"),
    )
    pom = (
        "<project>\n  <properties><jackson.version>2.16</jackson.version></properties>\n"
        "  <dependencies>\n    " + "\n    ".join(entries) + "\n  </dependencies>\n</project>\n"
    )
    (tmp_path / "pom.xml").write_text(pom)
    (group,) = plan(
        scan_worktree(tmp_path).dependencies, maven_repository, BumpPolicy(), NOW
    ).groups
    assert [b.to_version for b in group.bumps] == ["2.17.1", "2.17.1"]
    apply_group(tmp_path, group)
    assert (tmp_path / "pom.xml").read_text() == pom.replace(">2.16<", ">2.17.1<")


def test_two_bumps_that_disagree_on_one_span_write_nothing(
    tmp_path: Path, maven_repository: MavenRepository
) -> None:
    repo = _repo(tmp_path / "svc")
    group = plan(scan_worktree(repo).dependencies, maven_repository, BumpPolicy(), NOW).groups[0]
    first, *rest = group.bumps  # jackson-core, then jackson-databind: one span
    assert first.dep.via == rest[0].dep.via == "${jackson.version}"
    tampered = dataclasses.replace(first, new_spec="2.17.0")
    with pytest.raises(RewriteConflict, match=r"two bumps would write '2.17.0' and '2.17.1'"):
        apply_group(repo, dataclasses.replace(group, bumps=(tampered, *rest)))
    assert (repo / "pom.xml").read_text() == POM
