"""Symbols of one source file: definitions, references and imports, read with tree-sitter.

``parse_file`` parses the bytes once and runs one compiled query per language (see
``appliance.index.queries``) in a single pass; everything else is a little work on the
captured nodes. What comes out:

- **definitions** outside function bodies: functions, classes, methods (``parent`` is the
  class, struct or interface), interfaces, structs, enums, type aliases and top-level
  constants (Python ``ALL_CAPS``, JS/TS ``const``, Go ``const``/``var``, Java ``static
  final`` fields). Closures and classes local to a function are left out: nothing outside
  the function can name them. A span covers decorators, ``export`` and annotations; the
  ``signature`` is the header up to the body, whitespace collapsed, at most
  ``SIGNATURE_CHARS``; the ``docstring`` is Python's docstring or the comment block right
  above the definition, comment markers stripped.
- **references**: identifiers called, instantiated, used as types, bases, decorators or as
  either side of an attribute access, once per name and line. Builtins and ``self``-like
  noise are dropped (``LanguageSpec.stop_words``), and so are one-letter names; names this
  file defines are kept (the graph builder decides what a self-reference means).
- **imports** as written, in order, once each.

A file with syntax errors yields what tree-sitter recovered, with ``error`` saying where.
Only the captured names are decoded; the source is never decoded as a whole.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from functools import cache
from typing import Final

import tree_sitter
from tree_sitter import Node

from appliance.index.languages import grammar, parser_for
from appliance.index.queries import SPECS, LanguageSpec
from appliance.index.types import Definition, FileSymbols, Language, Reference, SymbolKind

SIGNATURE_CHARS: Final = 200
_ERROR_LINES_SHOWN: Final = 5

_FUNCTION_VALUES: Final = frozenset(
    {"arrow_function", "function_expression", "generator_function", "function"}
)
_DECORATIONS: Final = frozenset(
    {"decorator", "marker_annotation", "annotation", "comment", "block_comment", "line_comment"}
)
_FIXED_KINDS: Final[dict[str, SymbolKind]] = {
    "def.class": "class",
    "def.interface": "interface",
    "def.enum": "enum",
    "def.type": "type",
}
_GO_SPECS: Final = frozenset({"type_spec", "type_alias", "const_spec", "var_spec"})
_JAVA_IMPORT = re.compile(r"^\s*import\s+(?:static\s+)?|\s+|;\s*$")


@cache
def query_for(language: Language) -> tree_sitter.Query:
    """The compiled query for ``language`` (compiled once per process; queries are immutable
    and shared by threads, each parse runs its own cursor)."""
    return tree_sitter.Query(grammar(language), SPECS[language].query)


def parse_file(path: str, language: Language, source: bytes) -> FileSymbols:
    """Definitions, references and imports of one file; never raises on bad syntax."""
    tree = parser_for(language).parse(source)
    root = tree.root_node
    captures = tree_sitter.QueryCursor(query_for(language)).captures(root)
    extractor = _Extractor(source, language, SPECS[language])
    definitions = extractor.definitions(captures)
    return FileSymbols(
        path=path,
        language=language,
        definitions=definitions,
        references=extractor.references(captures),
        imports=extractor.imports(captures),
        error=_syntax_error(root) if root.has_error else None,
    )


class _Extractor:
    """Turns one file's captures into symbols; lives for one ``parse_file`` call."""

    def __init__(self, source: bytes, language: Language, spec: LanguageSpec) -> None:
        self.source = source
        self.language = language
        self.spec = spec
        self.scopes: dict[int, tuple[bool, str | None]] = {}  # class node id → scope
        self.name_starts: set[int] = set()  # where definitions' names sit
        self.found: list[tuple[int, Definition]] = []

    # -- definitions -------------------------------------------------------------------

    def definitions(self, captures: dict[str, list[Node]]) -> tuple[Definition, ...]:
        for capture, nodes in captures.items():
            if not capture.startswith("def."):
                continue
            for node in nodes:
                self._definition(capture, node)
        self.found.sort(key=lambda item: item[0])
        return tuple(d for _, d in self.found)

    def _definition(self, capture: str, node: Node) -> None:
        if capture == "def.var":
            self._variables(node)
            return
        if capture == "def.field":
            self._field(node)
            return
        local, parent = self._scope(node)
        if local:
            return
        kind: SymbolKind
        if capture == "def.function":
            kind = "method" if parent else "function"
        elif capture == "def.method":
            if self.language == "go" and node.type == "method_declaration":
                parent = self._receiver(node)
            if parent is None:  # a method of an object literal or an anonymous class
                return
            kind = "method"
        elif capture == "def.typespec":
            kind = _go_type_kind(node)
        else:
            kind = _FIXED_KINDS[capture]
        if self.language == "python" and kind == "type":  # `type X = …`: the name is a type
            left = node.child_by_field_name("left")
            name = left.named_children[0] if left is not None and left.named_child_count else left
        else:
            name = node.child_by_field_name("name")
        if name is None:
            return
        self._add(name, kind, node, self._outer(node), parent, body=self._body(node))

    def _variables(self, node: Node) -> None:
        """Top-level assignments: Python ``ALL_CAPS``, JS/TS declarators, Go const/var."""
        if self.language == "python":
            name = node.child_by_field_name("left")
            if name is not None and self._text(name).isupper():
                self._add(name, "constant", node, self._outer(node.parent or node), None)
            return
        if self.language == "go":
            kind: SymbolKind = "constant" if node.type == "const_spec" else "variable"
            outer = self._outer(node)
            for name in node.children_by_field_name("name"):
                if self._text(name) != "_":
                    self._add(name, kind, node, outer, None)
            return
        name = node.child_by_field_name("name")
        declaration = node.parent
        if name is None or name.type != "identifier" or declaration is None:
            return  # a destructuring pattern
        value = node.child_by_field_name("value")
        body = None
        if value is not None and value.type in _FUNCTION_VALUES:
            kind, body = "function", value.child_by_field_name("body")
        elif value is not None and value.type == "class":
            kind, body = "class", value.child_by_field_name("body")
        elif _is_require(value, self.source):
            return  # `const fs = require("fs")` is an import, not a definition
        elif declaration.child_count and declaration.children[0].type == "const":
            kind = "constant"
        else:
            kind = "variable"
        self._add(name, kind, node, self._outer(declaration), None, body=body)

    def _field(self, node: Node) -> None:
        """A JS/TS class field holding a function, or a Java ``static final`` field."""
        local, parent = self._scope(node)
        if local or parent is None:
            return
        if self.language != "java":
            name = node.child_by_field_name("name") or node.child_by_field_name("property")
            value = node.child_by_field_name("value")
            if name is not None and value is not None:
                body = value.child_by_field_name("body")
                self._add(name, "method", node, node, parent, body=body)
            return
        modifiers = node.children[0] if node.child_count else None
        words = (
            {c.type for c in modifiers.children}
            if modifiers is not None and modifiers.type == "modifiers"
            else set()
        )
        in_interface = node.parent is not None and node.parent.type == "interface_body"
        if not (in_interface or {"static", "final"} <= words):
            return
        for declarator in node.children_by_field_name("declarator"):
            name = declarator.child_by_field_name("name")
            if name is not None:
                self._add(name, "constant", node, node, parent)

    def _add(
        self,
        name: Node,
        kind: SymbolKind,
        node: Node,
        outer: Node,
        parent: str | None,
        *,
        body: Node | None = None,
    ) -> None:
        start_row = outer.start_point.row
        end_row, end_column = outer.end_point
        self.name_starts.add(name.start_byte)
        definition = Definition(
            name=self._text(name),
            kind=kind,
            line_start=start_row + 1,
            line_end=end_row if end_column == 0 and end_row > start_row else end_row + 1,
            signature=self._signature(node, outer, body),
            docstring=self._docstring(node, outer, body),
            parent=parent,
        )
        self.found.append((outer.start_byte, definition))

    def _scope(self, node: Node) -> tuple[bool, str | None]:
        """(whether ``node`` is local to a function, the class it is a member of)."""
        spec = self.spec
        ancestor = node.parent
        while ancestor is not None:
            kind = ancestor.type
            if kind in spec.function_types:
                return True, None
            if kind in spec.class_types:
                scope = self.scopes.get(ancestor.id)
                if scope is None:
                    name = ancestor.child_by_field_name("name")
                    scope = (self._scope(ancestor)[0], self._text(name) if name else None)
                    self.scopes[ancestor.id] = scope
                return scope
            ancestor = ancestor.parent
        return False, None

    def _receiver(self, method: Node) -> str | None:
        """The type a Go method belongs to: ``func (s *Server[T]) …`` → ``Server``."""
        receiver = method.child_by_field_name("receiver")
        parameter = receiver.named_children[0] if receiver and receiver.named_child_count else None
        kind = parameter.child_by_field_name("type") if parameter else None
        if kind is None:
            return None
        return self._text(kind).lstrip("*").partition("[")[0].strip() or None

    def _outer(self, node: Node) -> Node:
        """The node whose span the definition takes: with its decorators and ``export``."""
        parent = node.parent
        if self.language == "go":
            # A lone spec takes its `type`/`const`/`var` keyword; a grouped one does not.
            lone = parent is not None and parent.named_child_count == 1
            return parent if lone and node.type in _GO_SPECS and parent else node
        while parent is not None and parent.type in self.spec.wrapper_types:
            node, parent = parent, parent.parent
        return node

    def _body(self, node: Node) -> Node | None:
        if node.type == "type_spec":  # Go: `type Server struct {`: the body is the braces
            return None
        return node.child_by_field_name("body")

    def _signature(self, node: Node, outer: Node, body: Node | None) -> str:
        start = _header_start(node if self.language == "python" else outer)
        source = self.source
        if body is not None and body.start_byte > start:
            end = body.start_byte
        elif node.type == "type_spec" and b"{" in source[node.start_byte : node.end_byte]:
            end = source.find(b"{", node.start_byte, node.end_byte)
        else:
            line_end = source.find(b"\n", start, outer.end_byte)
            end = outer.end_byte if line_end < 0 else line_end
        raw = source[start : min(end, start + 4 * SIGNATURE_CHARS)]
        text = " ".join(raw.decode("utf-8", "replace").split())
        text = text.removesuffix(";").rstrip()
        if self.language == "go" and outer is node and node.type.endswith(("_spec", "_alias")):
            keyword = {"const_spec": "const", "var_spec": "var"}.get(node.type, "type")
            text = f"{keyword} {text}"
        if len(text) > SIGNATURE_CHARS:
            text = text[: SIGNATURE_CHARS - 1] + "…"
        return text

    def _docstring(self, node: Node, outer: Node, body: Node | None) -> str | None:
        if self.language == "python":
            return _python_docstring(body, self.source) if body is not None else None
        return self._comment_above(outer)

    def _comment_above(self, node: Node) -> str | None:
        """The comment block that ends on the line right above ``node``, markers stripped."""
        comment_types = self.spec.comment_types
        comments: list[Node] = []
        row = node.start_point.row
        above = node.prev_sibling
        while above is not None and above.type in comment_types and above.end_point.row >= row - 1:
            before = above.prev_sibling
            if before is not None and before.end_point.row == above.start_point.row:
                break  # a trailing comment of the line above belongs to that line
            comments.append(above)
            row = above.start_point.row
            above = before
        if not comments:
            return None
        lines: list[str] = []
        for comment in reversed(comments):
            lines.extend(_strip_comment(self._text(comment)))
        return inspect.cleandoc("\n".join(lines)).strip() or None

    # -- references and imports -------------------------------------------------------

    def references(self, captures: dict[str, list[Node]]) -> tuple[Reference, ...]:
        source = self.source
        stop = self.spec.stop_words
        skip = self.name_starts
        names: dict[bytes, str | None] = {}  # decoded once per distinct name; None: dropped
        seen: set[tuple[str, int]] = set()
        for capture, capitalised_only in (("ref", False), ("ref.cap", True)):
            for node in captures.get(capture, ()):
                start = node.start_byte
                if start in skip:
                    continue
                raw = source[start : node.end_byte]
                name = names.get(raw, "")
                if name == "":
                    text = raw.decode("utf-8", "replace")
                    name = names[raw] = None if len(text) < 2 or text in stop else text
                if name is None or (capitalised_only and not name[0].isupper()):
                    continue
                seen.add((name, node.start_point.row + 1))
        return tuple(Reference(name, line) for name, line in sorted(seen, key=_by_line))

    def imports(self, captures: dict[str, list[Node]]) -> tuple[str, ...]:
        nodes = captures.get("import", [])
        java = captures.get("import.java", [])
        found: list[tuple[int, str]] = [(n.start_byte, self._text(n)) for n in nodes]
        found += [(n.start_byte, _JAVA_IMPORT.sub("", self._text(n))) for n in java]
        found.sort()
        return tuple(dict.fromkeys(text for _, text in found if text))

    def _text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _by_line(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


def _header_start(outer: Node) -> int:
    """Where a definition's header starts: past decorators, annotations and comments."""
    for child in outer.children:
        if child.type in _DECORATIONS:
            continue
        if child.type == "modifiers":  # Java: `@Override public …` starts at `public`
            for modifier in child.children:
                if modifier.type not in _DECORATIONS:
                    return modifier.start_byte
            continue
        return child.start_byte
    return outer.start_byte


def _go_type_kind(spec: Node) -> SymbolKind:
    kind = spec.child_by_field_name("type")
    if kind is not None and kind.type == "struct_type":
        return "struct"
    if kind is not None and kind.type == "interface_type":
        return "interface"
    return "type"


def _is_require(value: Node | None, source: bytes) -> bool:
    if value is None or value.type != "call_expression":
        return False
    function = value.child_by_field_name("function")
    return function is not None and source[function.start_byte : function.end_byte] == b"require"


def _python_docstring(body: Node, source: bytes) -> str | None:
    first = body.named_children[0] if body.named_child_count else None
    if first is None or first.type != "expression_statement" or not first.named_child_count:
        return None
    string = first.named_children[0]
    if string.type != "string" or string.named_child_count < 2:
        return None
    opening, closing = string.named_children[0], string.named_children[-1]
    raw = source[opening.end_byte : closing.start_byte].decode("utf-8", "replace")
    return inspect.cleandoc(raw) or None


def _strip_comment(text: str) -> Iterable[str]:
    """The lines of a ``//``, ``/* */`` or ``/** */`` comment without their markers."""
    if text.startswith("/*"):
        for line in text[2:].removesuffix("*/").split("\n"):
            stripped = line.strip()
            yield stripped[1:].removeprefix(" ") if stripped.startswith("*") else line.rstrip()
        return
    for line in text.split("\n"):
        yield line.lstrip().lstrip("/#").removeprefix(" ").rstrip()


def _syntax_error(root: Node) -> str:
    """A short note on where the parse went wrong: ``syntax errors near lines 3, 17``."""
    lines: set[int] = set()
    stack = [root]
    while stack and len(lines) <= _ERROR_LINES_SHOWN:
        node = stack.pop()
        if node.is_error or node.is_missing:
            lines.add(node.start_point.row + 1)
            continue
        stack.extend(child for child in reversed(node.children) if child.has_error)
    if not lines:
        return "syntax errors"
    shown = sorted(lines)[:_ERROR_LINES_SHOWN]
    more = ", …" if len(lines) > _ERROR_LINES_SHOWN else ""
    if len(shown) == 1:
        return f"syntax error near line {shown[0]}"
    return f"syntax errors near lines {', '.join(map(str, shown))}{more}"
