"""Reading test reports: JUnit XML (hostile ones included), go test -json, jest --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.errors import SandboxError
from sandbox.junit import (
    MAX_MESSAGE_CHARS,
    MAX_REPORT_BYTES,
    Outcome,
    ReportUnreadable,
    TestCase,
    TestReport,
    parse_go_test_json,
    parse_jest_json,
    parse_junit,
    parse_junit_file,
    parse_junit_reports,
    trim_message,
)

PYTEST_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.75">
<testcase classname="test_calc" name="test_add" time="0.001" />
<testcase classname="test_calc" name="test_mul" time="0.002" />
<testcase classname="test_calc" name="test_mean_of_two" time="0.003">
<failure message="assert 1 == 1.5&#10; +  where 1 = mean([1, 2])">def test_mean_of_two():
&gt;       assert mean([1, 2]) == 1.5
E       assert 1 == 1.5
test_calc.py:19: AssertionError</failure></testcase>
<testcase classname="test_calc" name="test_db" time="0.0">
<error message="failed on setup with &quot;RuntimeError: no db&quot;">RuntimeError: no db</error>
</testcase>
<testcase classname="test_calc" name="test_later" time="0.0">
<skipped type="pytest.skip" message="not written yet">test_calc.py:22: not written yet</skipped>
</testcase>
</testsuite></testsuites>
"""


def _case(name: str, outcome: Outcome = "passed", classname: str = "t") -> TestCase:
    return TestCase(name, classname, outcome, 0.1, None if outcome == "passed" else "boom")


def test_pytest_report_gives_each_case_with_its_outcome_and_counts() -> None:
    report = parse_junit(PYTEST_XML)
    assert (report.passed, report.failed, report.errors, report.skipped) == (2, 1, 1, 1)
    assert report.duration_s == pytest.approx(0.75)
    assert not report.ok
    outcomes = {case.name: case.outcome for case in report.cases}
    assert outcomes == {
        "test_add": "passed",
        "test_mul": "passed",
        "test_mean_of_two": "failed",
        "test_db": "error",
        "test_later": "skipped",
    }
    failed = next(c for c in report.cases if c.name == "test_mean_of_two")
    assert failed.classname == "test_calc"
    assert failed.duration_s == pytest.approx(0.003)
    assert failed.message is not None
    assert failed.message.startswith("assert 1 == 1.5")
    assert "test_calc.py:19: AssertionError" in failed.message
    assert [c.name for c in report.failures()] == ["test_mean_of_two", "test_db"]


def test_bare_testsuite_root_is_read() -> None:
    xml = '<testsuite name="s" time="2.5"><testcase name="a" classname="C" time="1"/></testsuite>'
    report = parse_junit(xml)
    assert report.passed == 1
    assert report.ok
    assert report.duration_s == pytest.approx(2.5)


def test_several_files_are_merged_into_one_report() -> None:
    one = b'<testsuite time="1"><testcase name="a" classname="A"/></testsuite>'
    two = (
        b'<testsuite time="2"><testcase name="b" classname="B">'
        b"<failure>x</failure></testcase></testsuite>"
    )
    report = parse_junit_reports([("TEST-A.xml", one), ("TEST-B.xml", two)])
    assert (report.passed, report.failed, report.total) == (1, 1, 2)
    assert report.duration_s == pytest.approx(3.0)


def test_nested_suites_and_odd_durations_do_not_break_parsing() -> None:
    xml = """<testsuites><testsuite name="outer"><testsuite name="inner">
    <testcase name="a" time="1,234.5"/><testcase name="b" time="nan"/><testcase name="c" time="x"/>
    </testsuite></testsuite></testsuites>"""
    report = parse_junit(xml)
    assert report.passed == 3
    assert [c.duration_s for c in report.cases] == [1234.5, 0.0, 0.0]


def test_billion_laughs_is_refused_without_expanding_entities() -> None:
    xml = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite><testcase name="&lol4;"/></testsuite>"""
    with pytest.raises(ReportUnreadable, match="DTD, entities or external references"):
        parse_junit(xml)


def test_external_entity_is_refused_and_the_file_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = f"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>
<testsuite><testcase name="x"><failure message="&xxe;"/></testcase></testsuite>"""
    with pytest.raises(ReportUnreadable) as caught:
        parse_junit(xml)
    assert "TOP-SECRET" not in str(caught.value)
    assert isinstance(caught.value, SandboxError)


def test_huge_failure_message_is_trimmed_keeping_head_and_end() -> None:
    body = "HEAD-" + "x" * 100_000 + "-END"
    xml = (
        f'<testsuite><testcase name="big"><failure message="m">{body}</failure>'
        "</testcase></testsuite>"
    )
    message = parse_junit(xml).cases[0].message
    assert message is not None
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith("m\n\nHEAD-")
    assert message.endswith("-END")
    assert "characters trimmed" in message


def test_trim_message_leaves_short_text_alone() -> None:
    assert trim_message("short") == "short"
    assert len(trim_message("y" * 10_000, 100)) <= 100


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("<testsuite><testcase name='a'>", "not well-formed XML"),
        ("", "not well-formed XML"),
        ("\x00\x01binary", "not well-formed XML"),
        ("<html><body>oops</body></html>", "not JUnit XML: its root element is <html>"),
    ],
)
def test_malformed_report_raises_a_clear_error(data: str, why: str) -> None:
    with pytest.raises(ReportUnreadable, match=why):
        parse_junit(data, source="the report r.xml")


def test_report_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ReportUnreadable, match=r"over the [0-9,]+-byte limit"):
        parse_junit(b" " * (MAX_REPORT_BYTES + 1))


def test_report_file_is_read_but_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "junit.xml"
    real.write_text('<testsuite><testcase name="a"/></testsuite>')
    assert parse_junit_file(real).passed == 1
    link = tmp_path / "link.xml"
    link.symlink_to(real)
    with pytest.raises(ReportUnreadable, match="cannot open the report"):
        parse_junit_file(link)


def test_new_failures_ignore_tests_that_already_failed_in_the_baseline() -> None:
    baseline = TestReport.from_cases(
        [
            _case("old_broken", "failed"),
            _case("fine"),
            _case("flaky", "error"),
            _case("skipped", "skipped"),
        ]
    )
    after = TestReport.from_cases(
        [
            _case("old_broken", "failed"),
            _case("fine", "failed"),
            _case("flaky"),
            _case("skipped", "error"),
            _case("brand_new", "failed"),
        ]
    )
    assert [c.name for c in after.new_failures(baseline)] == ["fine", "skipped", "brand_new"]
    assert [c.name for c in after.fixed_since(baseline)] == ["flaky"]
    assert after.new_failures(after) == []


def test_same_name_in_another_class_is_another_test() -> None:
    baseline = TestReport.from_cases([_case("test_x", "failed", classname="A")])
    after = TestReport.from_cases([_case("test_x", "failed", classname="B")])
    assert [c.nodeid for c in after.new_failures(baseline)] == ["B::test_x"]


def test_go_test_json_events_become_cases() -> None:
    events = [
        {"Action": "run", "Package": "ex/calc", "Test": "TestAdd"},
        {"Action": "pass", "Package": "ex/calc", "Test": "TestAdd", "Elapsed": 0.01},
        {"Action": "run", "Package": "ex/calc", "Test": "TestMean"},
        {
            "Action": "output",
            "Package": "ex/calc",
            "Test": "TestMean",
            "Output": "calc_test.go:9: got 1, want 1.5\n",
        },
        {"Action": "fail", "Package": "ex/calc", "Test": "TestMean", "Elapsed": 0.02},
        {"Action": "run", "Package": "ex/calc", "Test": "TestLater"},
        {"Action": "skip", "Package": "ex/calc", "Test": "TestLater", "Elapsed": 0},
        {"Action": "fail", "Package": "ex/calc", "Elapsed": 0.5},
        {"Action": "output", "Package": "ex/broken", "Output": "broken.go:3:1: syntax error\n"},
        {"Action": "fail", "Package": "ex/broken", "Elapsed": 0.1},
    ]
    text = "# ex/broken\nnot json\n" + "\n".join(json.dumps(e) for e in events)
    report = parse_go_test_json(text)
    assert (report.passed, report.failed, report.skipped, report.errors) == (1, 1, 1, 1)
    mean = next(c for c in report.cases if c.name == "TestMean")
    assert mean.classname == "ex/calc"
    assert mean.message == "calc_test.go:9: got 1, want 1.5"
    broken = next(c for c in report.cases if c.outcome == "error")
    assert broken.name == "ex/broken"
    assert broken.message is not None
    assert "syntax error" in broken.message
    assert report.duration_s == pytest.approx(0.6)


def test_go_output_without_json_events_is_unreadable() -> None:
    with pytest.raises(ReportUnreadable, match="no JSON events"):
        parse_go_test_json("ok  \tex/calc\t0.01s\n")


def test_jest_json_report_becomes_cases() -> None:
    document = {
        "testResults": [
            {
                "name": "/workspace/src/sum.test.js",
                "status": "failed",
                "assertionResults": [
                    {
                        "fullName": "sum adds",
                        "status": "passed",
                        "duration": 5,
                        "failureMessages": [],
                    },
                    {
                        "fullName": "sum rounds",
                        "status": "failed",
                        "duration": 7,
                        "failureMessages": ["Expected: 2\nReceived: 1"],
                    },
                    {"fullName": "sum later", "status": "todo", "duration": None},
                ],
            },
            {
                "name": "/workspace/src/broken.test.js",
                "status": "failed",
                "message": "SyntaxError: Unexpected token",
                "assertionResults": [],
            },
        ]
    }
    report = parse_jest_json(json.dumps(document))
    assert (report.passed, report.failed, report.skipped, report.errors) == (1, 1, 1, 1)
    rounds = next(c for c in report.cases if c.name == "sum rounds")
    assert rounds.classname == "src/sum.test.js"
    assert rounds.duration_s == pytest.approx(0.007)
    assert rounds.message == "Expected: 2\nReceived: 1"
    broken = next(c for c in report.cases if c.outcome == "error")
    assert broken.message == "SyntaxError: Unexpected token"


@pytest.mark.parametrize("data", ["{not json", "[]", '{"testResults": 3}'])
def test_malformed_jest_report_is_unreadable(data: str) -> None:
    with pytest.raises(ReportUnreadable):
        parse_jest_json(data)
