"""Detecting and running a repository's tests and linter.

Detection reads small file sets on the host; running uses real rootless Podman (the
``session`` fixture: a sandbox on the ``worktree`` directory) and fails, never skips,
when Podman cannot run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.base import Stream
from sandbox.images import recipe
from sandbox.lint import (
    Finding,
    NoLinter,
    detect_linter,
    parse_eslint_json,
    parse_lint_lines,
    run_linter,
)
from sandbox.podman import PodmanSandbox, PodmanSession
from sandbox.policy import SandboxPolicy
from sandbox.testrun import (
    REPORT_DIR,
    NoTestCommand,
    TestCommand,
    detect_test_command,
    run_tests,
)

FIXTURES = Path(__file__).parent / "fixtures"
# A stand-in for Jest (no registry here to install it from): it takes Jest's flags and
# writes a report in the format of Jest's own --json --outputFile.
FAKE_JEST = """#!/usr/bin/env node
const fs = require("fs");
const out = process.argv.find((a) => a.startsWith("--outputFile=")).split("=")[1];
console.error("FAIL src/sum.test.js");
fs.writeFileSync(out, JSON.stringify({testResults: [{
  name: "/workspace/src/sum.test.js", status: "failed", assertionResults: [
    {fullName: "sum adds", status: "passed", duration: 3, failureMessages: []},
    {fullName: "sum rounds", status: "failed", duration: 4,
     failureMessages: ["expect(received).toBe(expected)\\nExpected: 2\\nReceived: 1"]}]}]}));
process.exit(1);
"""


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _copy_fixture(name: str, worktree: Path) -> None:
    """Copy a fixture repository in, creating fresh files so that they take the
    worktree's default ACL (copying modes would narrow the sandbox user's access)."""
    source = FIXTURES / name
    for path in sorted(source.rglob("*")):
        target = worktree / path.relative_to(source)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif "__pycache__" not in path.parts:
            target.write_bytes(path.read_bytes())


# --- detection (no Podman) -----------------------------------------------------------


def _detect(tmp_path: Path, files: dict[str, str]) -> TestCommand | None:
    return detect_test_command(_files(tmp_path, files))


@pytest.mark.parametrize(
    "files",
    [
        {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-ra'\n"},
        {"setup.cfg": "[metadata]\nname = x\n[tool:pytest]\ntestpaths = tests\n"},
        {"tox.ini": "[tox]\nenvlist = py311\n[pytest]\nminversion = 7\n"},
        {"pytest.ini": "[pytest]\n"},
        {"conftest.py": ""},
        {"src/pkg/conftest.py": "", "src/pkg/__init__.py": ""},
        {"tests/test_a.py": "def test_a():\n    assert True\n"},
        {"tests/test_a.py": "import unittest\n", "requirements-dev.txt": "pytest>=7\n"},
    ],
)
def test_python_repository_is_run_with_pytest_writing_junit(
    tmp_path: Path, files: dict[str, str]
) -> None:
    command = _detect(tmp_path, files)
    assert command is not None
    assert command.framework == "pytest"
    assert command.image_kind == "python"
    assert command.argv == (
        "python3",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={REPORT_DIR}/junit.xml",
    )
    assert command.reports == (f"{REPORT_DIR}/junit.xml",)


def test_unittest_only_repository_runs_through_pytest_with_unittest_file_pattern(
    tmp_path: Path,
) -> None:
    command = _detect(
        tmp_path,
        {
            "setup.py": "from setuptools import setup\nsetup()\n",
            "pkg/__init__.py": "",
            "pkg/tests.py": "import unittest\n\nclass T(unittest.TestCase):\n    pass\n",
        },
    )
    assert command is not None
    assert command.framework == "unittest"
    assert command.report_format == "junit"
    assert isinstance(command.argv, tuple)
    assert command.argv[:3] == ("python3", "-m", "pytest")
    assert command.argv[-2:] == ("-o", "python_files=test*.py")
    assert "through pytest" in command.note


def test_jest_with_jest_junit_writes_junit_xml(tmp_path: Path) -> None:
    package = {"scripts": {"test": "jest"}, "devDependencies": {"jest": "^29", "jest-junit": "^16"}}
    command = _detect(tmp_path, {"package.json": json.dumps(package)})
    assert command is not None
    assert (command.framework, command.image_kind, command.report_format) == (
        "jest",
        "node",
        "junit",
    )
    assert isinstance(command.argv, tuple)
    assert f"JEST_JUNIT_OUTPUT_FILE={REPORT_DIR}/junit.xml" in command.argv
    assert "--reporters=jest-junit" in command.argv


def test_jest_without_jest_junit_uses_its_builtin_json_report(tmp_path: Path) -> None:
    command = _detect(tmp_path, {"package.json": json.dumps({"scripts": {"test": "jest --ci"}})})
    assert command is not None
    assert (command.framework, command.report_format) == ("jest", "jest-json")
    assert f"--outputFile={REPORT_DIR}/jest.json" in command.argv


def test_vitest_writes_junit_with_its_own_reporter(tmp_path: Path) -> None:
    package = {"scripts": {"test": "vitest"}, "devDependencies": {"vitest": "^1", "jest": "^29"}}
    command = _detect(tmp_path, {"package.json": json.dumps(package)})
    assert command is not None
    assert command.framework == "vitest"
    assert "--reporter=junit" in command.argv
    assert f"--outputFile.junit={REPORT_DIR}/junit.xml" in command.argv


def test_plain_npm_test_script_runs_without_a_report(tmp_path: Path) -> None:
    command = _detect(tmp_path, {"package.json": json.dumps({"scripts": {"test": "node t.js"}})})
    assert command is not None
    assert (command.framework, command.argv, command.report_format) == (
        "npm",
        ("npm", "test"),
        "none",
    )


def test_npm_init_placeholder_test_script_is_no_test_suite(tmp_path: Path) -> None:
    placeholder = 'echo "Error: no test specified" && exit 1'
    assert (
        _detect(tmp_path, {"package.json": json.dumps({"scripts": {"test": placeholder}})}) is None
    )


def test_go_module_is_detected_as_go_test_json(tmp_path: Path) -> None:
    command = _detect(tmp_path, {"go.mod": "module example.com/x\n\ngo 1.21\n"})
    assert command is not None
    assert (command.framework, command.argv, command.image_kind, command.report_format) == (
        "go",
        ("go", "test", "-json", "./..."),
        "go",
        "go-json",
    )


def test_maven_project_reads_surefire_reports(tmp_path: Path) -> None:
    command = _detect(tmp_path, {"pom.xml": "<project/>"})
    assert command is not None
    assert (command.framework, command.argv, command.image_kind) == (
        "maven",
        ("mvn", "-o", "-B", "test"),
        "java",
    )
    assert "target/surefire-reports/TEST-*.xml" in command.reports
    assert "target/surefire-reports" in command.clean


def test_pytest_configuration_wins_over_package_json(tmp_path: Path) -> None:
    files = {"pytest.ini": "[pytest]\n", "package.json": json.dumps({"scripts": {"test": "jest"}})}
    command = _detect(tmp_path, files)
    assert command is not None
    assert command.framework == "pytest"


def test_repository_without_tests_has_no_test_command(tmp_path: Path) -> None:
    assert _detect(tmp_path, {"README.md": "hi\n", "main.py": "print(1)\n"}) is None


def test_vendored_test_files_do_not_count(tmp_path: Path) -> None:
    files = {
        "node_modules/pkg/test_x.py": "def test_x():\n    pass\n",
        ".venv/lib/test_y.py": "def test_y():\n    pass\n",
    }
    assert _detect(tmp_path, files) is None


def test_symlinked_package_json_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"scripts": {"test": "jest"}}))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "package.json").symlink_to(outside)
    assert detect_test_command(repo) is None


def test_custom_command_is_run_with_the_report_dir_set() -> None:
    command = TestCommand.custom("make check")
    assert command.framework == "custom"
    assert command.sandbox_argv() == [
        "env",
        f"APPLIANCE_REPORT_DIR={REPORT_DIR}",
        "/bin/sh",
        "-c",
        "make check",
    ]
    assert command.display() == "make check"


# --- lint detection and parsing (no Podman) ------------------------------------------


def test_ruff_configuration_is_detected_with_flake8_as_its_fallback(tmp_path: Path) -> None:
    lint = detect_linter(_files(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 110\n"}))
    assert lint is not None
    assert lint.linter == "ruff"
    assert lint.fallback is not None
    assert lint.fallback.linter == "flake8"
    assert "--max-line-length=110" in lint.fallback.argv


@pytest.mark.parametrize(
    "files",
    [{".flake8": "[flake8]\n"}, {"setup.cfg": "[flake8]\nmax-line-length = 99\n"}, {"a.py": ""}],
)
def test_python_code_is_linted_with_flake8(tmp_path: Path, files: dict[str, str]) -> None:
    lint = detect_linter(_files(tmp_path, files))
    assert lint is not None
    assert (lint.linter, lint.image_kind, lint.fallback) == ("flake8", "python", None)


@pytest.mark.parametrize(
    "files",
    [
        {"package.json": json.dumps({"devDependencies": {"eslint": "^8"}})},
        {"eslint.config.js": "export default [];\n", "src/a.js": ""},
    ],
)
def test_javascript_is_linted_with_eslint(tmp_path: Path, files: dict[str, str]) -> None:
    lint = detect_linter(_files(tmp_path, files))
    assert lint is not None
    assert (lint.linter, lint.image_kind, lint.output) == ("eslint", "node", "eslint-json")


def test_nothing_to_lint_is_none(tmp_path: Path) -> None:
    assert detect_linter(_files(tmp_path, {"README.md": "x\n"})) is None


def test_flake8_and_ruff_lines_are_parsed_into_findings() -> None:
    text = (
        "./pkg/a.py:3:80: E501 line too long (83 > 79 characters)\n"
        "/workspace/b.py:1:8: F401 [*] `os` imported but unused\n"
        "Found 2 errors.\n"
    )
    assert parse_lint_lines(text) == [
        Finding("pkg/a.py", 3, 80, "E501", "line too long (83 > 79 characters)"),
        Finding("b.py", 1, 8, "F401", "[*] `os` imported but unused"),
    ]


def test_eslint_json_is_parsed_into_findings() -> None:
    report = [
        {
            "filePath": "/workspace/src/a.js",
            "messages": [
                {"ruleId": "no-unused-vars", "message": "'x' is unused", "line": 2, "column": 7},
                {"ruleId": None, "fatal": True, "message": "Parsing error", "line": 9, "column": 1},
            ],
        }
    ]
    assert parse_eslint_json(json.dumps(report)) == [
        Finding("src/a.js", 2, 7, "no-unused-vars", "'x' is unused"),
        Finding("src/a.js", 9, 1, "fatal", "Parsing error"),
    ]


# --- running tests in a real sandbox -------------------------------------------------

slow = pytest.mark.slow  # real Podman


@slow
def test_failing_test_is_reported_with_its_assertion(
    session: PodmanSession, worktree: Path
) -> None:
    _copy_fixture("pyproj", worktree)
    run = run_tests(session, worktree)
    assert run.available
    assert run.command.framework == "pytest"
    assert run.result.exit_code == 1
    assert run.report is not None
    report = run.report
    assert (report.passed, report.failed, report.errors, report.skipped) == (3, 1, 0, 1)
    assert not run.ok
    [failure] = report.failures()
    assert (failure.classname, failure.name) == ("test_calc", "test_mean_of_two")
    assert failure.message is not None
    assert "assert 1 == 1.5" in failure.message
    assert len(failure.message) <= 4000
    assert "3 passed, 1 failed" in run.note
    # Nothing was written into the worktree: no cache, no report, no bytecode.
    leftovers = {p.name for p in worktree.iterdir()}
    assert leftovers == {"README.md", "pyproject.toml", "calc.py", "test_calc.py"}


@slow
def test_fixed_code_passes(session: PodmanSession, worktree: Path) -> None:
    _copy_fixture("pyproj", worktree)
    calc = worktree / "calc.py"
    calc.write_text(calc.read_text().replace("sum(values) // len", "sum(values) / len"))
    run = run_tests(session, worktree)
    assert run.report is not None
    assert (run.report.passed, run.report.failed, run.report.skipped) == (4, 0, 1)
    assert run.ok
    assert run.result.exit_code == 0


@slow
def test_baseline_comparison_shows_only_the_new_failure(
    session: PodmanSession, worktree: Path
) -> None:
    _copy_fixture("pyproj", worktree)
    baseline = run_tests(session, worktree).report
    assert baseline is not None
    calc = worktree / "calc.py"
    calc.write_text(calc.read_text().replace("return a + b", "return a - b"))  # the "edit"
    after = run_tests(session, worktree).report
    assert after is not None
    assert {c.name for c in after.failures()} == {"test_add", "test_mean_of_two"}
    assert [c.name for c in after.new_failures(baseline)] == ["test_add"]


@slow
def test_output_streams_live_to_the_callback(session: PodmanSession, worktree: Path) -> None:
    _copy_fixture("pyproj", worktree)
    seen: list[tuple[Stream, bytes]] = []
    run = run_tests(session, worktree, on_output=lambda stream, chunk: seen.append((stream, chunk)))
    streamed = b"".join(chunk for stream, chunk in seen if stream == "stdout").decode()
    assert "1 failed, 3 passed, 1 skipped" in streamed
    assert streamed == run.result.stdout


@slow
def test_unittest_suite_runs_through_pytest_with_a_report(
    session: PodmanSession, worktree: Path
) -> None:
    _files(
        worktree,
        {
            "pkg/__init__.py": "",
            "pkg/tests.py": (
                "import unittest\n\n\n"
                "class MathTest(unittest.TestCase):\n"
                "    def test_ok(self):\n        self.assertEqual(1 + 1, 2)\n\n"
                "    def test_wrong(self):\n        self.assertEqual(1 + 1, 3)\n"
            ),
        },
    )
    run = run_tests(session, worktree)
    assert run.command.framework == "unittest"
    assert run.report is not None
    assert (run.report.passed, run.report.failed) == (1, 1)
    [failure] = run.report.failures()
    assert (failure.classname, failure.name) == ("pkg.tests.MathTest", "test_wrong")
    assert failure.message is not None
    assert "2 != 3" in failure.message


@slow
def test_configured_command_is_read_through_the_report_dir(
    session: PodmanSession, worktree: Path
) -> None:
    _copy_fixture("pyproj", worktree)
    command = 'python3 -m pytest -p no:cacheprovider --junitxml="$APPLIANCE_REPORT_DIR/mine.xml"'
    run = run_tests(session, worktree, command=command)
    assert run.command.framework == "custom"
    assert run.report is not None
    assert (run.report.passed, run.report.failed) == (3, 1)


@slow
def test_configured_command_without_a_report_counts_by_exit_code(
    session: PodmanSession, worktree: Path
) -> None:
    run = run_tests(session, worktree, command=["sh", "-c", "echo checked; exit 0"])
    assert run.report is None
    assert run.ok
    assert "only the exit code counts" in run.note


@slow
def test_large_report_is_read_whole_past_the_output_cap(
    session: PodmanSession, worktree: Path
) -> None:
    # ~3 MB of JUnit with multi-byte text: read in chunks, under the 1 MiB output cap.
    script = (
        "import os\n"
        "cases = ''.join(\n"
        '    f\'<testcase classname="big" name="t{i}"><failure message="é漢{i}">\'\n'
        "    + 'ü' * 700 + '</failure></testcase>' for i in range(2000))\n"
        "path = os.environ['APPLIANCE_REPORT_DIR'] + '/big.xml'\n"
        "open(path, 'w', encoding='utf-8').write(f'<testsuite>{cases}</testsuite>')\n"
    )
    _files(worktree, {"gen.py": script})
    run = run_tests(session, worktree, command="python3 gen.py")
    assert run.result.exit_code == 0, run.result.stderr
    assert run.report is not None
    assert run.report.failed == 2000
    assert run.report.cases[1999].message == "é漢1999\n\n" + "ü" * 700


@slow
def test_hostile_report_is_refused_and_the_run_still_returns(
    session: PodmanSession, worktree: Path
) -> None:
    xml = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<testsuite><testcase name="a"><failure message="&x;"/></testcase></testsuite>'
    )
    _files(worktree, {"evil.xml": xml})
    run = run_tests(session, worktree, command='cp evil.xml "$APPLIANCE_REPORT_DIR/r.xml"')
    assert run.report is None
    assert "could not be read" in run.note
    assert "DTD" in run.note


@slow
def test_timeout_is_reported_in_the_note(session: PodmanSession, worktree: Path) -> None:
    run = run_tests(session, worktree, command="sleep 30", timeout=1)
    assert run.result.timed_out
    assert not run.ok
    assert "timed out" in run.note


@slow
def test_go_repository_needs_a_go_image_and_says_so(session: PodmanSession, worktree: Path) -> None:
    _files(worktree, {"go.mod": "module example.com/x\n\ngo 1.21\n"})
    run = run_tests(session, worktree)
    assert run.command.framework == "go"
    assert not run.available
    assert not run.ok
    assert run.report is None
    assert "go is not installed in this sandbox image" in run.note
    assert "needs a go sandbox image" in run.note


def test_repository_without_tests_raises_a_clear_error(tmp_path: Path) -> None:
    class NoSession:  # never used: detection fails first
        pass

    with pytest.raises(NoTestCommand, match="no test suite found"):
        run_tests(NoSession(), tmp_path)  # type: ignore[arg-type]


@pytest.fixture
def node_session(podman_sandbox: PodmanSandbox, worktree: Path) -> Iterator[PodmanSession]:
    policy = SandboxPolicy(
        image=recipe("node").name, memory_mb=256, pids=128, timeout_s=60, tmpfs_mb=32
    )
    task_id = f"test-node-{uuid.uuid4().hex[:8]}"
    with podman_sandbox.open(worktree, policy, task_id=task_id) as session:
        yield session


@slow
def test_jest_repository_runs_in_the_node_image_and_its_report_is_read(
    node_session: PodmanSession, worktree: Path
) -> None:
    package = {"scripts": {"test": "jest"}, "devDependencies": {"jest": "^29"}}
    _files(worktree, {"package.json": json.dumps(package), "node_modules/.bin/jest": FAKE_JEST})
    (worktree / "node_modules/.bin/jest").chmod(0o755)
    seen: list[bytes] = []
    run = run_tests(node_session, worktree, on_output=lambda _stream, chunk: seen.append(chunk))
    assert run.available
    assert (run.command.framework, run.command.report_format) == ("jest", "jest-json")
    assert run.report is not None
    assert (run.report.passed, run.report.failed) == (1, 1)
    [failure] = run.report.failures()
    assert (failure.classname, failure.name) == ("src/sum.test.js", "sum rounds")
    assert failure.message is not None
    assert "Received: 1" in failure.message
    assert b"FAIL src/sum.test.js" in b"".join(seen)


@slow
def test_jest_without_node_modules_says_what_is_missing(
    node_session: PodmanSession, worktree: Path
) -> None:
    _files(worktree, {"package.json": json.dumps({"devDependencies": {"jest": "^29"}})})
    run = run_tests(node_session, worktree)
    assert not run.available
    assert "jest is not installed in the repository (node_modules/.bin/jest is missing)" in (
        run.note
    )


# --- linting in a real sandbox -------------------------------------------------------


@slow
def test_flake8_reports_the_fixture_long_line(session: PodmanSession, worktree: Path) -> None:
    _copy_fixture("pyproj", worktree)
    seen: list[bytes] = []
    run = run_linter(session, worktree, on_output=lambda _stream, chunk: seen.append(chunk))
    assert run.available
    assert run.command.linter == "flake8"
    assert Finding("calc.py", 13, 80, "E501", "line too long (83 > 79 characters)") in run.findings
    assert all(f.path != "README.md" for f in run.findings)
    assert not run.ok
    assert b"calc.py:13:80: E501" in b"".join(seen)


@slow
def test_ruff_configuration_falls_back_to_flake8_in_this_image(
    session: PodmanSession, worktree: Path
) -> None:
    _copy_fixture("pyproj", worktree)
    (worktree / "ruff.toml").write_text("line-length = 100\n")
    run = run_linter(session, worktree)
    assert run.available
    assert run.command.linter == "flake8"
    assert "ruff is not installed in this sandbox image; falling back to flake8" in run.note
    assert run.findings == ()  # the long line fits ruff's 100 columns
    assert run.ok


@slow
def test_eslint_is_reported_not_available_in_the_python_image(
    session: PodmanSession, worktree: Path
) -> None:
    _files(worktree, {"package.json": json.dumps({"devDependencies": {"eslint": "^8"}})})
    run = run_linter(session, worktree)
    assert run.command.linter == "eslint"
    assert not run.available
    assert not run.ok
    assert run.findings == ()
    assert "eslint is not available: node is not installed in this sandbox image" in run.note


@slow
def test_eslint_is_reported_not_available_without_node_modules(
    node_session: PodmanSession, worktree: Path
) -> None:
    _files(worktree, {"package.json": json.dumps({"devDependencies": {"eslint": "^8"}})})
    run = run_linter(node_session, worktree)
    assert not run.available
    assert "eslint is not available: it is not installed in the repository" in run.note


def test_nothing_to_lint_raises_a_clear_error(tmp_path: Path) -> None:
    class NoSession:
        pass

    with pytest.raises(NoLinter, match="nothing to lint"):
        run_linter(NoSession(), tmp_path)  # type: ignore[arg-type]
