"""Which files the index understands, and the tree-sitter parser for each language.

Three kinds of path come out of a repository:

- a path whose extension names a grammar we ship (``language_for`` answers its ``Language``):
  parsed for symbols, chunked along them, searched;
- a *text* path (``is_text``): documentation, configuration, code in a language we have no
  grammar for. It is searched (BM25, embeddings) and chunked by blank lines, never parsed;
- anything else, which the catalog decides on by looking at the blob's first bytes.

Grammars come from the per-language wheels (``tree-sitter-python`` …), which carry compiled
grammars: nothing is downloaded at run time. ``tree_sitter.Language`` objects are immutable
and built once per process; a ``tree_sitter.Parser`` holds parse state and is not safe to
share between threads, so ``parser_for`` keeps one per language per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Final

import tree_sitter
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript

from appliance.errors import InvalidInput
from appliance.index.types import Language

LANGUAGES: Final[tuple[Language, ...]] = (
    "python",
    "javascript",
    "typescript",
    "tsx",
    "go",
    "java",
)

EXTENSIONS: Final[dict[str, Language]] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
}

# Searchable without a grammar: docs, config, build files and code in other languages.
TEXT_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {
        # documentation
        ".md", ".markdown", ".rst", ".txt", ".adoc", ".asciidoc", ".org", ".tex",
        # configuration and data
        ".toml", ".yaml", ".yml", ".json", ".jsonc", ".json5", ".cfg", ".ini", ".conf",
        ".properties", ".env", ".xml", ".csv", ".tsv", ".graphql", ".gql", ".proto",
        ".tf", ".tfvars", ".hcl", ".nix", ".bzl", ".bazel", ".cmake", ".mk", ".gradle",
        ".j2", ".jinja", ".jinja2", ".tmpl", ".tpl", ".mustache", ".hbs",
        # shells and scripts
        ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".awk", ".sed",
        # other languages
        ".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx", ".m", ".mm",
        ".rs", ".rb", ".php", ".cs", ".fs", ".vb", ".kt", ".kts", ".swift", ".scala",
        ".sc", ".groovy", ".clj", ".cljs", ".edn", ".ex", ".exs", ".erl", ".hrl", ".hs",
        ".ml", ".mli", ".lua", ".pl", ".pm", ".r", ".jl", ".dart", ".zig", ".nim", ".v",
        ".sv", ".vhd", ".vue", ".svelte", ".astro", ".elm", ".sol", ".pyx", ".pxd",
        # web
        ".html", ".htm", ".css", ".scss", ".sass", ".less", ".sql",
    }
)  # fmt: skip

# Well-known extensionless (or dot-) files that are text.
TEXT_NAMES: Final[frozenset[str]] = frozenset(
    {
        "makefile", "gnumakefile", "dockerfile", "containerfile", "jenkinsfile", "vagrantfile",
        "gemfile", "rakefile", "procfile", "brewfile", "justfile", "readme", "license",
        "licence", "copying", "notice", "authors", "contributors", "changelog", "changes",
        "codeowners", ".gitignore", ".gitattributes", ".gitmodules", ".dockerignore",
        ".editorconfig", ".npmrc", ".nvmrc", ".python-version", ".env.example",
    }
)  # fmt: skip

_GRAMMARS: Final[dict[Language, Callable[[], object]]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "go": tree_sitter_go.language,
    "java": tree_sitter_java.language,
}


def extension(path: str) -> str:
    """The lower-cased last extension of ``path`` with its dot (``".py"``), or ``""``."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def language_for(path: str) -> Language | None:
    """The grammar that parses ``path``, by extension; None when no grammar covers it."""
    return EXTENSIONS.get(extension(path))


def is_text(path: str) -> bool:
    """Whether ``path`` is searchable text that no grammar covers (docs, config, C, Rust…)."""
    if extension(path) in TEXT_EXTENSIONS:
        return True
    name = path.rpartition("/")[2].lower()
    return name in TEXT_NAMES or name.partition(".")[0] in TEXT_NAMES


@cache
def grammar(language: Language) -> tree_sitter.Language:
    """The compiled grammar for ``language`` (built once per process, shared by threads)."""
    try:
        factory = _GRAMMARS[language]
    except KeyError:
        known = ", ".join(LANGUAGES)
        raise InvalidInput(
            f"no grammar for language {language!r}; use one of: {known}", field="language"
        ) from None
    return tree_sitter.Language(factory())


_local = threading.local()


def parser_for(language: Language) -> tree_sitter.Parser:
    """A parser for ``language`` owned by the calling thread (parsers are not thread-safe)."""
    parsers: dict[Language, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = tree_sitter.Parser(grammar(language))
    return parser
