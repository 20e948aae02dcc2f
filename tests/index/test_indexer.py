"""The index of a real repository: full build, incremental update, reopen, hybrid search."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.index.embed import OnnxMiniLm
from appliance.index.indexer import RepoIndex
from appliance.index.search import search
from appliance.index.vectors import VectorStore
from appliance.repos.mirror import GitRepo, Mirrors
from tests.gitrepos import Upstream
from tests.index.shop_repo import TRACEBACK, make_shop


@pytest.fixture
def shop(tmp_path: Path) -> Upstream:
    return make_shop(tmp_path)


@pytest.fixture
def mirror(tmp_path: Path, shop: Upstream) -> GitRepo:
    return Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)


def open_index(tmp_path: Path, name: str = "shop") -> RepoIndex:
    return RepoIndex(name, tmp_path / "var" / "index" / name)


def snapshot(index: RepoIndex) -> dict[str, object]:
    """Everything a search depends on, comparable across two indexes."""
    return {
        "commit": index.commit,
        "files": index.store.files(),
        "symbols": index.store.symbols(),
        "chunks": [(c.id, c.symbol, c.text) for c in index.store.chunks()],
        "rank": index.graph.rank(),
        "bm25": [index.files_bm25.search(q, 20) for q in ("order total", "price", "invoice")],
        "bm25_chunks": [index.chunks_bm25.search(q, 20) for q in ("order total", "vat")],
    }


def test_full_index_catalogues_parses_and_skips(tmp_path: Path, mirror: GitRepo) -> None:
    index = open_index(tmp_path)
    stages: set[str] = set()
    report = index.update(mirror, "main", progress=lambda stage, done, total: stages.add(stage))
    assert report.mode == "full"
    assert {"catalog", "parse"} <= stages
    skipped = {f.path: f.skipped for f in index.store.files() if f.skipped}
    assert skipped == {
        "assets/logo.png": "binary",
        "etc-link": "symlink",
        "web/static/vendor.min.js": "vendored",
    }
    [(path, definition)] = index.definitions("compute_total")
    assert path == "shop/orders.py"
    assert definition.signature == "def compute_total(items: list[LineItem]) -> float:"
    assert [p for p, _ in index.definitions("Render")] == ["invoices/invoice.go"]
    assert index.references("formatPrice") == ["web/static/cart.js"]
    again = index.update(mirror, "main")
    assert again.mode == "unchanged"
    index.close()


def test_incremental_update_equals_a_full_rebuild(
    tmp_path: Path, shop: Upstream, mirror: GitRepo
) -> None:
    index = open_index(tmp_path)
    index.update(mirror, "main")
    shop.commit(
        {
            "shop/pricing.py": None,  # renamed below, with a change
            "shop/tax.py": '"""Taxes."""\n\nfrom decimal import Decimal\n\n'
            "VAT_RATE = Decimal('0.21')\n\n\ndef with_vat(amount):\n    return amount * 2\n",
            "shop/orders.py": (shop.work / "shop/orders.py")
            .read_text()
            .replace(
                "from shop.pricing import apply_discount, with_vat", "from shop.tax import with_vat"
            ),
            "web/static/format.js": None,
            "docs/refunds.md": "# Refunds\n\nA refund reverses an order's total.\n",
        },
        "move VAT to its own module, drop the formatter, document refunds",
    )
    Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)
    report = index.update(mirror, "main")
    assert report.mode == "incremental"
    assert report.indexed == 3  # tax.py, orders.py, refunds.md
    assert report.removed == 2  # pricing.py, format.js
    incremental = snapshot(index)
    index.close()

    rebuilt = open_index(tmp_path, "shop-full")
    assert rebuilt.update(mirror, "main").mode == "full"
    assert snapshot(rebuilt) == incremental
    assert [p for p, _ in rebuilt.definitions("with_vat")] == ["shop/tax.py"]
    assert rebuilt.definitions("apply_discount") == []
    rebuilt.close()


def test_a_reopened_index_searches_without_git(tmp_path: Path, mirror: GitRepo) -> None:
    first = open_index(tmp_path)
    first.update(mirror, "main")
    expected = search(first, "where is the order total computed", 5)
    first.close()
    reopened = open_index(tmp_path)
    assert reopened.commit == mirror.resolve("main")
    assert search(reopened, "where is the order total computed", 5) == expected
    reopened.close()


def test_a_stack_trace_finds_the_failing_function(tmp_path: Path, mirror: GitRepo) -> None:
    index = open_index(tmp_path)
    index.update(mirror, "main")
    hits = search(index, TRACEBACK, 3)
    top = hits[0]
    assert top.path == "shop/orders.py"
    assert "named in the request" in top.reasons
    assert "defines compute_total" in top.reasons or "defines place_order" in top.reasons
    assert top.line_start is not None
    assert [h.path for h in hits[:2]] == ["shop/orders.py", "shop/cli.py"]
    index.close()


def test_plain_words_and_identifiers_rank_the_right_file(tmp_path: Path, mirror: GitRepo) -> None:
    index = open_index(tmp_path)
    index.update(mirror, "main")
    assert search(index, "which VAT rate do taxes use", 1)[0].path == "shop/pricing.py"
    assert search(index, "renderCart shows the items", 1)[0].path == "web/static/cart.js"
    assert search(index, "invoice text rendering", 1)[0].path == "invoices/invoice.go"
    assert search(index, "zzz qqq nothing like this", 5) == []
    index.close()


@pytest.mark.slow
def test_embeddings_fill_in_behind_lexical_search_and_follow_updates(
    tmp_path: Path, shop: Upstream, mirror: GitRepo, onnx_minilm: OnnxMiniLm
) -> None:
    vectors = VectorStore(tmp_path / "var" / "index" / "chroma")
    index = RepoIndex(
        "shop", tmp_path / "var" / "index" / "shop", vectors=vectors, embedder=onnx_minilm
    )
    index.update(mirror, "main")
    status = index.status()
    assert status.chunks_embedded == 0  # the update itself embeds nothing
    assert status.chunks_total > 0
    lexical = search(index, "total of an order", 3)  # serves before any vector exists
    assert lexical[0].path == "shop/orders.py"
    assert all("vector" not in " ".join(h.reasons) for h in lexical)

    seen: list[tuple[int, int]] = []
    embedded = index.embed_pending(batch=4, progress=lambda s, d, t: seen.append((d, t)))
    assert embedded == status.chunks_total
    assert seen[-1] == (embedded, embedded)
    assert index.status().embeddings_complete
    hits = search(index, "money owed by a customer, printed as a bill", 3)
    assert hits[0].path == "invoices/invoice.go"
    assert any(r.startswith("vector") for r in hits[0].reasons)

    shop.commit({"invoices/invoice.go": None}, "drop invoices")
    Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)
    index.update(mirror, "main")
    assert "invoices/invoice.go" not in vectors.indexed_paths("shop")
    index.close()
    vectors.close()
