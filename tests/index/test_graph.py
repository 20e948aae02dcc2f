"""The file graph over a small hand-built repository in four languages."""

from __future__ import annotations

import pytest

from appliance.errors import IndexError_
from appliance.index.graph import IMPORT_WEIGHT, FileGraph
from appliance.index.types import Definition, FileSymbols, Language, Reference


def fs(
    path: str,
    language: Language = "python",
    *,
    defines: tuple[str, ...] = (),
    uses: tuple[str, ...] = (),
    imports: tuple[str, ...] = (),
) -> FileSymbols:
    return FileSymbols(
        path=path,
        language=language,
        definitions=tuple(
            Definition(name, "function", i * 10 + 1, i * 10 + 5, f"def {name}():")
            for i, name in enumerate(defines)
        ),
        references=tuple(Reference(name, i + 1) for i, name in enumerate(uses)),
        imports=imports,
    )


def repo() -> dict[str, FileSymbols]:
    files = [
        # Python: absolute, relative and src-layout imports; names used across files
        fs("shop/__init__.py"),
        fs("shop/models.py", defines=("Order", "load_order", "get")),
        fs("shop/views.py", uses=("load_order", "render_page", "get"), imports=("shop.models",)),
        fs("shop/api/__init__.py", defines=("router",)),
        fs("shop/api/handlers.py", imports=("..models", ".schemas", ".", "os.path")),
        fs("shop/api/schemas.py", defines=("OrderSchema",)),
        fs("src/billing/invoice.py", defines=("make_invoice",)),
        fs("tools/report.py", uses=("make_invoice", "Order"), imports=("billing.invoice",)),
        fs("shop/templates.py", defines=("render_page", "get")),
        fs("shop/cache.py", defines=("get",)),
        fs("shop/misc.py", defines=("unrelated",), uses=("get",)),
        # JavaScript / TypeScript
        fs("web/main.ts", "typescript", imports=("./util", "./components", "react", "./esm.js")),
        fs("web/util.ts", "typescript", defines=("formatPrice",)),
        fs("web/components/index.tsx", "tsx", defines=("App",)),
        fs("web/esm.ts", "typescript", defines=("esm",)),
        # Go: the module lives under go/, imported by its module path
        fs("go/cmd/server/main.go", "go", imports=("example.com/shop/internal/store", "fmt")),
        fs("go/internal/store/store.go", "go", defines=("Store",)),
        fs("go/internal/store/cache.go", "go", defines=("Cache",)),
        fs("go/internal/store/store_test.go", "go", defines=("TestStore",)),
        # Java: a package path under a Maven source root
        fs(
            "java/src/main/java/com/shop/App.java",
            "java",
            imports=("com.shop.model.Item", "java.util.List", "com.shop.util.*"),
        ),
        fs("java/src/main/java/com/shop/model/Item.java", "java", defines=("Item",)),
        fs("java/src/main/java/com/shop/util/Money.java", "java", defines=("Money",)),
        fs("java/src/main/java/com/shop/util/Tax.java", "java", defines=("Tax",)),
        # unrelated island
        fs("lonely/a.py", defines=("alpha_thing",), uses=("beta_thing",)),
        fs("lonely/b.py", defines=("beta_thing",)),
    ]
    return {f.path: f for f in files}


OTHER_PATHS = ["README.md", "docs/guide.md"]


def edges(graph: FileGraph) -> dict[tuple[str, str], float]:
    return {(a, b): w for a, b, w in graph.graph.edges(data="weight")}


def targets(graph: FileGraph, source: str) -> set[str]:
    return set(graph.graph.successors(source))


def test_every_catalogued_path_is_a_node() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    assert graph.paths == set(repo()) | set(OTHER_PATHS)
    assert "README.md" in graph
    assert len(graph) == len(repo()) + 2


def test_python_absolute_relative_and_src_layout_imports_resolve() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    assert "shop/models.py" in targets(graph, "shop/views.py")
    # "..models" from shop/api/, ".schemas" beside it, "." is the package itself
    assert targets(graph, "shop/api/handlers.py") == {
        "shop/models.py",
        "shop/api/schemas.py",
        "shop/api/__init__.py",
    }
    assert targets(graph, "tools/report.py") >= {"src/billing/invoice.py"}


def test_javascript_imports_find_extensions_index_files_and_esm_style() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    assert targets(graph, "web/main.ts") == {
        "web/util.ts",
        "web/components/index.tsx",
        "web/esm.ts",
    }


def test_go_import_links_the_package_directory_but_not_its_tests() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    assert targets(graph, "go/cmd/server/main.go") == {
        "go/internal/store/store.go",
        "go/internal/store/cache.go",
    }
    weights = edges(graph)
    # one import, split evenly over the package's files
    assert weights[("go/cmd/server/main.go", "go/internal/store/store.go")] == IMPORT_WEIGHT / 2


def test_java_import_resolves_class_and_wildcard_package() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    assert targets(graph, "java/src/main/java/com/shop/App.java") == {
        "java/src/main/java/com/shop/model/Item.java",
        "java/src/main/java/com/shop/util/Money.java",
        "java/src/main/java/com/shop/util/Tax.java",
    }


def test_a_name_defined_once_weighs_more_than_a_common_name() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    weights = edges(graph)
    # shop/misc.py uses only "get", defined in three files: a third each
    assert weights[("shop/misc.py", "shop/cache.py")] == pytest.approx(1 / 3)
    # shop/views.py uses "render_page" (defined once) and "get" from templates.py
    assert weights[("shop/views.py", "shop/templates.py")] == pytest.approx(1 + 1 / 3)
    assert (
        weights[("shop/views.py", "shop/templates.py")]
        > weights[("shop/views.py", "shop/cache.py")]
    )


def test_imports_weigh_more_than_a_matching_name() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    weights = edges(graph)
    # report.py imports billing.invoice and uses make_invoice from it
    assert weights[("tools/report.py", "src/billing/invoice.py")] == pytest.approx(
        1 + IMPORT_WEIGHT
    )
    # and uses Order from models.py without importing it
    assert weights[("tools/report.py", "shop/models.py")] == pytest.approx(1.0)


def test_own_and_short_names_draw_no_edge() -> None:
    symbols = {
        "a.py": fs("a.py", defines=("helper", "ok"), uses=("helper", "ok")),
        "b.py": fs("b.py", defines=("helper", "ok")),
    }
    graph = FileGraph(symbols)
    assert graph.graph.number_of_edges() == 0


def test_definitions_and_references_lookups() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    found = graph.definitions("get")
    assert [path for path, _ in found] == ["shop/cache.py", "shop/models.py", "shop/templates.py"]
    assert all(d.name == "get" and d.signature == "def get():" for _, d in found)
    assert graph.references("get") == ["shop/misc.py", "shop/views.py"]
    assert graph.definitions("nowhere") == []
    assert graph.references("nowhere") == []


def test_personalised_rank_puts_the_seeds_neighbours_above_unrelated_files() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    ranked = graph.rank({"tools/report.py": 1.0})
    order = list(ranked)
    assert order[0] == "tools/report.py"
    assert order.index("src/billing/invoice.py") < order.index("lonely/b.py")
    assert order.index("shop/models.py") < order.index("web/util.ts")
    assert sum(ranked.values()) == pytest.approx(1.0)


def test_seed_names_start_the_walk_at_the_defining_files() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    ranked = graph.rank(seed_names=["formatPrice"])
    assert next(iter(ranked)) == "web/util.ts"
    unseeded = graph.rank()
    assert next(iter(unseeded)) != "web/util.ts"


def test_rank_without_seeds_favours_files_many_others_use() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    ranked = graph.rank({"no/such/file.py": 1.0}, seed_names=["no_such_name"])
    assert ranked == graph.rank()
    assert ranked["shop/models.py"] > ranked["docs/guide.md"]


def test_rank_is_deterministic_and_empty_graph_ranks_nothing() -> None:
    assert FileGraph(repo(), OTHER_PATHS).rank({"shop/views.py": 1}) == FileGraph(
        dict(reversed(list(repo().items()))), list(reversed(OTHER_PATHS))
    ).rank({"shop/views.py": 1})
    assert FileGraph({}).rank() == {}


def test_proximity_halves_with_each_hop_in_either_direction() -> None:
    graph = FileGraph(repo(), OTHER_PATHS)
    near = graph.proximity(["shop/api/schemas.py"])
    assert near["shop/api/schemas.py"] == 1.0
    assert near["shop/api/handlers.py"] == 0.5  # an edge *into* the seed counts too
    assert near["shop/models.py"] == 0.25
    assert "lonely/a.py" not in near
    assert "tools/report.py" not in near  # three hops away
    assert graph.proximity(["shop/api/schemas.py"], max_depth=0) == {"shop/api/schemas.py": 1.0}
    assert graph.proximity(["not/here.py"]) == {}


def assert_same_graph(updated: FileGraph, rebuilt: FileGraph) -> None:
    assert updated.paths == rebuilt.paths
    assert set(updated.graph.nodes) == set(rebuilt.graph.nodes)
    assert edges(updated) == edges(rebuilt)
    assert updated.rank({"shop/views.py": 1.0}) == rebuilt.rank({"shop/views.py": 1.0})
    for name in ("get", "Order", "render_page", "formatPrice", "Store", "Money"):
        assert updated.definitions(name) == rebuilt.definitions(name)
        assert updated.references(name) == rebuilt.references(name)


def test_incremental_update_equals_a_rebuild() -> None:
    symbols = repo()
    graph = FileGraph(symbols, OTHER_PATHS)

    # 1. a definition moves: "get" leaves cache.py, so every user of "get" re-weighs
    symbols["shop/cache.py"] = fs("shop/cache.py", defines=("fetch",))
    graph.update({"shop/cache.py": symbols["shop/cache.py"]})
    assert_same_graph(graph, FileGraph(symbols, OTHER_PATHS))
    assert ("shop/misc.py", "shop/cache.py") not in edges(graph)

    # 2. a file is deleted: edges into it go, and imports of it no longer resolve
    del symbols["web/util.ts"]
    graph.update({}, ["web/util.ts"])
    assert_same_graph(graph, FileGraph(symbols, OTHER_PATHS))

    # 3. a file is added that an existing import now resolves to (util/index.ts)
    symbols["web/util/index.ts"] = fs("web/util/index.ts", "typescript", defines=("formatPrice",))
    graph.update({"web/util/index.ts": symbols["web/util/index.ts"]})
    assert_same_graph(graph, FileGraph(symbols, OTHER_PATHS))
    assert "web/util/index.ts" in targets(graph, "web/main.ts")

    # 4. a rename (D + A) and a new unparsed path in one update
    moved = fs("shop/core/models.py", defines=("Order", "load_order", "get"))
    del symbols["shop/models.py"]
    symbols[moved.path] = moved
    graph.update({moved.path: moved}, ["shop/models.py"], paths=["CHANGELOG.md"])
    assert_same_graph(graph, FileGraph(symbols, [*OTHER_PATHS, "CHANGELOG.md"]))

    # 5. an unparsed path is removed
    graph.update({}, ["docs/guide.md"])
    assert_same_graph(graph, FileGraph(symbols, ["README.md", "CHANGELOG.md"]))


def test_symbols_under_the_wrong_key_are_refused() -> None:
    with pytest.raises(IndexError_, match="key must be the file's own path"):
        FileGraph({"a.py": fs("b.py")})
