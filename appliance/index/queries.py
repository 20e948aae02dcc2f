"""Tree-sitter queries and per-language tables that ``appliance.index.parse`` runs.

One query per language does the whole job in a single pass over the tree. Capture names
say what a node is to the parser:

- ``def.<what>``: a definition node. ``<what>`` is a ``SymbolKind`` when the node type fixes
  it (``def.class``, ``def.interface``…); ``def.function`` becomes a method inside a class;
  ``def.method`` is a method wherever it is; ``def.var`` / ``def.field`` / ``def.typespec``
  need a look at the node (a const arrow function is a function, a Go type spec a struct,
  an interface or a type).
- ``ref``: an identifier that is called, instantiated, used as a type, a base class, a
  decorator, or as the object or member of an attribute access.
- ``ref.cap``: an identifier passed as a plain value (an argument, a right-hand side); kept
  only when it is capitalised, i.e. likely a class or a constant (``isinstance(x, Config)``).
- ``import``: a node whose text is the module specifier as written; ``import.java`` is a
  whole Java import declaration, trimmed by the parser.

Names the grammar marks as declarations (``class Foo``'s ``Foo`` is a ``type_identifier`` in
TypeScript and Go) are caught by ``ref`` too; the parser drops references that sit on a
definition's own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from appliance.index.types import Language

_PYTHON: Final = """
(function_definition) @def.function
(class_definition) @def.class
(module (expression_statement (assignment left: (identifier)) @def.var))
(module (type_alias_statement) @def.type)

(call function: (identifier) @ref)
(attribute object: (identifier) @ref)
(attribute attribute: (identifier) @ref)
(type (identifier) @ref)
(generic_type (identifier) @ref)
(decorator (identifier) @ref)
(except_clause (identifier) @ref)
(except_clause (as_pattern (identifier) @ref))
(except_clause (tuple (identifier) @ref))
(import_from_statement name: (dotted_name (identifier) @ref))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @ref)))
(argument_list (identifier) @ref.cap)
(keyword_argument value: (identifier) @ref.cap)
(assignment right: (identifier) @ref.cap)

(import_statement name: (dotted_name) @import)
(import_statement name: (aliased_import name: (dotted_name) @import))
(import_from_statement module_name: (_) @import)
"""

# Shared by JavaScript, TypeScript and TSX.
_ECMASCRIPT: Final = """
(function_declaration) @def.function
(generator_function_declaration) @def.function
(class_declaration) @def.class
(method_definition) @def.method
(program (lexical_declaration (variable_declarator) @def.var))
(program (variable_declaration (variable_declarator) @def.var))
(program (export_statement declaration: (lexical_declaration (variable_declarator) @def.var)))
(program (export_statement declaration: (variable_declaration (variable_declarator) @def.var)))

(call_expression function: (identifier) @ref)
(member_expression object: (identifier) @ref)
(member_expression property: (property_identifier) @ref)
(new_expression constructor: (identifier) @ref)
(import_specifier name: (identifier) @ref)
(import_clause (identifier) @ref)
(decorator (identifier) @ref)
(arguments (identifier) @ref.cap)
(variable_declarator value: (identifier) @ref.cap)

(import_statement source: (string (string_fragment) @import))
(export_statement source: (string (string_fragment) @import))
(call_expression
  function: (identifier) @_require
  arguments: (arguments . (string (string_fragment) @import))
  (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import)))
"""

_JSX: Final = """
(jsx_opening_element name: (identifier) @ref.cap)
(jsx_self_closing_element name: (identifier) @ref.cap)
"""

_JAVASCRIPT: Final = (
    _ECMASCRIPT
    + _JSX
    + """
(field_definition value: [(arrow_function) (function_expression)]) @def.field
(class_heritage (identifier) @ref)
"""
)

_TYPESCRIPT: Final = (
    _ECMASCRIPT
    + """
(abstract_class_declaration) @def.class
(interface_declaration) @def.interface
(type_alias_declaration) @def.type
(enum_declaration) @def.enum
(method_signature) @def.method
(abstract_method_signature) @def.method
(program (function_signature) @def.function)
(program (export_statement (function_signature) @def.function))
(program (ambient_declaration (function_signature) @def.function))
(public_field_definition value: [(arrow_function) (function_expression)]) @def.field

(extends_clause value: (identifier) @ref)
(type_identifier) @ref
(import_require_clause source: (string (string_fragment) @import))
"""
)

_GO: Final = """
(function_declaration) @def.function
(method_declaration) @def.method
(source_file (type_declaration (type_spec) @def.typespec))
(source_file (type_declaration (type_alias) @def.type))
(method_elem) @def.method
(source_file (const_declaration (const_spec) @def.var))
(source_file (var_declaration (var_spec) @def.var))
(source_file (var_declaration (var_spec_list (var_spec) @def.var)))

(call_expression function: (identifier) @ref)
(selector_expression operand: (identifier) @ref)
(selector_expression field: (field_identifier) @ref)
(type_identifier) @ref
(qualified_type package: (package_identifier) @ref)
(argument_list (identifier) @ref.cap)

(import_spec path: (interpreted_string_literal (interpreted_string_literal_content) @import))
"""

_JAVA: Final = """
(class_declaration) @def.class
(record_declaration) @def.class
(interface_declaration) @def.interface
(annotation_type_declaration) @def.interface
(enum_declaration) @def.enum
(method_declaration) @def.method
(constructor_declaration) @def.method
(field_declaration) @def.field

(method_invocation name: (identifier) @ref)
(method_invocation object: (identifier) @ref)
(field_access object: (identifier) @ref)
(field_access field: (identifier) @ref)
(type_identifier) @ref
(marker_annotation name: (identifier) @ref)
(annotation name: (identifier) @ref)
(method_reference (identifier) @ref)
(import_declaration (scoped_identifier name: (identifier) @ref))
(argument_list (identifier) @ref.cap)

(import_declaration) @import.java
"""


@dataclass(frozen=True)
class LanguageSpec:
    """What the parser needs to know about one language besides its query."""

    query: str
    # Nodes whose members are methods (their ``name`` field names the parent).
    class_types: frozenset[str]
    # Nodes whose bodies hold local code: a definition inside one is not indexed.
    function_types: frozenset[str]
    # Nodes that wrap a definition and belong to its span (``export``, decorators).
    wrapper_types: frozenset[str]
    comment_types: frozenset[str]
    # Names too common to mean anything in the reference graph (builtins, ``self``).
    stop_words: frozenset[str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PY_STOP = _words(
    "self cls super print len range str int float bool bytes dict list set tuple frozenset "
    "object type isinstance issubclass getattr setattr hasattr delattr enumerate zip map "
    "filter sorted reversed min max sum any all abs open iter next repr hash id vars dir "
    "callable format round divmod pow chr ord bin hex oct globals locals Exception "
    "ValueError TypeError KeyError RuntimeError NotImplementedError NotImplemented "
    "AttributeError StopIteration None True False"
)
_ES_STOP = _words(
    "this super console require module exports window document globalThis JSON Math "
    "Object Array String Number Boolean Promise Symbol Error TypeError Date RegExp Map Set "
    "WeakMap undefined NaN Infinity parseInt parseFloat setTimeout clearTimeout "
    "setInterval clearInterval process Buffer Record Partial Readonly Required Pick Omit "
    "ReturnType Exclude Extract NonNullable Awaited Function React"
)
_GO_STOP = _words(
    "len cap make new append panic recover copy delete close print println min max clear "
    "string bool byte rune error any int int8 int16 int32 int64 uint uint8 uint16 uint32 "
    "uint64 uintptr float32 float64 complex64 complex128 comparable nil iota"
)
_JAVA_STOP = _words(
    "String Object Integer Long Double Float Short Byte Character Boolean Void System out "
    "err println printf Override Deprecated SuppressWarnings FunctionalInterface "
    "Exception RuntimeException this super var"
)

_ES_CLASSES = frozenset({"class_declaration", "abstract_class_declaration", "class"})
_ES_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "function_expression",
        "generator_function",
        "arrow_function",
        "method_definition",
    }
)
_ES_WRAPPERS = frozenset({"export_statement", "ambient_declaration"})

SPECS: Final[dict[Language, LanguageSpec]] = {
    "python": LanguageSpec(
        query=_PYTHON,
        class_types=frozenset({"class_definition"}),
        function_types=frozenset({"function_definition", "lambda"}),
        wrapper_types=frozenset({"decorated_definition"}),
        comment_types=frozenset({"comment"}),
        stop_words=_PY_STOP,
    ),
    "javascript": LanguageSpec(
        query=_JAVASCRIPT,
        class_types=_ES_CLASSES,
        function_types=_ES_FUNCTIONS,
        wrapper_types=_ES_WRAPPERS,
        comment_types=frozenset({"comment"}),
        stop_words=_ES_STOP,
    ),
    "typescript": LanguageSpec(
        query=_TYPESCRIPT,
        class_types=_ES_CLASSES | {"interface_declaration"},
        function_types=_ES_FUNCTIONS,
        wrapper_types=_ES_WRAPPERS,
        comment_types=frozenset({"comment"}),
        stop_words=_ES_STOP,
    ),
    "tsx": LanguageSpec(
        query=_TYPESCRIPT + _JSX,
        class_types=_ES_CLASSES | {"interface_declaration"},
        function_types=_ES_FUNCTIONS,
        wrapper_types=_ES_WRAPPERS,
        comment_types=frozenset({"comment"}),
        stop_words=_ES_STOP,
    ),
    "go": LanguageSpec(
        query=_GO,
        class_types=frozenset({"type_spec"}),
        function_types=frozenset({"function_declaration", "method_declaration", "func_literal"}),
        wrapper_types=frozenset(),
        comment_types=frozenset({"comment"}),
        stop_words=_GO_STOP,
    ),
    "java": LanguageSpec(
        query=_JAVA,
        class_types=frozenset(
            {
                "class_declaration",
                "record_declaration",
                "interface_declaration",
                "enum_declaration",
                "annotation_type_declaration",
            }
        ),
        function_types=frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "lambda_expression",
                "object_creation_expression",  # an anonymous class body is local code
            }
        ),
        wrapper_types=frozenset(),
        comment_types=frozenset({"block_comment", "line_comment"}),
        stop_words=_JAVA_STOP,
    ),
}
