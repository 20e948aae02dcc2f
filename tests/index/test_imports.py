"""Import specifiers resolved to repository files, and the ones that must resolve to none."""

from __future__ import annotations

from appliance.index.imports import ImportResolver

PATHS = [
    "backend/app/__init__.py",
    "backend/app/core/config.py",
    "backend/app/api/routes.py",
    "pkg/__init__.py",
    "pkg/mod.py",
    "pkg/sub/__init__.py",
    "http/server.go",
    "internal/http/handler.go",
    "web/lib/date.js",
    "web/src/ui/button.tsx",
    "web/src/ui/page.tsx",
    "src/main/java/com/acme/Util.java",
    "src/test/java/com/acme/Util.java",
]
resolver = ImportResolver(PATHS)


def test_python_finds_a_project_rooted_below_the_repository_root() -> None:
    assert resolver.resolve("backend/app/api/routes.py", "python", "app.core.config") == [
        "backend/app/core/config.py"
    ]


def test_python_from_package_import_name_falls_back_to_the_module() -> None:
    assert resolver.resolve("pkg/sub/__init__.py", "python", "pkg.mod.helper") == ["pkg/mod.py"]
    assert resolver.resolve("pkg/sub/__init__.py", "python", "..mod") == ["pkg/mod.py"]


def test_python_relative_import_above_the_root_and_stdlib_resolve_to_nothing() -> None:
    assert resolver.resolve("pkg/mod.py", "python", "...nowhere") == []
    assert resolver.resolve("pkg/mod.py", "python", "os.path") == []


def test_a_file_never_imports_itself() -> None:
    assert resolver.resolve("pkg/__init__.py", "python", "pkg") == []
    assert resolver.resolve("pkg/mod.py", "python", "pkg") == ["pkg/__init__.py"]


def test_javascript_bare_packages_and_paths_outside_the_repository_resolve_to_nothing() -> None:
    assert resolver.resolve("web/lib/date.js", "javascript", "react") == []
    assert resolver.resolve("web/lib/date.js", "javascript", "../../../etc/passwd") == []
    assert resolver.resolve("web/src/ui/page.tsx", "tsx", "./button") == ["web/src/ui/button.tsx"]
    assert resolver.resolve("web/src/ui/page.tsx", "tsx", "../../lib/date") == ["web/lib/date.js"]


def test_go_standard_library_does_not_land_on_a_same_named_directory() -> None:
    assert resolver.resolve("main.go", "go", "net/http") == []
    # two directories end in "http": a one-component match is ambiguous
    assert resolver.resolve("main.go", "go", "github.com/acme/http") == []
    assert resolver.resolve("main.go", "go", "github.com/acme/svc/internal/http") == [
        "internal/http/handler.go"
    ]


def test_java_class_in_two_source_roots_resolves_to_both() -> None:
    assert resolver.resolve("X.java", "java", "com.acme.Util") == [
        "src/main/java/com/acme/Util.java",
        "src/test/java/com/acme/Util.java",
    ]
    assert resolver.resolve("X.java", "java", "java.util.List") == []
