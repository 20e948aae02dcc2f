"""What kind of project a worktree holds, and the commands that test, lint and build it.

:func:`detect_project` looks only at files: extensions (for the languages, vendored
directories skipped), manifests and lock files (package managers), configuration files
(test runner, linters). It runs nothing from the repository. Every file it reads goes
through :func:`~appliance.tools.paths.resolve_inside` and a size cap, and is parsed with the
standard library (``tomllib``, ``json``, ``configparser``); a file that is missing, too big,
a symlink out of the worktree or broken is skipped with a line in ``notes``, never an
exception.

The commands are run later from the worktree root inside the sandbox, so they are plain
and offline: ``python -m pytest -q``, ``npm test``, ``go test ./...``, ``mvn -q test``.
"""

from __future__ import annotations

import configparser
import json
import os
import stat
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import ApplianceError, PathRefused
from appliance.tools.files import VENDORED_DIRS
from appliance.tools.paths import resolve_inside
from appliance.tools.registry import Tool, ToolContext

MAX_CONFIG_BYTES = 512 * 1024
MAX_FILES_COUNTED = 50_000

_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".rs": "rust",
    ".rb": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".swift": "swift",
    ".sh": "shell",
}
_JS_RUNNERS = ("vitest", "jest", "mocha", "ava", "jasmine")
_NO_TEST_SCRIPT = "no test specified"


class Runner(BaseModel):
    """One way to run the project's tests."""

    framework: str = Field(description="pytest, jest, vitest, mocha, go, maven, gradle…")
    command: str = Field(description="Shell command, run from the worktree root.")


class Linter(BaseModel):
    name: str
    command: str


class ProjectInfo(BaseModel):
    """What :func:`detect_project` found; lists are in order of importance."""

    model_config = ConfigDict(frozen=True)

    languages: dict[str, int] = Field(
        default_factory=dict, description="Language → number of files, most files first."
    )
    package_managers: list[str] = Field(default_factory=list)
    tests: list[Runner] = Field(default_factory=list)
    linters: list[Linter] = Field(default_factory=list)
    build_commands: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def test_command(self) -> str | None:
        """The command of the first test setup, if any."""
        return self.tests[0].command if self.tests else None


class _Reader:
    """Reads the worktree's config files safely and collects notes about the ones it can't."""

    def __init__(self, worktree: Path) -> None:
        self.worktree = worktree
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def exists(self, name: str) -> bool:
        try:
            resolve_inside(self.worktree, name)
        except PathRefused as exc:
            self.note(f"{name}: skipped ({exc.message})")
            return False
        except ApplianceError:
            return False
        return True

    def text(self, name: str) -> str | None:
        if not self.exists(name):
            return None
        try:
            path = resolve_inside(self.worktree, name, allow_dir=False)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except ApplianceError as exc:
            self.note(f"{name}: skipped ({exc.message})")
            return None
        except OSError as exc:
            self.note(f"{name}: cannot be read ({exc.strerror})")
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_BYTES:
                self.note(f"{name}: skipped ({info.st_size:,} bytes is too big to parse)")
                return None
            return handle.read(MAX_CONFIG_BYTES).decode("utf-8", "replace")

    def toml(self, name: str) -> dict[str, Any]:
        text = self.text(name)
        if text is None:
            return {}
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.note(f"{name}: not valid TOML ({exc}); ignored")
            return {}

    def json(self, name: str) -> dict[str, Any]:
        text = self.text(name)
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.note(f"{name}: not valid JSON ({exc}); ignored")
            return {}
        if not isinstance(data, dict):
            self.note(f"{name}: not a JSON object; ignored")
            return {}
        return data

    def ini_sections(self, name: str) -> set[str]:
        text = self.text(name)
        if text is None:
            return set()
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text, source=name)
        except configparser.Error as exc:
            self.note(f"{name}: not valid INI ({exc.message.splitlines()[0]}); ignored")
            return set()
        return set(parser.sections())


def detect_project(worktree: Path) -> ProjectInfo:
    """Languages, package managers, test/lint/build commands of the project in ``worktree``."""
    root = Path(os.path.realpath(worktree))
    reader = _Reader(root)
    languages, counted_all = _count_languages(root)
    found = _Found()
    _python(reader, found)
    _node(reader, found)
    _go(reader, found)
    _jvm(reader, found)
    if not counted_all:
        reader.note(f"only the first {MAX_FILES_COUNTED:,} files were counted for the languages")
    return ProjectInfo(
        languages=languages,
        package_managers=found.package_managers,
        tests=found.tests,
        linters=found.linters,
        build_commands=found.build_commands,
        notes=reader.notes,
    )


class _Found:
    def __init__(self) -> None:
        self.package_managers: list[str] = []
        self.tests: list[Runner] = []
        self.linters: list[Linter] = []
        self.build_commands: list[str] = []

    def linter(self, name: str, command: str) -> None:
        if all(linter.name != name for linter in self.linters):
            self.linters.append(Linter(name=name, command=command))


def _count_languages(root: Path) -> tuple[dict[str, int], bool]:
    counts: Counter[str] = Counter()
    seen = 0
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git" and entry.name not in VENDORED_DIRS:
                    stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                seen += 1
                if seen > MAX_FILES_COUNTED:
                    return dict(counts.most_common()), False
                language = _LANGUAGES.get(os.path.splitext(entry.name)[1].lower())
                if language:
                    counts[language] += 1
    return dict(counts.most_common()), True


def _python(reader: _Reader, found: _Found) -> None:
    pyproject = reader.toml("pyproject.toml")
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    setup_cfg = reader.ini_sections("setup.cfg")
    tox_ini = reader.ini_sections("tox.ini")
    requirement_files = [
        name
        for name in _root_names(reader)
        if name.startswith("requirements") and name.endswith(".txt")
    ]
    requirements = "\n".join(reader.text(name) or "" for name in sorted(requirement_files))
    is_python = (
        bool(pyproject) or bool(requirement_files) or reader.exists("setup.py") or bool(setup_cfg)
    )
    if not is_python:
        return
    if reader.exists("uv.lock"):
        found.package_managers.append("uv")
    elif reader.exists("poetry.lock") or "poetry" in tool:
        found.package_managers.append("poetry")
    elif reader.exists("pdm.lock") or "pdm" in tool:
        found.package_managers.append("pdm")
    elif reader.exists("Pipfile"):
        found.package_managers.append("pipenv")
    else:
        found.package_managers.append("pip")

    pytest_configured = (
        "pytest" in tool
        or reader.exists("pytest.ini")
        or reader.exists("conftest.py")
        or "tool:pytest" in setup_cfg
        or "pytest" in tox_ini
        or "pytest" in requirements
        or _mentions(pyproject, "pytest")
    )
    if pytest_configured or reader.exists("tests") or reader.exists("test"):
        found.tests.append(Runner(framework="pytest", command="python -m pytest -q"))

    if "ruff" in tool or reader.exists("ruff.toml") or reader.exists(".ruff.toml"):
        found.linter("ruff", "python -m ruff check .")
    if reader.exists(".flake8") or "flake8" in setup_cfg or "flake8" in tox_ini:
        found.linter("flake8", "python -m flake8")
    mypy_files = reader.exists("mypy.ini") or reader.exists(".mypy.ini")
    if "mypy" in tool or "mypy" in setup_cfg or mypy_files:
        found.linter("mypy", "python -m mypy .")
    if "build-system" in pyproject:
        found.build_commands.append("python -m build")


def _node(reader: _Reader, found: _Found) -> None:
    if not reader.exists("package.json"):
        return
    package = reader.json("package.json")
    if reader.exists("pnpm-lock.yaml"):
        manager = "pnpm"
    elif reader.exists("yarn.lock"):
        manager = "yarn"
    else:
        manager = "npm"
    found.package_managers.append(manager)
    scripts = _dict(package.get("scripts"))
    deps = {**_dict(package.get("dependencies")), **_dict(package.get("devDependencies"))}
    test_script = scripts.get("test")
    if isinstance(test_script, str) and _NO_TEST_SCRIPT not in test_script:
        runner = next((name for name in _JS_RUNNERS if name in test_script), None)
        runner = runner or next((name for name in _JS_RUNNERS if name in deps), None)
        if runner is None and "node --test" in test_script:
            runner = "node:test"
        command = "npm test" if manager == "npm" else f"{manager} test"
        found.tests.append(Runner(framework=runner or "npm", command=command))
    elif test_script is not None:
        reader.note("package.json: the test script is npm's placeholder; no tests run")
    run = "npm run" if manager == "npm" else manager
    names = _root_names(reader)
    if "eslintConfig" in package or any(
        name.startswith((".eslintrc", "eslint.config.")) for name in names
    ):
        found.linter("eslint", "npx eslint .")
    if "prettier" in package or any(
        name.startswith((".prettierrc", "prettier.config.")) for name in names
    ):
        found.linter("prettier", "npx prettier --check .")
    if "lint" in scripts:
        found.linter("lint script", f"{run} lint")
    if "build" in scripts:
        found.build_commands.append(f"{run} build")


def _go(reader: _Reader, found: _Found) -> None:
    if not reader.exists("go.mod"):
        return
    found.package_managers.append("go modules")
    found.tests.append(Runner(framework="go", command="go test ./..."))
    found.build_commands.append("go build ./...")
    names = _root_names(reader)
    if any(name.startswith(".golangci.") for name in names):
        found.linter("golangci-lint", "golangci-lint run")


def _jvm(reader: _Reader, found: _Found) -> None:
    if reader.exists("pom.xml"):
        mvn = "./mvnw" if reader.exists("mvnw") else "mvn"
        found.package_managers.append("maven")
        found.tests.append(Runner(framework="maven", command=f"{mvn} -q test"))
        found.build_commands.append(f"{mvn} -q -DskipTests package")
    gradle_files = ("build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts")
    if any(reader.exists(name) for name in gradle_files):
        gradle = "./gradlew" if reader.exists("gradlew") else "gradle"
        found.package_managers.append("gradle")
        found.tests.append(Runner(framework="gradle", command=f"{gradle} test"))
        found.build_commands.append(f"{gradle} build -x test")


def _root_names(reader: _Reader) -> list[str]:
    try:
        return os.listdir(reader.worktree)
    except OSError:
        return []


def _mentions(value: object, word: str) -> bool:
    """Whether ``word`` starts any string in a parsed TOML/JSON value (a dependency list)."""
    if isinstance(value, str):
        return value.startswith(word)
    if isinstance(value, dict):
        return any(_mentions(key, word) or _mentions(item, word) for key, item in value.items())
    if isinstance(value, list):
        return any(_mentions(item, word) for item in value)
    return False


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# the tool ----------------------------------------------------------------------------------


class DetectProjectArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def describe(info: ProjectInfo) -> str:
    """``info`` as the few lines the model reads."""
    languages = ", ".join(f"{name} ({count} files)" for name, count in info.languages.items())
    tests = "; ".join(f"{test.framework}: {test.command}" for test in info.tests)
    linters = "; ".join(f"{linter.name}: {linter.command}" for linter in info.linters)
    lines = [
        f"languages: {languages or 'none recognised'}",
        f"package managers: {', '.join(info.package_managers) or 'none found'}",
        f"tests: {tests or 'no test setup found'}",
        f"linters: {linters or 'none configured'}",
        f"build: {'; '.join(info.build_commands) or 'no build step found'}",
    ]
    lines += [f"note: {note}" for note in info.notes]
    return "\n".join(lines)


def _detect_tool(ctx: ToolContext, args: DetectProjectArgs) -> str:
    return describe(detect_project(ctx.worktree))


DETECT_PROJECT: Tool[DetectProjectArgs] = Tool(
    name="detect_project",
    description=(
        "Languages, package managers and the exact commands that run the tests, linters "
        "and build of this repository."
    ),
    args=DetectProjectArgs,
    fn=_detect_tool,
)

#: For ``ToolRegistry([*READ_TOOLS, *PROJECT_TOOLS])``.
PROJECT_TOOLS: tuple[Tool[Any], ...] = (DETECT_PROJECT,)
