"""The index-backed tools as the model calls them, on a real repository's worktree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.index.indexer import RepoIndex
from appliance.repos.mirror import Mirrors
from appliance.repos.worktree import Worktrees
from appliance.tools.index_tools import INDEX_TOOLS
from appliance.tools.registry import ToolContext, ToolRegistry
from tests.index.shop_repo import TRACEBACK, make_shop

TOOLS = ToolRegistry(INDEX_TOOLS)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ToolContext]:
    shop = make_shop(tmp_path)
    mirror = Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)
    index = RepoIndex("shop", tmp_path / "var" / "index" / "shop")
    index.update(mirror, "main")
    worktree = Worktrees(tmp_path / "var" / "worktrees").create(
        mirror, task_id="t1", branch="appliance/20261122-0000-fix", base="main"
    )
    yield ToolContext(worktree=worktree, index=index)
    index.close()


def test_file_summary_lists_imports_and_definitions(ctx: ToolContext) -> None:
    result = TOOLS.call("file_summary", {"path": "shop/orders.py"}, ctx)
    assert result.ok, result.output
    assert "imports: shop.pricing, shop.models" in result.output
    assert "function def compute_total(items: list[LineItem]) -> float:" in result.output
    assert "The order total" in result.output  # docstring's first line


def test_a_file_edited_since_indexing_is_flagged(ctx: ToolContext) -> None:
    path = ctx.worktree / "shop" / "orders.py"
    path.write_text("# edited\n" + path.read_text())
    result = TOOLS.call("file_summary", {"path": "shop/orders.py"}, ctx)
    assert "changed since it was indexed" in result.output


def test_definitions_and_references(ctx: ToolContext) -> None:
    found = TOOLS.call("find_definitions", {"name": "place_order"}, ctx)
    assert found.output.startswith("shop/orders.py:13-")
    refs = TOOLS.call("find_references", {"name": "place_order"}, ctx)
    assert refs.output.startswith("shop/cli.py: line(s) 5")
    missing = TOOLS.call("find_definitions", {"name": "no_such_thing"}, ctx)
    assert "try search_code" in missing.output


def test_semantic_search_and_repo_map(ctx: ToolContext) -> None:
    hits = TOOLS.call("semantic_search", {"query": TRACEBACK, "k": 3}, ctx)
    assert hits.output.splitlines()[0].startswith("shop/orders.py:")
    repo_map = TOOLS.call("repo_map", {"focus": ["compute_total"], "token_budget": 300}, ctx)
    assert repo_map.ok
    assert repo_map.output.splitlines()[0].startswith("shop/")
    assert "compute_total" in repo_map.output
    assert len(repo_map.output) <= 300 * 4


def test_paths_are_refused_like_every_tool(ctx: ToolContext) -> None:
    result = TOOLS.call("file_summary", {"path": "../../etc/passwd"}, ctx)
    assert not result.ok
    assert "outside" in result.output or ".." in result.output
    linked = TOOLS.call("file_summary", {"path": "etc-link/passwd"}, ctx)
    assert not linked.ok


def test_without_an_index_the_tools_say_what_to_use_instead(tmp_path: Path) -> None:
    result = TOOLS.call("find_definitions", {"name": "x"}, ToolContext(worktree=tmp_path))
    assert not result.ok
    assert "search_code" in result.output
