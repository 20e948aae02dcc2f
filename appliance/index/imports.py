"""Resolve import specifiers, as the parser wrote them, to files of the repository.

The dependency graph (:mod:`appliance.index.graph`) draws an edge from a file to every
repository file it imports; imports of anything outside the repository (the standard
library, third-party packages) resolve to nothing and draw no edge. Resolution is by path
lookup only — no file is read, no package manager or ``go.mod`` is consulted — so it is
cheap, deterministic and a pure function of the set of catalogued paths:

- **Python** ``a.b.c`` → ``a/b/c.py``, ``a/b/c.pyi`` or ``a/b/c/__init__.py``, tried under
  the repository root, then ``src/``, then each directory above the importing file
  (shallowest first: a project that lives in ``backend/``). Relative ``.x`` / ``..x`` start
  from the importing file's package; ``.`` alone is that package's ``__init__.py``. When
  ``a.b.c`` names nothing, ``a.b`` is tried (``from a.b import c`` written in full).
- **JavaScript / TypeScript** ``./util`` / ``../lib/x`` → the path itself when it exists,
  else with an extension (``.ts``, ``.tsx``, ``.js``, …), else ``index.*`` inside it;
  ``./x.js`` also finds ``x.ts`` (TypeScript's ESM style). ``@/x`` and ``~/x`` (the usual
  bundler aliases) are tried under ``src/`` and the root. Bare package names resolve to
  nothing.
- **Go** an import path names a package, i.e. a directory: the directories holding ``.go``
  files that share the most trailing components with the import path win
  (``example.com/shop/internal/store`` → ``go/internal/store``: the module root need not be
  the repository root), and all their non-test ``.go`` files are targets. A match on the
  last component alone counts only when it is unique and the import path starts with a
  domain (``github.com/...``), so ``net/http`` does not land on a repository's ``http/``.
- **Java** ``com.x.Y`` → every ``…/com/x/Y.java``; ``com.x.*`` → the ``.java`` files of
  every ``…/com/x/`` directory; ``static com.x.Y.m`` and ``com.x.Y.Inner`` → ``…/com/x/Y.java``.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable

from appliance.index.types import Language

_PY_SUFFIXES = (".py", ".pyi", "/__init__.py")
_JS_EXTENSIONS: tuple[str, ...] = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs")
_JS_EXTENSIONS += (".mts", ".cts", ".vue", ".svelte", ".json")
# TypeScript's ESM style imports "./x.js" meaning the source "./x.ts"
_JS_RUNTIME_TO_SOURCE = {
    ".js": (".ts", ".tsx"),
    ".jsx": (".tsx",),
    ".mjs": (".mts",),
    ".cjs": (".cts",),
}


class ImportResolver:
    """Lookup tables over one set of repository paths; build a new one when paths change."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = frozenset(paths)
        go_dirs: dict[str, list[str]] = defaultdict(list)
        java_by_name: dict[str, list[str]] = defaultdict(list)
        java_dirs: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self._paths):
            directory, name = posixpath.split(path)
            if name.endswith(".go") and not name.endswith("_test.go"):
                go_dirs[directory].append(path)
            elif name.endswith(".java"):
                java_by_name[name].append(path)
                java_dirs[directory].append(path)
        self._go_dirs = dict(go_dirs)
        self._go_dirs_by_tail: dict[str, list[str]] = defaultdict(list)
        for directory in sorted(go_dirs):
            self._go_dirs_by_tail[posixpath.basename(directory)].append(directory)
        self._java_by_name = dict(java_by_name)
        self._java_dirs_by_tail: dict[str, list[str]] = defaultdict(list)
        for directory in sorted(java_dirs):
            self._java_dirs_by_tail[posixpath.basename(directory)].append(directory)
        self._java_dirs = dict(java_dirs)
        self._cache: dict[tuple[str, str, str], tuple[str, ...]] = {}

    @property
    def paths(self) -> frozenset[str]:
        return self._paths

    def resolve(self, importer: str, language: Language, spec: str) -> list[str]:
        """The repository files ``spec`` (imported by ``importer``) names, sorted; ``[]`` when
        it names none. The importer itself is never among them."""
        spec = spec.strip().strip("'\"`")
        if not spec:
            return []
        # Only the importer's directory matters, and files of one directory import alike.
        key = (language, posixpath.dirname(importer), spec)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(self._resolve(importer, language, spec))
        return [p for p in found if p != importer]

    def _resolve(self, importer: str, language: Language, spec: str) -> list[str]:
        if language == "python":
            return self._python(importer, spec)
        if language in ("javascript", "typescript", "tsx"):
            return self._javascript(importer, spec)
        if language == "go":
            return self._go(spec)
        if language == "java":
            return self._java(spec)
        return []  # a Language added later: no resolver yet, so no import edges

    # -- Python ------------------------------------------------------------------------

    def _python(self, importer: str, spec: str) -> list[str]:
        if spec.startswith("."):
            dots = len(spec) - len(spec.lstrip("."))
            base = posixpath.dirname(importer)
            for _ in range(dots - 1):
                if not base:
                    return []  # above the repository root
                base = posixpath.dirname(base)
            rest = spec[dots:]
            if not rest:
                return self._first([posixpath.join(base, "__init__.py")])
            roots = [base]
        else:
            rest = spec
            roots = ["", "src", *_ancestors(posixpath.dirname(importer))]
        parts = [p for p in rest.split(".") if p]
        for candidate_parts in (parts, parts[:-1]):
            if not candidate_parts:
                continue
            module = "/".join(candidate_parts)
            for root in dict.fromkeys(roots):
                stem = posixpath.join(root, module) if root else module
                found = self._first([stem + suffix for suffix in _PY_SUFFIXES])
                if found:
                    return found
        if spec.startswith("."):  # ``from . import name``: the name lives in the package
            return self._first([posixpath.join(roots[0], "__init__.py")])
        return []

    # -- JavaScript / TypeScript -------------------------------------------------------

    def _javascript(self, importer: str, spec: str) -> list[str]:
        if spec in (".", "..") or spec.startswith(("./", "../")):
            base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec))
            if base == ".." or base.startswith("../"):
                return []
            bases = [base] if base != "." else [""]
        elif spec.startswith(("@/", "~/")):
            bases = ["src/" + spec[2:], spec[2:]]
        else:
            return []  # a package from node_modules, or an absolute path
        for base in bases:
            candidates = [base] if base else []
            stem, ext = posixpath.splitext(base)
            candidates += [stem + source for source in _JS_RUNTIME_TO_SOURCE.get(ext, ())]
            candidates += [base + ext for ext in _JS_EXTENSIONS]
            index = posixpath.join(base, "index") if base else "index"
            candidates += [index + ext for ext in _JS_EXTENSIONS]
            found = self._first(candidates)
            if found:
                return found
        return []

    # -- Go ----------------------------------------------------------------------------

    def _go(self, spec: str) -> list[str]:
        parts = [p for p in spec.split("/") if p]
        if not parts:
            return []
        best, matched = 0, []
        for directory in self._go_dirs_by_tail.get(parts[-1], ()):
            length = _common_tail(directory.split("/"), parts)
            if length > best:
                best, matched = length, [directory]
            elif length == best:
                matched.append(directory)
        # One matching component is weak evidence ("net/http" vs a repository's "http/"):
        # take it only when it is unambiguous and the import path starts with a domain.
        if best == 1 and (len(matched) > 1 or "." not in parts[0]):
            return []
        return [path for directory in matched for path in self._go_dirs[directory]]

    # -- Java --------------------------------------------------------------------------

    def _java(self, spec: str) -> list[str]:
        spec = spec.removeprefix("static ").strip().rstrip(";")
        parts = [p for p in spec.split(".") if p]
        if not parts:
            return []
        if parts[-1] == "*":
            return self._java_package(parts[:-1])
        for candidate in (parts, parts[:-1]):
            if not candidate:
                continue
            relative = "/".join(candidate) + ".java"
            matches = [
                p
                for p in self._java_by_name.get(candidate[-1] + ".java", ())
                if p == relative or p.endswith("/" + relative)
            ]
            if matches:
                return matches
        return []

    def _java_package(self, parts: list[str]) -> list[str]:
        if not parts:
            return []
        relative = "/".join(parts)
        files: list[str] = []
        for directory in self._java_dirs_by_tail.get(parts[-1], ()):
            if directory == relative or directory.endswith("/" + relative):
                files.extend(self._java_dirs[directory])
        return files

    def _first(self, candidates: Iterable[str]) -> list[str]:
        for candidate in candidates:
            if candidate in self._paths:
                return [candidate]
        return []


def _common_tail(left: list[str], right: list[str]) -> int:
    """How many trailing components ``left`` and ``right`` share."""
    n = 0
    while n < min(len(left), len(right)) and left[-1 - n] == right[-1 - n]:
        n += 1
    return n


def _ancestors(directory: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b", "a/b/c"]`` (shallowest first)."""
    if not directory:
        return []
    parts = directory.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
