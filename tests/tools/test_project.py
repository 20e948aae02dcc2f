"""detect_project on small realistic Python, Node, Go and Java projects, and on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.tools.project import PROJECT_TOOLS, Linter, Runner, detect_project
from appliance.tools.registry import ToolContext, ToolRegistry


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "shop"
dependencies = ["httpx"]

[project.optional-dependencies]
dev = ["pytest>=8", "ruff"]

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
testpaths = ["tests"]
"""


def test_python_project_with_pytest_and_ruff(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "uv.lock": "version = 1\n",
            "src/shop/__init__.py": "",
            "src/shop/cart.py": "def total(): ...\n",
            "tests/test_cart.py": "def test_total(): ...\n",
            "scripts/deploy.sh": "echo hi\n",
            ".venv/lib/site.py": "",
            ".venv/lib/other.py": "",
            ".venv/lib/more.py": "",
            ".venv/lib/evenmore.py": "",
        },
    )
    info = detect_project(root)
    assert info.languages == {"python": 3, "shell": 1}  # .venv not counted
    assert info.package_managers == ["uv"]
    assert info.tests == [Runner(framework="pytest", command="python -m pytest -q")]
    assert info.test_command == "python -m pytest -q"
    assert info.linters == [Linter(name="ruff", command="python -m ruff check .")]
    assert info.build_commands == ["python -m build"]
    assert info.notes == []


def test_requirements_only_python_project_uses_pip_and_finds_flake8(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "requirements.txt": "flask\n",
            "requirements-dev.txt": "pytest\nflake8\n",
            "setup.cfg": "[flake8]\nmax-line-length = 100\n\n[mypy]\nstrict = True\n",
            "app.py": "import flask\n",
        },
    )
    info = detect_project(root)
    assert info.package_managers == ["pip"]
    assert info.test_command == "python -m pytest -q"
    assert [linter.name for linter in info.linters] == ["flake8", "mypy"]


def test_node_project_with_jest_and_package_lock(tmp_path: Path) -> None:
    package = {
        "name": "web",
        "scripts": {"test": "jest --ci", "build": "tsc -p .", "lint": "eslint src"},
        "devDependencies": {"jest": "^29.0.0", "typescript": "^5.0.0"},
    }
    root = write(
        tmp_path,
        {
            "package.json": json.dumps(package),
            "package-lock.json": "{}",
            ".eslintrc.json": "{}",
            "src/index.ts": "export {}\n",
            "src/app.tsx": "export {}\n",
            "src/util.js": "module.exports = {}\n",
            "node_modules/jest/index.js": "",
            "node_modules/jest/more.js": "",
            "node_modules/jest/evenmore.js": "",
        },
    )
    info = detect_project(root)
    assert info.languages == {"typescript": 2, "javascript": 1}
    assert info.package_managers == ["npm"]
    assert info.tests == [Runner(framework="jest", command="npm test")]
    assert [linter.name for linter in info.linters] == ["eslint", "lint script"]
    assert info.build_commands == ["npm run build"]


def test_node_runner_and_manager_come_from_script_deps_and_lock_file(tmp_path: Path) -> None:
    package = {"scripts": {"test": "vitest run"}, "devDependencies": {"vitest": "^1"}}
    root = write(tmp_path, {"package.json": json.dumps(package), "pnpm-lock.yaml": ""})
    assert detect_project(root).tests == [Runner(framework="vitest", command="pnpm test")]
    mocha = {"scripts": {"test": "nyc npm run unit"}, "devDependencies": {"mocha": "10"}}
    write(tmp_path, {"package.json": json.dumps(mocha), "yarn.lock": ""})
    (tmp_path / "pnpm-lock.yaml").unlink()
    assert detect_project(tmp_path).tests == [Runner(framework="mocha", command="yarn test")]


def test_npm_placeholder_test_script_is_not_a_test_setup(tmp_path: Path) -> None:
    package = {"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}
    info = detect_project(write(tmp_path, {"package.json": json.dumps(package)}))
    assert info.tests == []
    assert any("placeholder" in note for note in info.notes)


def test_go_project(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "go.mod": "module example.com/svc\n\ngo 1.22\n",
            "go.sum": "",
            "main.go": "package main\n",
            "internal/api/api.go": "package api\n",
            "internal/api/api_test.go": "package api\n",
            ".golangci.yml": "linters:\n  enable: [govet]\n",
        },
    )
    info = detect_project(root)
    assert info.languages == {"go": 3}
    assert info.package_managers == ["go modules"]
    assert info.tests == [Runner(framework="go", command="go test ./...")]
    assert info.linters == [Linter(name="golangci-lint", command="golangci-lint run")]
    assert info.build_commands == ["go build ./..."]


def test_maven_and_gradle_projects(tmp_path: Path) -> None:
    maven = write(
        tmp_path / "maven",
        {
            "pom.xml": "<project><modelVersion>4.0.0</modelVersion></project>\n",
            "src/main/java/com/acme/App.java": "class App {}\n",
            "src/test/java/com/acme/AppTest.java": "class AppTest {}\n",
        },
    )
    info = detect_project(maven)
    assert info.languages == {"java": 2}
    assert info.package_managers == ["maven"]
    assert info.test_command == "mvn -q test"
    assert info.build_commands == ["mvn -q -DskipTests package"]
    gradle = write(
        tmp_path / "gradle", {"build.gradle.kts": "plugins {}\n", "gradlew": "#!/bin/sh\n"}
    )
    assert detect_project(gradle).tests == [Runner(framework="gradle", command="./gradlew test")]


def test_broken_and_hostile_config_files_become_notes(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"scripts": {"test": "jest"}}')
    root = write(
        tmp_path / "wt",
        {"pyproject.toml": "[project\nname = 'x'", "setup.cfg": "no section header\n"},
    )
    (root / "package.json").symlink_to(outside)
    info = detect_project(root)
    assert any(n.startswith("pyproject.toml: not valid TOML") for n in info.notes)
    assert any(n.startswith("setup.cfg: not valid INI") for n in info.notes)
    assert any(
        n.startswith("package.json: skipped") and "leaves the worktree" in n for n in info.notes
    )
    assert info.tests == []  # the outside package.json was not read


def test_an_oversized_config_is_skipped(tmp_path: Path) -> None:
    root = write(tmp_path, {"package.json": '{"scripts": {"test": "jest"}, "x": "' + "a" * 600_000})
    info = detect_project(root)
    assert any("too big" in note for note in info.notes)


def test_detect_project_tool_output(tmp_path: Path) -> None:
    root = write(tmp_path, {"pyproject.toml": PYPROJECT, "shop.py": ""})
    result = ToolRegistry(PROJECT_TOOLS).call("detect_project", {}, ToolContext(worktree=root))
    assert result.ok
    assert result.output.splitlines() == [
        "languages: python (1 files)",
        "package managers: pip",
        "tests: pytest: python -m pytest -q",
        "linters: ruff: python -m ruff check .",
        "build: python -m build",
    ]
