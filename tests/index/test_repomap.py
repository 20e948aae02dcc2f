"""The repo map: ranked files with their key signatures, cut to a token budget."""

from __future__ import annotations

import pytest

from appliance.index.repomap import render_repo_map
from appliance.index.types import Definition, FileSymbols, Reference, SymbolKind
from models.actions import estimate_tokens


def define(
    name: str, kind: SymbolKind, start: int, end: int, signature: str, parent: str | None = None
) -> Definition:
    return Definition(name, kind, start, end, signature, parent=parent)


def symbols() -> dict[str, FileSymbols]:
    files = [
        FileSymbols(
            "shop/orders.py",
            "python",
            definitions=(
                define("Order", "class", 1, 40, "class Order:"),
                define("total", "method", 5, 10, "def total(self) -> int:", "Order"),
                define("_audit", "method", 12, 20, "def _audit(self):", "Order"),
                define(
                    "cancel", "method", 22, 40, "def cancel(\n    self, reason: str\n):", "Order"
                ),
                define("load_order", "function", 42, 50, "def load_order(order_id: int) -> Order:"),
                define("rarely_used", "function", 52, 55, "def rarely_used():"),
            ),
        ),
        FileSymbols(
            "shop/views.py",
            "python",
            definitions=(define("show_order", "function", 1, 9, "def show_order(request):"),),
            references=(Reference("load_order", 3), Reference("Order", 4), Reference("total", 5)),
        ),
        FileSymbols(
            "shop/api.py",
            "python",
            definitions=(define("order_api", "function", 1, 9, "def order_api(request):"),),
            references=(Reference("load_order", 2), Reference("cancel", 6)),
        ),
        FileSymbols(
            "web/app.ts",
            "typescript",
            definitions=(
                define("App", "class", 1, 30, "export class App {"),
                define("render", "method", 3, 12, "render(): string {", "App"),
            ),
        ),
    ]
    return {f.path: f for f in files}


RANKED = {
    "shop/orders.py": 0.4,
    "shop/views.py": 0.2,
    "README.md": 0.15,
    "shop/api.py": 0.15,
    "web/app.ts": 0.1,
}


def test_a_generous_budget_shows_every_file_in_rank_order_with_nesting() -> None:
    text = render_repo_map(RANKED, symbols(), token_budget=10_000)
    assert text == (
        "shop/orders.py:\n"
        "  class Order:\n"
        "    def total(self) -> int:\n"
        "    def _audit(self):\n"
        "    def cancel( self, reason: str ):\n"
        "  def load_order(order_id: int) -> Order:\n"
        "  def rarely_used():\n"
        "shop/views.py:\n"
        "  def show_order(request):\n"
        "README.md\n"  # tied with shop/api.py at 0.15: path order
        "shop/api.py:\n"
        "  def order_api(request):\n"
        "web/app.ts:\n"
        "  export class App {\n"
        "    render(): string {\n"
    )


@pytest.mark.parametrize("budget", [5, 12, 20, 30, 45, 60, 90])
def test_the_map_fits_the_budget_and_keeps_rank_order(budget: int) -> None:
    text = render_repo_map(RANKED, symbols(), token_budget=budget)
    assert estimate_tokens(text) <= budget
    shown = [line.rstrip(":") for line in text.splitlines() if not line.startswith(" ")]
    expected = [p for p in sorted(RANKED, key=lambda p: (-RANKED[p], p)) if p in shown]
    assert shown == expected


def test_a_tight_budget_keeps_the_most_used_definitions_of_the_best_files() -> None:
    # load_order is used by two other files, more than anything else in orders.py
    assert render_repo_map(RANKED, symbols(), token_budget=20) == (
        "shop/orders.py:\n  def load_order(order_id: int) -> Order:\n"
    )
    # then the top file's second best (Order, used once) ties the next file's best
    assert render_repo_map(RANKED, symbols(), token_budget=45) == (
        "shop/orders.py:\n"
        "  class Order:\n"
        "  def load_order(order_id: int) -> Order:\n"
        "shop/views.py:\n"
        "  def show_order(request):\n"
    )


def test_a_budget_fits_as_much_as_it_can() -> None:
    full = render_repo_map(RANKED, symbols(), token_budget=10_000)
    budget = estimate_tokens(full) - 1
    text = render_repo_map(RANKED, symbols(), token_budget=budget)
    assert 0 < estimate_tokens(text) <= budget
    # only the lowest-priority line is gone
    assert len(text.splitlines()) == len(full.splitlines()) - 1


def test_a_method_is_shown_under_its_class() -> None:
    text = render_repo_map(
        {"shop/orders.py": 1.0}, symbols(), token_budget=25, focus_names=["cancel"]
    )
    assert text == "shop/orders.py:\n  class Order:\n    def cancel( self, reason: str ):\n"


def test_focus_names_come_first_whatever_references_say() -> None:
    plain = render_repo_map(RANKED, symbols(), token_budget=30)
    focused = render_repo_map(RANKED, symbols(), token_budget=30, focus_names=["rarely_used"])
    assert "rarely_used" not in plain
    assert "def rarely_used():" in focused


def test_a_custom_token_counter_is_obeyed() -> None:
    def words(text: str) -> int:
        return len(text.split())

    text = render_repo_map(RANKED, symbols(), token_budget=12, count_tokens=words)
    assert 0 < words(text) <= 12
    assert estimate_tokens(text) > 12  # the default estimate would have cut more


def test_files_without_symbols_are_bare_paths() -> None:
    text = render_repo_map({"README.md": 1.0, "LICENSE": 0.5}, {}, token_budget=100)
    assert text == "README.md\nLICENSE\n"


def test_nothing_fits_gives_an_empty_map() -> None:
    assert render_repo_map(RANKED, symbols(), token_budget=0) == ""
    assert render_repo_map(RANKED, symbols(), token_budget=2) == ""
    assert render_repo_map({}, symbols(), token_budget=100) == ""


def test_the_map_is_deterministic() -> None:
    reordered = dict(reversed(list(RANKED.items())))
    maps = {
        render_repo_map(ranked, symbols(), token_budget=40, focus_names=["App"])
        for ranked in (RANKED, reordered, dict(RANKED))
    }
    assert len(maps) == 1
