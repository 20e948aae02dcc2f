"""Run a repository's linter in a sandbox session and read its findings.

:func:`detect_linter` picks one linter from the repository's files: ruff where it is
configured, flake8 for other Python code, eslint for JavaScript/TypeScript. The
sandbox images carry flake8 only, so:

* ruff, when the image lacks it (the python image does), falls back to flake8 with
  the repository's ruff line length, and the run's note says so;
* eslint, which must come from the repository's own ``node_modules``, gives a
  :class:`LintRun` with ``available=False`` and a note saying what is missing.

Findings are written to a file under the container's /tmp (flake8's
``--output-file``, eslint's JSON ``--output-file``) and read back in the session,
as test reports are (see :mod:`sandbox.testrun`); output still streams live.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sandbox.base import WORKSPACE, OutputCallback, RunResult, Session
from sandbox.errors import SandboxError
from sandbox.junit import ReportUnreadable
from sandbox.testrun import (
    REPORT_DIR,
    RepoFiles,
    Requirement,
    check_requirements,
    prepare_reports,
    read_container_files,
)

OutputFormat = Literal["text", "eslint-json"]
MAX_FINDINGS = 5000
# flake8's and ruff's concise format: path:line:col: CODE message
_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+[0-9]+) (?P<msg>.*)$"
)
_FLAKE8_FORMAT = "%(path)s:%(row)d:%(col)d: %(code)s %(text)s"
_EXCLUDE = ".venv,venv,node_modules,.appliance,build,dist"
_ESLINT_CONFIGS = (
    ".eslintrc",
    ".eslintrc.js",
    ".eslintrc.cjs",
    ".eslintrc.json",
    ".eslintrc.yml",
    ".eslintrc.yaml",
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
)


class NoLinter(SandboxError):
    """The repository has no code a known linter checks."""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


@dataclass(frozen=True)
class LintCommand:
    """A lint command. Its findings are in ``report`` (a container file) when set, else
    on stdout; ``fallback`` runs instead when ``requires`` is not met."""

    linter: str
    argv: tuple[str, ...]
    image_kind: str
    output: OutputFormat = "text"
    report: str | None = None
    requires: tuple[Requirement, ...] = ()
    fallback: LintCommand | None = None
    note: str = ""


@dataclass(frozen=True)
class LintRun:
    """The outcome of :func:`run_linter`. With ``available=False`` nothing ran and
    ``result`` is the check that found the linter missing."""

    command: LintCommand
    findings: tuple[Finding, ...]
    result: RunResult
    available: bool = True
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.available and not self.findings and self.result.ok


def detect_linter(worktree: Path) -> LintCommand | None:
    """The repository's linter: ruff if configured (flake8 as its fallback), flake8 if
    configured, eslint if configured or a dependency, flake8 for any Python code."""
    repo = RepoFiles(worktree)
    pyproject = repo.text("pyproject.toml") or ""
    if repo.has_file("ruff.toml") or repo.has_file(".ruff.toml") or "[tool.ruff" in pyproject:
        return _ruff(flake8_fallback=_flake8(_ruff_line_length(repo)))
    flake8_config = repo.has_file(".flake8") or any(
        "[flake8]" in (repo.text(name) or "") for name in ("setup.cfg", "tox.ini")
    )
    if flake8_config:
        return _flake8()
    if any(repo.has_file(name) for name in _ESLINT_CONFIGS) or _eslint_dependency(repo):
        return _eslint()
    if any(f.endswith(".py") for f in repo.files()):
        return _flake8()
    return None


def _flake8(max_line_length: int | None = None) -> LintCommand:
    extra = (f"--max-line-length={max_line_length}",) if max_line_length else ()
    report = f"{REPORT_DIR}/flake8.txt"
    return LintCommand(
        linter="flake8",
        argv=(
            "python3",
            "-m",
            "flake8",
            f"--format={_FLAKE8_FORMAT}",
            f"--output-file={report}",
            "--tee",
            f"--extend-exclude={_EXCLUDE}",
            *extra,
            ".",
        ),
        image_kind="python",
        report=report,
        requires=(
            Requirement(
                "python3 -m flake8 --version",
                "flake8 is not installed in this sandbox image (the python image has it)",
            ),
        ),
    )


def _ruff(flake8_fallback: LintCommand) -> LintCommand:
    return LintCommand(
        linter="ruff",
        argv=("ruff", "check", "--no-cache", "--output-format=concise", "."),
        image_kind="python",
        requires=(
            Requirement(
                "command -v ruff",
                "the repository configures ruff, but ruff is not installed in this sandbox "
                "image; falling back to flake8",
            ),
        ),
        fallback=flake8_fallback,
    )


def _eslint() -> LintCommand:
    report = f"{REPORT_DIR}/eslint.json"
    return LintCommand(
        linter="eslint",
        argv=("node_modules/.bin/eslint", "--format", "json", "--output-file", report, "."),
        image_kind="node",
        output="eslint-json",
        report=report,
        requires=(
            Requirement(
                "command -v node",
                "eslint is not available: node is not installed in this sandbox image "
                "(use the node image)",
            ),
            Requirement(
                "test -x node_modules/.bin/eslint",
                "eslint is not available: it is not installed in the repository "
                "(node_modules/.bin/eslint is missing; install its dependencies offline "
                "first, npm ci from the npm cache)",
            ),
        ),
    )


def _eslint_dependency(repo: RepoFiles) -> bool:
    package = repo.json_file("package.json") or {}
    sections = [package.get(s) for s in ("dependencies", "devDependencies")]
    return any(isinstance(s, dict) and "eslint" in s for s in sections)


def _ruff_line_length(repo: RepoFiles) -> int | None:
    """ruff's configured line length, for the flake8 that runs in its place."""
    for name, prefix in (
        ("ruff.toml", ()),
        (".ruff.toml", ()),
        ("pyproject.toml", ("tool", "ruff")),
    ):
        text = repo.text(name)
        if text is None:
            continue
        try:
            table: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        for key in prefix:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        value = table.get("line-length") if isinstance(table, dict) else None
        if isinstance(value, int) and 40 <= value <= 1000:
            return value
    return None


def run_linter(
    session: Session,
    worktree: Path,
    *,
    command: LintCommand | None = None,
    on_output: OutputCallback | None = None,
    timeout: float | None = None,
) -> LintRun:
    """Run the repository's linter (or ``command``) in ``session``; output streams to
    ``on_output``. A missing linter is a :class:`LintRun` with ``available=False``;
    raises :class:`NoLinter` when there is nothing to lint."""
    lint = command or detect_linter(worktree)
    if lint is None:
        raise NoLinter(f"nothing to lint in {worktree.name}: no Python code and no eslint set-up")
    notes: list[str] = []
    missing = check_requirements(session, lint.requires)
    if missing is not None and lint.fallback is not None:
        notes.append(missing[1])
        lint = lint.fallback
        missing = check_requirements(session, lint.requires)
    if missing is not None:
        probe, why = missing
        return LintRun(lint, (), probe, available=False, note="; ".join([*notes, why]))
    prepare_reports(session)
    result = session.run(list(lint.argv), timeout=timeout, on_output=on_output)
    try:
        findings = _findings(session, lint, result)
    except ReportUnreadable as exc:
        notes.append(f"the {lint.linter} findings could not be read: {exc.message}")
        findings = []
    if len(findings) > MAX_FINDINGS:
        notes.append(f"{len(findings):,} findings; only the first {MAX_FINDINGS:,} are kept")
        findings = findings[:MAX_FINDINGS]
    if result.timed_out:
        notes.append(f"{lint.linter} timed out after {result.duration_s:.0f} s")
    elif not findings and result.exit_code != 0:
        notes.append(f"{lint.linter} failed (exit code {result.exit_code}) without findings")
    return LintRun(
        lint, tuple(findings), result, note="; ".join(n for n in [lint.note, *notes] if n)
    )


def _findings(session: Session, lint: LintCommand, result: RunResult) -> list[Finding]:
    if lint.report is None:
        return parse_lint_lines(result.stdout)
    files = read_container_files(session, [shlex.quote(lint.report)])
    if not files:  # the linter crashed before writing; the exit code tells
        return []
    data = files[0][1]
    if lint.output == "eslint-json":
        return parse_eslint_json(data)
    return parse_lint_lines(data.decode("utf-8", errors="replace"))


def _relative(path: str) -> str:
    for prefix in (WORKSPACE + "/", "./"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return path


def parse_lint_lines(text: str) -> list[Finding]:
    """Findings from ``path:line:col: CODE message`` lines (flake8, ruff concise);
    other lines are ignored."""
    findings = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            findings.append(
                Finding(
                    path=_relative(match["path"]),
                    line=int(match["line"]),
                    col=int(match["col"]),
                    code=match["code"],
                    message=match["msg"].strip(),
                )
            )
    return findings


def parse_eslint_json(data: bytes | str) -> list[Finding]:
    """Findings from eslint's ``--format json`` output."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ReportUnreadable(f"eslint's report is not valid JSON: {exc}") from None
    if not isinstance(document, list):
        raise ReportUnreadable("eslint's report is not a list of files")
    findings = []
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("messages"), list):
            continue
        path = _relative(str(entry.get("filePath") or ""))
        for message in entry["messages"]:
            if not isinstance(message, dict):
                continue
            code = message.get("ruleId") or ("fatal" if message.get("fatal") else "eslint")
            findings.append(
                Finding(
                    path=path,
                    line=_int(message.get("line")),
                    col=_int(message.get("column")),
                    code=str(code),
                    message=str(message.get("message") or "").strip(),
                )
            )
    return findings


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


__all__ = [
    "Finding",
    "LintCommand",
    "LintRun",
    "NoLinter",
    "detect_linter",
    "parse_eslint_json",
    "parse_lint_lines",
    "run_linter",
]
