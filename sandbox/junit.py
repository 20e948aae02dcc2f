"""Test reports: JUnit XML (and the two JSON formats some runners write instead) read
into one structured model, :class:`TestReport`.

Reports come from untrusted repositories, so reading them is defensive:

* XML is parsed with :mod:`defusedxml` with DTDs, entities and external references
  forbidden (no billion laughs, no XXE); JUnit never needs any of them.
* A report over :data:`MAX_REPORT_BYTES` is refused before it is parsed.
* Failure texts are trimmed to :data:`MAX_MESSAGE_CHARS` (the head and the end kept).
* Anything unreadable raises :class:`ReportUnreadable` with a message that says why;
  no parser exception leaks out.

Besides JUnit XML, ``go test -json`` events (:func:`parse_go_test_json`) and Jest's
built-in ``--json`` output (:func:`parse_jest_json`) map onto the same model, so a
caller compares any two runs the same way (:meth:`TestReport.new_failures`).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sandbox.errors import SandboxError

Outcome = Literal["passed", "failed", "error", "skipped"]
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_MESSAGE_CHARS = 4000


class ReportUnreadable(SandboxError):
    """A test report is missing its structure, malformed, hostile or too large."""


def trim_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters: its head and its end, with a marker
    saying how much of the middle was dropped (the assertion usually sits at one end)."""
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit:,} characters trimmed ...]\n"
    # The marker's own length is taken from the budget; its count is approximate by it.
    budget = max(limit - len(marker), 2)
    head = budget // 2
    return text[:head] + marker + text[len(text) - (budget - head) :]


@dataclass(frozen=True)
class TestCase:
    """One test's result. ``message`` is the failure, error or skip text, trimmed."""

    __test__ = False  # not a pytest test class

    name: str
    classname: str
    outcome: Outcome
    duration_s: float
    message: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the test across runs."""
        return (self.classname, self.name)

    @property
    def nodeid(self) -> str:
        return f"{self.classname}::{self.name}" if self.classname else self.name

    @property
    def is_failure(self) -> bool:
        return self.outcome in ("failed", "error")


@dataclass(frozen=True)
class TestReport:
    """All test cases of one run, with their counts."""

    __test__ = False

    cases: tuple[TestCase, ...]
    passed: int
    failed: int
    errors: int
    skipped: int
    duration_s: float

    @classmethod
    def from_cases(cls, cases: Iterable[TestCase], duration_s: float | None = None) -> TestReport:
        """A report counting ``cases``; the duration is their sum unless given."""
        cases = tuple(cases)
        count = {o: sum(1 for c in cases if c.outcome == o) for o in _OUTCOMES}
        return cls(
            cases=cases,
            passed=count["passed"],
            failed=count["failed"],
            errors=count["error"],
            skipped=count["skipped"],
            duration_s=duration_s if duration_s is not None else sum(c.duration_s for c in cases),
        )

    @classmethod
    def merge(cls, reports: Iterable[TestReport]) -> TestReport:
        """One report of several (e.g. one JUnit file per test class)."""
        reports = list(reports)
        return cls.from_cases(
            (case for report in reports for case in report.cases),
            duration_s=sum(r.duration_s for r in reports),
        )

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def ok(self) -> bool:
        """No test failed or errored (skips do not count against a run)."""
        return self.failed == 0 and self.errors == 0

    def failures(self) -> list[TestCase]:
        """The failed and errored tests."""
        return [case for case in self.cases if case.is_failure]

    def new_failures(self, baseline: TestReport) -> list[TestCase]:
        """Tests failing now that did not fail in ``baseline`` (the run before any edit).

        A test that already failed before is pre-existing and does not count against an
        edit; a test that is new, or passed or was skipped before, does."""
        before = {case.key for case in baseline.failures()}
        return [case for case in self.failures() if case.key not in before]

    def fixed_since(self, baseline: TestReport) -> list[TestCase]:
        """Tests that failed in ``baseline`` and pass now."""
        before = {case.key for case in baseline.failures()}
        return [case for case in self.cases if case.outcome == "passed" and case.key in before]

    def summary(self) -> str:
        return (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped in {self.duration_s:.2f} s"
        )


_OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped")
_JUNIT_DETAILS: tuple[tuple[str, Outcome], ...] = (
    ("failure", "failed"),
    ("error", "error"),
    ("skipped", "skipped"),
)
_GO_OUTCOMES: dict[str, Outcome] = {"pass": "passed", "fail": "failed", "skip": "skipped"}


# --- JUnit XML -----------------------------------------------------------------------


def parse_junit(data: bytes | str, *, source: str = "the JUnit report") -> TestReport:
    """Parse one JUnit XML document (``<testsuites>`` or a bare ``<testsuite>``)."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_REPORT_BYTES:
        raise ReportUnreadable(
            f"{source} is {size:,} bytes, over the {MAX_REPORT_BYTES:,}-byte limit; not read"
        )
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ReportUnreadable(
            f"{source} was refused: it declares a DTD, entities or external references "
            f"({type(exc).__name__}), which a JUnit report never needs"
        ) from None
    except ParseError as exc:
        raise ReportUnreadable(f"{source} is not well-formed XML: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportUnreadable(
            f"{source} is not JUnit XML: its root element is <{root.tag}>, "
            "not <testsuites> or <testsuite>"
        )
    cases = [_junit_case(element) for element in root.iter("testcase")]
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    timed = [_seconds(s.get("time")) for s in suites if s.get("time") is not None]
    if root.tag == "testsuites" and root.get("time") is not None:
        duration: float | None = _seconds(root.get("time"))
    else:
        duration = sum(timed) if timed else None
    return TestReport.from_cases(cases, duration_s=duration)


def parse_junit_reports(reports: Iterable[tuple[str, bytes]]) -> TestReport:
    """Parse and merge several JUnit documents, given as ``(name, content)`` pairs."""
    return TestReport.merge(parse_junit(data, source=name) for name, data in reports)


def read_report_file(path: Path, *, limit: int = MAX_REPORT_BYTES) -> bytes:
    """The bytes of a report file on this host: a regular file, not a symlink (a
    repository could point one at a host file), of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ReportUnreadable(f"cannot open the report {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ReportUnreadable(f"the report {path} is not a regular file; not read")
        if info.st_size > limit:
            raise ReportUnreadable(
                f"the report {path} is {info.st_size:,} bytes, over the {limit:,}-byte limit; "
                "not read"
            )
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ReportUnreadable(f"the report {path} grew over the {limit:,}-byte limit; not read")
    return data


def parse_junit_file(path: Path) -> TestReport:
    """Parse a JUnit XML file on this host (see :func:`read_report_file`)."""
    return parse_junit(read_report_file(path), source=f"the JUnit report {path}")


def _junit_case(element: Element) -> TestCase:
    outcome: Outcome = "passed"
    detail: Element | None = None
    for tag, result in _JUNIT_DETAILS:
        detail = element.find(tag)
        if detail is not None:
            outcome = result
            break
    message = None
    if detail is not None:
        parts = [p.strip() for p in (detail.get("message"), detail.text) if p and p.strip()]
        if len(parts) == 2 and parts[0] in parts[1]:
            parts = parts[1:]
        message = trim_message("\n\n".join(parts)) if parts else None
    return TestCase(
        name=element.get("name") or "<unnamed>",
        classname=element.get("classname") or "",
        outcome=outcome,
        duration_s=_seconds(element.get("time")),
        message=message,
    )


def _seconds(value: object) -> float:
    """A duration attribute as seconds; anything unusable is 0 (reporters vary)."""
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.replace(",", "").strip())
        except ValueError:
            return 0.0
    else:
        return 0.0
    return number if math.isfinite(number) and number >= 0 else 0.0


# --- go test -json -------------------------------------------------------------------


def parse_go_test_json(text: str) -> TestReport:
    """Read ``go test -json`` events (one JSON object a line; other lines, such as
    compiler errors printed before the events, are ignored). A package that failed
    without a failing test (it did not build) becomes one errored case."""
    outputs: dict[tuple[str, str], list[str]] = {}
    finished: dict[tuple[str, str], TestCase] = {}
    package_time: dict[str, float] = {}
    failed_packages: set[str] = set()
    started: list[tuple[str, str]] = []
    seen_any = False
    for line in text.splitlines():
        event = _json_object(line)
        if event is None or not isinstance(event.get("Action"), str):
            continue
        seen_any = True
        action = event["Action"]
        package = str(event.get("Package") or "")
        test = str(event.get("Test") or "")
        key = (package, test)
        if action == "run" and test:
            started.append(key)
        elif action == "output":
            outputs.setdefault(key, []).append(str(event.get("Output") or ""))
        elif action in _GO_OUTCOMES and test:
            outcome = _GO_OUTCOMES[action]
            message = None
            if outcome != "passed":
                message = trim_message("".join(outputs.get(key, [])).strip()) or None
            finished[key] = TestCase(
                test, package, outcome, _seconds(event.get("Elapsed")), message
            )
        elif action in ("pass", "fail") and not test:
            package_time[package] = _seconds(event.get("Elapsed"))
            if action == "fail":
                failed_packages.add(package)
    if not seen_any and text.strip():
        raise ReportUnreadable("the go test output holds no JSON events (was -json passed?)")
    cases = list(finished.values())
    for key in dict.fromkeys(started):  # started, never finished: a panic or a timeout
        if key not in finished:
            text_out = trim_message("".join(outputs[key]).strip())
            cases.append(TestCase(key[1], key[0], "error", 0.0, text_out or "did not finish"))
    for package in sorted(failed_packages):
        if not any(c.classname == package and c.is_failure for c in cases):
            text_out = trim_message("".join(outputs.get((package, ""), [])).strip())
            cases.append(TestCase(package, package, "error", 0.0, text_out or "package failed"))
    duration = sum(package_time.values()) if package_time else None
    return TestReport.from_cases(cases, duration_s=duration)


# --- jest --json ---------------------------------------------------------------------

_JEST_OUTCOMES: dict[str, Outcome] = {
    "passed": "passed",
    "failed": "failed",
    "pending": "skipped",
    "skipped": "skipped",
    "todo": "skipped",
    "disabled": "skipped",
}


def parse_jest_json(data: bytes | str, *, workspace: str = "/workspace") -> TestReport:
    """Read Jest's built-in ``--json`` report (used when jest-junit is not installed).
    A test file that failed to run (e.g. a syntax error) becomes one errored case."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_REPORT_BYTES:
        raise ReportUnreadable(
            f"the Jest report is {size:,} bytes, over the {MAX_REPORT_BYTES:,}-byte limit"
        )
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ReportUnreadable(f"the Jest report is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("testResults"), list):
        raise ReportUnreadable("the Jest report has no testResults list")
    cases: list[TestCase] = []
    for suite in document["testResults"]:
        if not isinstance(suite, dict):
            continue
        filename = str(suite.get("name") or "")
        if filename.startswith(workspace.rstrip("/") + "/"):
            filename = filename[len(workspace.rstrip("/")) + 1 :]
        assertions = suite.get("assertionResults")
        assertions = (
            [a for a in assertions if isinstance(a, dict)] if isinstance(assertions, list) else []
        )
        for item in assertions:
            outcome = _JEST_OUTCOMES.get(str(item.get("status")), "error")
            failures = item.get("failureMessages")
            text = "\n".join(map(str, failures)) if isinstance(failures, list) else ""
            duration = item.get("duration")
            cases.append(
                TestCase(
                    name=str(item.get("fullName") or item.get("title") or "<unnamed>"),
                    classname=filename,
                    outcome=outcome,
                    duration_s=_seconds(duration) / 1000 if duration is not None else 0.0,
                    message=trim_message(text.strip()) if text.strip() else None,
                )
            )
        if suite.get("status") == "failed" and not any(
            c.classname == filename and c.is_failure for c in cases
        ):
            text = str(suite.get("message") or "the test file failed to run").strip()
            cases.append(TestCase(filename, filename, "error", 0.0, trim_message(text)))
    return TestReport.from_cases(cases)


def _json_object(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
