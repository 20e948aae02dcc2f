"""parse_file on realistic snippets of every language, with the real tree-sitter grammars."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from appliance.errors import InvalidInput
from appliance.index.languages import is_text, language_for, parser_for
from appliance.index.parse import parse_file
from appliance.index.types import Definition, FileSymbols

PYTHON = b'''"""Configuration loading."""
import os.path
import json as _json
from .util import helper as h, Config
from .. import sibling

MAX_RETRIES = 3
timeout = 5


@dataclass
class Loader(Base, mixins.Cached):
    """Loads configuration files."""

    def load(self, path: str, *, strict: bool = False) -> Config:
        """Load a config.

        Raises ConfigError when strict.
        """

        def inner():
            return 1

        data = os.path.join(path, "x")
        return Config.from_dict(parse(data), schema=Schema)

    @property
    def name(self):
        return self._name


def top(items: list[Item]) -> None:
    print(len(items))
    isinstance(items, Mapping)
'''

JAVASCRIPT = b"""import React, { useState } from "react";
import * as path from "node:path";
export * from "./reexported";
const fs = require("fs");

/**
 * Loads a config file.
 * @param p the path
 */
export async function load(p) {
  return new Config(fs.readFileSync(p));
}

// Renders the app.
export const App = () => <Layout title="x"><div /></Layout>;

const MAX = 5;

class Store extends Base {
  handler = (e) => this.emit(e);

  /** Saves everything. */
  save(item) {
    this.db.put(item);
  }
}
const lazy = import("./lazy");
"""

TYPESCRIPT = b"""import { Request } from "./http";

/** A thing that runs. */
export interface Runner extends Base {
  run(task: Task): Promise<Result>;
  name: string;
}

export type Handler<T> = (req: Request) => T | null;

export enum Color { Red, Green }

export default class Service<T> extends Base implements Runner {
  private cache: Map<string, T> = new Map();

  // Runs one task.
  async run(task: Task): Promise<Result> {
    return this.cache.get(task.id) ?? compute(task);
  }
}

export const DEFAULT_TIMEOUT = 30;
"""

TSX = b"""import { Button } from "./button";

interface Props { label: string }

/** The toolbar. */
export function Toolbar({ label }: Props): JSX.Element {
  return <Panel><Button label={label} /></Panel>;
}
"""

GO = b"""package server

import (
\t"context"
\t"fmt"
)

// Server serves HTTP.
// It is safe for concurrent use.
type Server struct {
\tAddr string
\th    *Handler
}

type Getter interface {
\tGet(key string) (string, error)
}

type ID = int

const MaxConns = 10

// Start starts the server.
func (s *Server) Start(ctx context.Context) error {
\ts.h.Run(ctx)
\tfmt.Println(&Config{})
\treturn nil
}

func New(addr string) *Server { return &Server{Addr: addr} }
"""

JAVA = b"""package com.acme.users;

import com.acme.db.Query;
import static org.junit.Assert.*;

/**
 * A repository of users.
 */
@Entity
public class UserRepo extends BaseRepo implements Repo<User> {
    private static final int MAX = 5;

    /** Finds users matching q. */
    @Override
    public List<User> findAll(String q) throws IOException {
        return db.query(new Query(q)).stream().map(User::from).toList();
    }

    public UserRepo(Database db) { super(db); }

    interface Listener { void changed(User user); }
}
"""


def by_name(symbols: FileSymbols, name: str) -> Definition:
    found = [d for d in symbols.definitions if d.name == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def ref_names(symbols: FileSymbols) -> set[str]:
    return {r.name for r in symbols.references}


def test_python_definitions_have_kinds_spans_signatures_and_docstrings() -> None:
    symbols = parse_file("config.py", "python", PYTHON)

    assert symbols.error is None
    names = [d.name for d in symbols.definitions]
    assert names == ["MAX_RETRIES", "Loader", "load", "name", "top"]  # no `inner`, no `timeout`
    loader = by_name(symbols, "Loader")
    assert (loader.kind, loader.line_start, loader.line_end) == ("class", 11, 29)  # decorator
    assert loader.signature == "class Loader(Base, mixins.Cached):"
    assert loader.docstring == "Loads configuration files."
    load = by_name(symbols, "load")
    assert (load.kind, load.parent, load.line_start, load.line_end) == ("method", "Loader", 15, 25)
    assert load.signature == "def load(self, path: str, *, strict: bool = False) -> Config:"
    assert load.docstring == "Load a config.\n\nRaises ConfigError when strict."
    assert by_name(symbols, "name").line_start == 27  # @property belongs to the method
    top = by_name(symbols, "top")
    assert (top.kind, top.parent, top.signature) == (
        "function",
        None,
        "def top(items: list[Item]) -> None:",
    )
    assert by_name(symbols, "MAX_RETRIES").kind == "constant"


def test_python_references_and_imports() -> None:
    symbols = parse_file("config.py", "python", PYTHON)

    names = ref_names(symbols)
    # called, attributes (both sides), types, bases, decorators, imported names, class args
    assert {"join", "os", "path", "from_dict", "parse", "Config", "Item", "Base", "Cached"} <= names
    assert {"dataclass", "helper", "Schema", "Mapping", "_name"} <= names
    assert not names & {"self", "print", "len", "isinstance", "data"}  # noise and plain locals
    assert ("parse", 25) in {(r.name, r.line) for r in symbols.references}
    assert symbols.imports == ("os.path", "json", ".util", "..")


def test_javascript_functions_classes_jsx_and_requires() -> None:
    symbols = parse_file("app.jsx", "javascript", JAVASCRIPT)

    assert symbols.error is None
    load = by_name(symbols, "load")
    assert (load.kind, load.line_start, load.line_end) == ("function", 10, 12)
    assert load.signature == "export async function load(p)"
    assert load.docstring == "Loads a config file.\n@param p the path"
    app = by_name(symbols, "App")
    assert (app.kind, app.docstring) == ("function", "Renders the app.")
    assert app.signature == "export const App = () =>"
    assert by_name(symbols, "MAX").kind == "constant"
    assert "fs" not in {d.name for d in symbols.definitions}  # a require is an import
    save = by_name(symbols, "save")
    assert (save.kind, save.parent, save.docstring) == ("method", "Store", "Saves everything.")
    assert by_name(symbols, "handler").parent == "Store"
    assert {"Config", "readFileSync", "Layout", "Base", "put", "db", "useState"} <= ref_names(
        symbols
    )
    assert "div" not in ref_names(symbols)  # an HTML tag, not a component
    assert symbols.imports == ("react", "node:path", "./reexported", "fs", "./lazy")


def test_typescript_interfaces_types_enums_and_members() -> None:
    symbols = parse_file("service.ts", "typescript", TYPESCRIPT)

    assert symbols.error is None
    runner = by_name(symbols, "Runner")
    assert (runner.kind, runner.line_start, runner.line_end) == ("interface", 4, 7)
    assert runner.signature == "export interface Runner extends Base"
    assert runner.docstring == "A thing that runs."
    handler = by_name(symbols, "Handler")
    assert handler.kind == "type"
    assert handler.signature == "export type Handler<T> = (req: Request) => T | null"
    assert by_name(symbols, "Color").kind == "enum"
    service = by_name(symbols, "Service")
    assert service.signature == "export default class Service<T> extends Base implements Runner"
    runs = [d for d in symbols.definitions if d.name == "run"]
    assert {(d.parent, d.kind) for d in runs} == {("Runner", "method"), ("Service", "method")}
    impl = next(d for d in runs if d.parent == "Service")
    assert impl.signature == "async run(task: Task): Promise<Result>"
    assert impl.docstring == "Runs one task."
    assert by_name(symbols, "DEFAULT_TIMEOUT").kind == "constant"
    refs = ref_names(symbols)
    assert {"Task", "Result", "Request", "Base", "Runner", "compute", "cache"} <= refs
    assert "Service" not in refs  # a definition's own name is not a use of it
    assert symbols.imports == ("./http",)


def test_tsx_components_are_references() -> None:
    symbols = parse_file("toolbar.tsx", "tsx", TSX)

    assert symbols.error is None
    toolbar = by_name(symbols, "Toolbar")
    assert toolbar.kind == "function"
    assert toolbar.signature == "export function Toolbar({ label }: Props): JSX.Element"
    assert toolbar.docstring == "The toolbar."
    assert by_name(symbols, "Props").kind == "interface"
    assert {"Panel", "Button", "Props"} <= ref_names(symbols)
    assert symbols.imports == ("./button",)


def test_go_structs_methods_receivers_and_doc_comments() -> None:
    symbols = parse_file("server.go", "go", GO)

    assert symbols.error is None
    server = by_name(symbols, "Server")
    assert (server.kind, server.line_start, server.line_end) == ("struct", 10, 13)
    assert server.signature == "type Server struct"
    assert server.docstring == "Server serves HTTP.\nIt is safe for concurrent use."
    assert by_name(symbols, "Getter").kind == "interface"
    get = by_name(symbols, "Get")
    assert (get.kind, get.parent, get.signature) == (
        "method",
        "Getter",
        "Get(key string) (string, error)",
    )
    assert (by_name(symbols, "ID").kind, by_name(symbols, "ID").signature) == (
        "type",
        "type ID = int",
    )
    assert by_name(symbols, "MaxConns").kind == "constant"
    start = by_name(symbols, "Start")
    assert (start.kind, start.parent) == ("method", "Server")
    assert start.signature == "func (s *Server) Start(ctx context.Context) error"
    assert start.docstring == "Start starts the server."
    assert by_name(symbols, "New").signature == "func New(addr string) *Server"
    assert {"Run", "Println", "fmt", "Config", "Context", "context", "Handler"} <= ref_names(
        symbols
    )
    assert symbols.imports == ("context", "fmt")


def test_java_classes_methods_constructors_and_javadoc() -> None:
    symbols = parse_file("UserRepo.java", "java", JAVA)

    assert symbols.error is None
    repo = next(d for d in symbols.definitions if d.name == "UserRepo" and d.kind == "class")
    assert (repo.line_start, repo.line_end) == (9, 22)
    assert repo.signature == "public class UserRepo extends BaseRepo implements Repo<User>"
    assert repo.docstring == "A repository of users."
    find_all = by_name(symbols, "findAll")
    assert (find_all.kind, find_all.parent) == ("method", "UserRepo")
    assert find_all.signature == "public List<User> findAll(String q) throws IOException"
    assert find_all.docstring == "Finds users matching q."
    constructor = [d for d in symbols.definitions if d.name == "UserRepo" and d.kind == "method"]
    assert constructor[0].signature == "public UserRepo(Database db)"
    assert by_name(symbols, "MAX").kind == "constant"
    assert (by_name(symbols, "Listener").kind, by_name(symbols, "changed").parent) == (
        "interface",
        "Listener",
    )
    refs = ref_names(symbols)
    assert {
        "Query",
        "User",
        "BaseRepo",
        "Repo",
        "query",
        "db",
        "from",
        "Entity",
        "IOException",
    } <= refs
    assert "String" not in refs
    assert symbols.imports == ("com.acme.db.Query", "org.junit.Assert.*")


def test_syntax_errors_keep_what_parses_and_say_where() -> None:
    source = (
        b"def ok():\n    return 1\n\n\ndef broken(:\n    pass\n\n\n"
        b"class After:\n    def fine(self):\n        return helper()\n"
    )

    symbols = parse_file("broken.py", "python", source)

    assert symbols.error is not None
    assert symbols.error.startswith("syntax error")
    assert "5" in symbols.error
    assert {"ok", "After", "fine"} <= {d.name for d in symbols.definitions}
    assert "helper" in ref_names(symbols)


def test_undecodable_bytes_do_not_stop_the_parse() -> None:
    source = b"def caf\xe9():\n    '''Caf\xe9 doc.'''\n    return brew()\n"

    symbols = parse_file("latin1.py", "python", source)

    assert "brew" in ref_names(symbols)
    assert all(isinstance(d.signature, str) for d in symbols.definitions)


def test_real_module_from_the_standard_library_parses_cleanly() -> None:
    path = Path(threading.__file__)

    symbols = parse_file("threading.py", "python", path.read_bytes())

    assert symbols.error is None
    thread = by_name(symbols, "Thread")
    assert thread.kind == "class"
    start = next(d for d in symbols.definitions if d.name == "start" and d.parent == "Thread")
    assert start.signature == "def start(self):"
    assert start.docstring is not None
    assert start.docstring.startswith("Start the thread")
    assert "_thread" in symbols.imports


def test_languages_by_extension_and_text_files() -> None:
    assert language_for("src/App.tsx") == "tsx"
    assert language_for("lib/x.mjs") == "javascript"
    assert language_for("pkg/stub.pyi") == "python"
    assert language_for("README.md") is None
    assert is_text("docs/guide.md")
    assert is_text("src/main.rs")
    assert is_text("Dockerfile")
    assert not is_text("logo.png")
    with pytest.raises(InvalidInput, match="no grammar for language 'cobol'"):
        parser_for("cobol")  # type: ignore[arg-type]


def test_each_thread_gets_its_own_parser() -> None:
    parsers = []
    thread = threading.Thread(target=lambda: parsers.append(parser_for("go")))
    thread.start()
    thread.join()

    assert parser_for("go") is parser_for("go")
    assert parsers[0] is not parser_for("go")
