"""Run a repository's tests in a sandbox session and read their results.

:func:`detect_test_command` looks at the repository's files on the host and picks
one test command (pytest, unittest, jest, vitest, go test, maven, or a plain
``npm test``); a repository setting may replace it (``run_tests(command=...)``).
:func:`run_tests` checks the sandbox has what the command needs, runs it with its
output streamed to a callback, and reads the machine-readable report it wrote.

Design choices:

* **Reports are written inside the container, under /tmp** (:data:`REPORT_DIR`, a
  tmpfs), and read back by commands run in the same session (``dd | base64`` in
  chunks, so the session's output cap and multi-byte characters do no harm). The
  worktree stays clean (nothing to keep out of a commit, no files owned by the
  container's uid), and the host never opens a path the repository controls: a
  report path made a symlink to a host file can only point inside the container.
  Maven's surefire reports are the exception (surefire writes them under
  ``target/``); they are read the same way, from inside the container.
* **unittest suites run through pytest**, which collects ``unittest.TestCase``
  classes and writes JUnit XML; ``python3 -m unittest`` writes no report, and its
  text summary names failures but not the passing tests. The pattern is widened
  to unittest's own (``test*.py``) so the same files are found.
* **Jest** writes JUnit XML through ``jest-junit`` when the repository depends on it,
  and otherwise its built-in ``--json`` report (no extra package needed).
* **go test** reports as ``-json`` events on stdout.
* A **custom command** (a repository setting) runs with ``$APPLIANCE_REPORT_DIR``
  set; JUnit XML files (``*.xml``) it writes there are read, otherwise only its exit
  code counts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sandbox.base import OutputCallback, RunResult, Session
from sandbox.errors import SandboxError, SessionClosed
from sandbox.images import RECIPES
from sandbox.junit import (
    MAX_REPORT_BYTES,
    ReportUnreadable,
    TestReport,
    parse_go_test_json,
    parse_jest_json,
    parse_junit_reports,
)

REPORT_DIR = "/tmp/.appliance-reports"  # noqa: S108 (in the container: a private tmpfs)
ReportFormat = Literal["junit", "jest-json", "go-json", "none"]
# Directories never searched for test files (vendored code, build output, caches).
_SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", ".tox", ".nox",
     "__pycache__", "build", "dist", "target", "vendor", "site-packages", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", ".appliance", ".eggs"}
)  # fmt: skip
_MAX_SCAN_ENTRIES = 20_000
_MAX_SCAN_DEPTH = 8
_MAX_CONFIG_BYTES = 256 * 1024
_MAX_REPORT_FILES = 1000
_MAX_TOTAL_REPORT_BYTES = 64 * 1024 * 1024
_PROBE_TIMEOUT_S = 60.0


class NoTestCommand(SandboxError):
    """Neither the repository nor its settings name a test command."""


@dataclass(frozen=True)
class Requirement:
    """Something a command needs in the sandbox: ``check`` is a shell test run there
    (exit 0: present), ``missing`` what to tell the user when it is not."""

    check: str
    missing: str


@dataclass(frozen=True)
class TestCommand:
    """A test command and how to read its results.

    ``argv`` is an argument list or a shell string; ``image_kind`` the sandbox image
    kind it needs ("" when any will do); ``reports`` the container paths or globs
    (relative to /workspace, or absolute) its report files land in; ``clean`` paths
    removed before a run so that no stale report is read."""

    __test__ = False  # not a pytest test class

    framework: str
    argv: tuple[str, ...] | str
    image_kind: str
    report_format: ReportFormat = "junit"
    reports: tuple[str, ...] = ()
    clean: tuple[str, ...] = ()
    requires: tuple[Requirement, ...] = ()
    note: str = ""

    @classmethod
    def custom(cls, command: str | Sequence[str]) -> TestCommand:
        """A command from a repository setting; it may write JUnit XML files into
        ``$APPLIANCE_REPORT_DIR`` (e.g. ``pytest --junitxml=$APPLIANCE_REPORT_DIR/t.xml``)."""
        argv: tuple[str, ...] | str = command if isinstance(command, str) else tuple(command)
        if not argv or (isinstance(argv, str) and not argv.strip()):
            raise SandboxError("the configured test command is empty")
        return cls(
            framework="custom",
            argv=argv,
            image_kind="",
            reports=(f"{REPORT_DIR}/*.xml",),
        )

    def display(self) -> str:
        """The command as a user would type it."""
        return self.argv if isinstance(self.argv, str) else shlex.join(self.argv)

    def sandbox_argv(self) -> list[str]:
        """The argv run in the session: the command with ``$APPLIANCE_REPORT_DIR`` set."""
        body = ["/bin/sh", "-c", self.argv] if isinstance(self.argv, str) else list(self.argv)
        return ["env", f"APPLIANCE_REPORT_DIR={REPORT_DIR}", *body]


@dataclass(frozen=True)
class TestRun:
    """The outcome of :func:`run_tests`. ``report`` is None when the command writes no
    report, did not write one, or wrote one that could not be read (``note`` says
    which). ``available`` is False when the sandbox lacks what the command needs; then
    ``result`` is that check's result and nothing ran."""

    __test__ = False

    command: TestCommand
    result: RunResult
    report: TestReport | None
    note: str = ""
    available: bool = True

    @property
    def ok(self) -> bool:
        """The tests ran and passed (by the report where there is one)."""
        if not self.available or self.result.timed_out or self.result.oom_killed:
            return False
        if self.report is not None:
            return self.report.ok and self.result.exit_code == 0
        return self.result.exit_code == 0


# --- detection -----------------------------------------------------------------------


def detect_test_command(worktree: Path) -> TestCommand | None:
    """The repository's test command, judged from its files; None when none is found.

    Precedence: pytest configured (pytest.ini, conftest.py, a pytest section in
    pyproject.toml/setup.cfg/tox.ini) > package.json (vitest, jest, ``npm test``) >
    go.mod > pom.xml > Python test files (pytest, or unittest when they only use it).
    """
    repo = RepoFiles(worktree)
    if repo.pytest_configured():
        return _pytest()
    node = _node_command(repo)
    if node is not None:
        return node
    if repo.has_file("go.mod"):
        return _go()
    if repo.has_file("pom.xml"):
        return _maven()
    test_files = repo.python_test_files()
    if test_files:
        if repo.mentions_pytest() or not _unittest_only(repo, test_files):
            return _pytest()
        return _unittest()
    return None


_PYTHON = Requirement(
    "command -v python3", "python3 is not installed in this sandbox image (use the python image)"
)
_PYTEST = Requirement(
    "python3 -m pytest --version",
    "pytest is not installed in this sandbox image (the python image has it)",
)


def _pytest_argv(*extra: str) -> tuple[str, ...]:
    base = ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return (*base, f"--junitxml={REPORT_DIR}/junit.xml", *extra)


def _pytest() -> TestCommand:
    return TestCommand(
        framework="pytest",
        argv=_pytest_argv(),
        image_kind="python",
        reports=(f"{REPORT_DIR}/junit.xml",),
        requires=(_PYTHON, _PYTEST),
    )


def _unittest() -> TestCommand:
    return TestCommand(
        framework="unittest",
        argv=_pytest_argv("-o", "python_files=test*.py"),
        image_kind="python",
        reports=(f"{REPORT_DIR}/junit.xml",),
        requires=(_PYTHON, _PYTEST),
        note="unittest tests run through pytest, which collects them and writes JUnit XML",
    )


def _bin(name: str) -> str:
    """A tool from the repository's own node_modules, run directly: ``npx`` could try
    the network for a missing one, and npm 9's ``npx --no`` drops the tool's flags."""
    return f"node_modules/.bin/{name}"


def _node_requirements(binary: str) -> tuple[Requirement, ...]:
    return (
        Requirement(
            "command -v node && command -v npm",
            "node is not installed in this sandbox image (use the node image)",
        ),
        Requirement(
            f"test -x {_bin(binary)}",
            f"{binary} is not installed in the repository (node_modules/.bin/{binary} is "
            "missing): install its dependencies offline first (npm ci, from the npm cache)",
        ),
    )


def _node_command(repo: RepoFiles) -> TestCommand | None:
    package = repo.json_file("package.json")
    if package is None:
        return None
    deps: dict[str, Any] = {}
    for section in ("dependencies", "devDependencies"):
        if isinstance(package.get(section), dict):
            deps.update(package[section])
    scripts = package.get("scripts")
    script = str(scripts.get("test") or "") if isinstance(scripts, dict) else ""
    if "vitest" in deps or re.search(r"\bvitest\b", script):
        return TestCommand(
            framework="vitest",
            argv=(
                *[_bin("vitest"), "run", "--reporter=default", "--reporter=junit"],
                f"--outputFile.junit={REPORT_DIR}/junit.xml",
            ),
            image_kind="node",
            reports=(f"{REPORT_DIR}/junit.xml",),
            requires=_node_requirements("vitest"),
        )
    if "jest" in deps or re.search(r"\bjest\b", script):
        if "jest-junit" in deps:
            return TestCommand(
                framework="jest",
                argv=(
                    "env",
                    f"JEST_JUNIT_OUTPUT_FILE={REPORT_DIR}/junit.xml",
                    *[_bin("jest"), "--ci", "--reporters=default", "--reporters=jest-junit"],
                ),
                image_kind="node",
                reports=(f"{REPORT_DIR}/junit.xml",),
                requires=_node_requirements("jest"),
            )
        return TestCommand(
            framework="jest",
            argv=(_bin("jest"), "--ci", "--json", f"--outputFile={REPORT_DIR}/jest.json"),
            image_kind="node",
            report_format="jest-json",
            reports=(f"{REPORT_DIR}/jest.json",),
            requires=_node_requirements("jest"),
            note="jest-junit is not a dependency: Jest's built-in JSON report is read instead",
        )
    if script and "no test specified" not in script:
        return TestCommand(
            framework="npm",
            argv=("npm", "test"),
            image_kind="node",
            report_format="none",
            requires=_node_requirements("npm")[:1],
            note="a plain npm test script writes no report: only its exit code counts",
        )
    return None


def _missing_image(kind: str, tool: str) -> str:
    built = ", ".join(sorted(RECIPES))
    return (
        f"{tool} is not installed in this sandbox image: this repository needs a {kind} "
        f"sandbox image, and only these kinds exist: {built}"
    )


def _go() -> TestCommand:
    return TestCommand(
        framework="go",
        argv=("go", "test", "-json", "./..."),
        image_kind="go",
        report_format="go-json",
        requires=(Requirement("command -v go", _missing_image("go", "go")),),
    )


def _maven() -> TestCommand:
    reports = ("target/surefire-reports", "*/target/surefire-reports")
    return TestCommand(
        framework="maven",
        argv=("mvn", "-o", "-B", "test"),
        image_kind="java",
        reports=tuple(f"{d}/TEST-*.xml" for d in reports),
        clean=reports,
        requires=(Requirement("command -v mvn", _missing_image("java", "mvn (Maven)")),),
        note="offline (-o): the dependencies must already be in the local Maven repository",
    )


def _unittest_only(repo: RepoFiles, test_files: list[str]) -> bool:
    """True when the test files use unittest and nothing pytest-specific."""
    uses_unittest = False
    for name in test_files[:200]:
        text = repo.text(name, limit=64 * 1024) or ""
        if re.search(r"^\s*(import pytest|from pytest\b)|^def test|@pytest\.", text, re.M):
            return False
        uses_unittest = uses_unittest or "unittest" in text
    return uses_unittest


class RepoFiles:
    """Read-only, bounded views of a repository on the host. Symlinks are never
    followed: a repository could point one at a host file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        """Relative paths of the regular files, vendored and build directories skipped."""
        if self._files is None:
            self._files = list(self._walk())
        return self._files

    def _walk(self) -> Iterator[str]:
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            depth = len(rel.parts)
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and depth < _MAX_SCAN_DEPTH
            )
            for name in sorted(filenames):
                seen += 1
                if seen > _MAX_SCAN_ENTRIES:
                    return
                yield (rel / name).as_posix()

    def has_file(self, name: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self.root / name).st_mode)
        except OSError:
            return False

    def text(self, name: str, *, limit: int = _MAX_CONFIG_BYTES) -> str | None:
        """The first ``limit`` bytes of a regular file as text; None if it is not one."""
        try:
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            return fh.read(limit).decode("utf-8", errors="replace")

    def json_file(self, name: str) -> dict[str, Any] | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def pytest_configured(self) -> bool:
        if self.has_file("pytest.ini") or self.has_file("conftest.py"):
            return True
        sections = {
            "pyproject.toml": "[tool.pytest.ini_options]",
            "setup.cfg": "[tool:pytest]",
            "tox.ini": "[pytest]",
        }
        for name, section in sections.items():
            if section in (self.text(name) or ""):
                return True
        return any(f.endswith("/conftest.py") for f in self.files())

    def mentions_pytest(self) -> bool:
        """pytest named in the project's metadata or requirements."""
        names = ["pyproject.toml", "setup.cfg", "setup.py", "tox.ini"]
        names += [f for f in self.files() if re.fullmatch(r"requirements[\w.-]*\.(txt|in)", f)]
        return any("pytest" in (self.text(name) or "") for name in names)

    def python_test_files(self) -> list[str]:
        pattern = re.compile(r"(test_.*|.*_test|tests?)\.py")
        return [f for f in self.files() if pattern.fullmatch(f.rsplit("/", 1)[-1])]


# --- running -------------------------------------------------------------------------


def run_tests(
    session: Session,
    worktree: Path,
    *,
    command: TestCommand | str | Sequence[str] | None = None,
    on_output: OutputCallback | None = None,
    timeout: float | None = None,
) -> TestRun:
    """Run the repository's tests in ``session`` and read their report.

    ``command`` overrides detection (a repository setting: a :class:`TestCommand`, or a
    shell string or argv run as :meth:`TestCommand.custom`). Output streams to
    ``on_output`` as it comes. Raises :class:`NoTestCommand` when there is nothing to
    run; a failing, crashing or report-less run is a :class:`TestRun`, never an error.
    """
    if command is None:
        detected = detect_test_command(worktree)
        if detected is None:
            raise NoTestCommand(
                f"no test suite found in {worktree.name}: no pytest/unittest tests, "
                "package.json test runner, go.mod or pom.xml; configure the repository's "
                "test command"
            )
        test_command = detected
    elif isinstance(command, TestCommand):
        test_command = command
    else:
        test_command = TestCommand.custom(command)
    missing = check_requirements(session, test_command.requires)
    if missing is not None:
        probe, why = missing
        return TestRun(test_command, probe, None, note=why, available=False)
    prepare_reports(session, test_command.clean)
    result = session.run(test_command.sandbox_argv(), timeout=timeout, on_output=on_output)
    report, why = _read_report(session, test_command, result)
    notes = [n for n in (test_command.note, why, _result_note(test_command, result, report)) if n]
    return TestRun(test_command, result, report, note="; ".join(notes))


def check_requirements(
    session: Session, requires: Sequence[Requirement]
) -> tuple[RunResult, str] | None:
    """None when the sandbox has everything; else the probe's result and what is missing
    (the first missing thing: later ones usually depend on it)."""
    if not requires:
        return None
    script = "".join(
        f"if ! {{ {r.check} ; }} >/dev/null 2>&1; then printf '%s\\n' {shlex.quote(r.missing)}; "
        "exit 1; fi\n"
        for r in requires
    )
    probe = session.run(["/bin/sh", "-c", script], timeout=_PROBE_TIMEOUT_S)
    if probe.exit_code == 0:
        return None
    why = probe.stdout.strip() or (
        f"could not check the sandbox for the command's tools (exit {probe.exit_code}: "
        f"{probe.stderr.strip()[:500]})"
    )
    return probe, why


def prepare_reports(session: Session, clean: Sequence[str] = ()) -> None:
    """Empty :data:`REPORT_DIR` (and remove ``clean`` paths) so no stale report is read."""
    removed = " ".join([shlex.quote(REPORT_DIR), *clean])  # clean: our own globs
    result = session.run(
        ["/bin/sh", "-c", f"rm -rf -- {removed} && mkdir -p -- {shlex.quote(REPORT_DIR)}"],
        timeout=_PROBE_TIMEOUT_S,
    )
    if result.exit_code != 0:
        raise SandboxError(
            f"cannot prepare the report directory {REPORT_DIR} in the sandbox: "
            f"{result.stderr.strip()[:500]}"
        )


def read_container_files(
    session: Session, patterns: Sequence[str], *, limit: int = MAX_REPORT_BYTES
) -> list[tuple[str, bytes]]:
    """The regular files matching ``patterns`` (shell globs, relative to /workspace or
    absolute; our own, never a repository's) read from inside the container, as
    ``(path, content)``. Raises :class:`ReportUnreadable` for a file over ``limit``
    bytes, too many files, or a file that cannot be read."""
    listing = session.run(
        [
            "/bin/sh",
            "-c",
            f"for f in {' '.join(patterns)}; do "
            'if [ -f "$f" ]; then printf \'%s\\t%s\\n\' "$(wc -c < "$f")" "$f"; fi; done',
        ],
        timeout=_PROBE_TIMEOUT_S,
    )
    found: list[tuple[str, int]] = []
    for line in listing.stdout.splitlines():
        count, _, name = line.partition("\t")
        if name and count.strip().isdigit():
            found.append((name, int(count)))
    if len(found) > _MAX_REPORT_FILES:
        raise ReportUnreadable(f"{len(found)} report files, over the {_MAX_REPORT_FILES} limit")
    if sum(size for _, size in found) > _MAX_TOTAL_REPORT_BYTES:
        raise ReportUnreadable(
            f"the report files hold over {_MAX_TOTAL_REPORT_BYTES:,} bytes together; not read"
        )
    files: list[tuple[str, bytes]] = []
    for path, size in found:
        if size > limit:
            raise ReportUnreadable(
                f"the report {path} is {size:,} bytes, over the {limit:,}-byte limit; not read"
            )
        files.append((path, _read_container_file(session, path, size)))
    return files


def _read_container_file(session: Session, path: str, size: int) -> bytes:
    """Read one file in base64 chunks; a chunk whose output was capped is read again
    in smaller ones."""
    data = bytearray()
    chunk = 192 * 1024
    while len(data) < size:
        script = (
            f'dd if="$1" bs={chunk} skip={len(data) // chunk} count=1 iflag=fullblock '
            "status=none | base64 -w 0"
        )
        result = session.run(["/bin/sh", "-c", script, "sh", path], timeout=_PROBE_TIMEOUT_S)
        if result.truncated and chunk > 512:
            chunk //= 2
            continue
        if result.exit_code != 0 or result.truncated:
            raise ReportUnreadable(
                f"cannot read the report {path} from the sandbox: {result.stderr.strip()[:500]}"
            )
        try:
            piece = base64.b64decode(result.stdout.strip(), validate=True)
        except ValueError:
            raise ReportUnreadable(f"reading the report {path} returned garbled data") from None
        if not piece:  # the file shrank while being read
            break
        data += piece
        if len(data) % chunk:  # a short block: the end of the file
            break
    return bytes(data[: max(size, 0)])


def _read_report(
    session: Session, command: TestCommand, result: RunResult
) -> tuple[TestReport | None, str]:
    """The report the command wrote, or None and why not."""
    try:
        if command.report_format == "none":
            return None, ""
        if command.report_format == "go-json":
            report = parse_go_test_json(result.stdout)
            if result.truncated:
                return report, "the go test output was truncated: some tests may be missing"
            return report, ""
        files = read_container_files(session, command.reports)
        if not files:
            if command.framework == "custom":
                return None, "no JUnit XML in $APPLIANCE_REPORT_DIR: only the exit code counts"
            return None, (
                "the test run wrote no report: it may have crashed or failed to start "
                "(see its output)"
            )
        if command.report_format == "jest-json":
            return parse_jest_json(files[0][1]), ""
        return parse_junit_reports(files), ""
    except ReportUnreadable as exc:
        return None, f"the test report could not be read: {exc.message}"
    except SessionClosed:  # e.g. removed by the watchdog of a command that hung
        return None, "the sandbox was closed by the end of the run; no report could be read"


def _result_note(command: TestCommand, result: RunResult, report: TestReport | None) -> str:
    notes = []
    if result.timed_out:
        notes.append(f"the tests timed out after {result.duration_s:.0f} s")
    if result.oom_killed:
        notes.append("the tests ran out of memory and were killed")
    if result.truncated:
        notes.append("the output was over the cap; its middle was dropped")
    if command.framework in ("pytest", "unittest") and result.exit_code == 5:
        notes.append("pytest collected no tests")
    if report is None and result.exit_code != 0 and not result.timed_out:
        notes.append(f"the command failed (exit code {result.exit_code})")
    if report is not None:
        notes.append(report.summary())
        if report.ok and result.exit_code not in (0, 5) and not result.timed_out:
            notes.append(f"the command failed (exit code {result.exit_code}) though no test failed")
    return "; ".join(notes)


__all__ = [
    "REPORT_DIR",
    "NoTestCommand",
    "RepoFiles",
    "Requirement",
    "TestCommand",
    "TestRun",
    "check_requirements",
    "detect_test_command",
    "prepare_reports",
    "read_container_files",
    "run_tests",
]
