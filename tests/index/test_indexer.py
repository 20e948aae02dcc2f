"""The index of a real repository: full build, incremental update, reopen, hybrid search."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from appliance.index.embed import OnnxMiniLm
from appliance.index.indexer import RepoIndex, embedding_text
from appliance.index.search import search
from appliance.index.types import Embedder
from appliance.index.vectors import VectorStore
from appliance.repos.mirror import GitRepo, Mirrors
from tests.gitrepos import Upstream, plain_git
from tests.index.hashing_embedder import HashingEmbedder
from tests.index.shop_repo import FILES, TRACEBACK, arm_traps, make_shop


@pytest.fixture
def shop(tmp_path: Path) -> Upstream:
    return make_shop(tmp_path)


@pytest.fixture
def mirror(tmp_path: Path, shop: Upstream) -> GitRepo:
    return Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)


def open_index(
    tmp_path: Path,
    name: str = "shop",
    *,
    vectors: VectorStore | None = None,
    embedder: Embedder | None = None,
) -> RepoIndex:
    return RepoIndex(name, tmp_path / "var" / "index" / name, vectors=vectors, embedder=embedder)


QUERIES = ("order total", "which VAT rate do taxes use", "refund", TRACEBACK)


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
        "search": [search(index, q, 5) for q in QUERIES],  # paths, order, spans and reasons
    }


def vector_ids(vectors: VectorStore, repo: str) -> list[str]:
    return sorted(vectors.collection(repo).get(include=[])["ids"])


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
    assert "shop/cli.py" in index.paths()  # committed as main.py, then git mv'd
    assert "shop/main.py" not in index.paths()
    again = index.update(mirror, "main")
    assert again.mode == "unchanged"
    index.close()


def test_incremental_update_equals_a_full_rebuild(
    tmp_path: Path, shop: Upstream, mirror: GitRepo
) -> None:
    vectors = VectorStore(tmp_path / "var" / "index" / "chroma")
    embedder = HashingEmbedder()
    index = open_index(tmp_path, vectors=vectors, embedder=embedder)
    index.update(mirror, "main")
    index.embed_pending()
    plain_git(shop.work, "mv", "shop/pricing.py", "shop/tax.py")  # a rename, with a change
    shop.commit(
        {
            "shop/tax.py": (shop.work / "shop/tax.py")
            .read_text()
            .replace('"""Prices, discounts and taxes."""', '"""Discounts and taxes."""')
            .replace('Decimal("0.20")', 'Decimal("0.21")'),
            "shop/orders.py": (shop.work / "shop/orders.py")
            .read_text()
            .replace("from shop.pricing import", "from shop.tax import"),
            "web/static/format.js": None,
            "docs/refunds.md": "# Refunds\n\nA refund reverses an order's total.\n",
        },
        "move pricing to tax.py, drop the formatter, document refunds",
    )
    changes = plain_git(shop.work, "diff", "--name-status", "-M", "HEAD^", "HEAD")
    assert "shop/pricing.py\tshop/tax.py" in changes  # git sees a rename (R0xx)
    Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)
    report = index.update(mirror, "main")
    assert report.mode == "incremental"
    assert report.indexed == 3  # tax.py, orders.py, refunds.md
    assert report.removed == 2  # pricing.py, format.js
    index.embed_pending()
    incremental = snapshot(index)
    index.close()

    rebuilt = open_index(tmp_path, "shop-full", vectors=vectors, embedder=embedder)
    assert rebuilt.update(mirror, "main").mode == "full"
    rebuilt.embed_pending()
    assert snapshot(rebuilt) == incremental
    assert vector_ids(vectors, "shop-full") == vector_ids(vectors, "shop")
    assert vectors.indexed_paths("shop") == vectors.indexed_paths("shop-full")
    assert "shop/tax.py" in vectors.indexed_paths("shop")
    assert not {"shop/pricing.py", "web/static/format.js"} & vectors.indexed_paths("shop")
    assert [p for p, _ in rebuilt.definitions("with_vat")] == ["shop/tax.py"]
    assert [p for p, _ in rebuilt.definitions("apply_discount")] == ["shop/tax.py"]
    rebuilt.close()
    vectors.close()


def test_indexing_runs_no_hook_or_filter_of_the_repository_or_the_host(
    tmp_path: Path, shop: Upstream, mirror: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "trap-ran"
    arm_traps(mirror.path, marker)  # in the mirror's own config and hooks
    home = tmp_path / "home"
    home.mkdir()
    command = mirror.path / "shopmark-filter"
    (home / ".gitconfig").write_text(  # and in the host user's
        f'[filter "shopmark"]\n\tsmudge = {command}\n\tclean = {command}\n'
        f'[diff "shopmark"]\n\ttextconv = {command}\n'
        f"[core]\n\thooksPath = {mirror.path / 'hooks'}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))

    # control: plain git runs the filter and the reference-transaction hook
    control = ["git", "--git-dir", str(mirror.path)]
    subprocess.run([*control, "cat-file", "--filters", "main:shop/orders.py"], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([*control, "update-ref", "refs/control", "main"], check=True)
    assert marker.read_text().count("\n") >= 2
    subprocess.run([*control, "update-ref", "-d", "refs/control"], check=True)
    marker.unlink()

    index = open_index(tmp_path)
    index.update(mirror, "main")
    plain_git(shop.work, "mv", "shop/models.py", "shop/records.py")
    shop.commit(
        {
            "shop/orders.py": (shop.work / "shop/orders.py")
            .read_text()
            .replace("from shop.models import", "from shop.records import")
        },
        "models.py holds records: call it records.py",
    )
    Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)  # a fetch updates refs
    assert index.update(mirror, "main").mode == "incremental"
    assert [p for p, _ in index.definitions("LineItem")] == ["shop/records.py"]
    assert "shop/models.py" not in index.paths()
    assert search(index, "LineItem sku price quantity", 1)[0].path == "shop/records.py"
    assert index.text("shop/orders.py") == (shop.work / "shop/orders.py").read_text()
    assert not marker.exists()
    index.close()


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
    assert "defines compute_total" in top.reasons
    # the innermost frame (the last one Python prints) is where the error is raised
    assert top.symbol == "compute_total"
    assert (top.line_start or 0) <= 9 <= (top.line_end or 0)  # orders.py line 9
    assert [h.path for h in hits[:2]] == ["shop/orders.py", "shop/cli.py"]
    assert hits[1].symbol == "main"
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


LIBRARY_INNERMOST = """Traceback (most recent call last):
  File "/srv/shop/shop/cli.py", line 9, in main
    order = place_order(argv[0], [])
  File "/srv/shop/shop/orders.py", line 16, in place_order
    total = float(apply_discount(total, discount))
  File "/srv/shop/shop/pricing.py", line 10, in apply_discount
    return amount * (100 - percent) / 100
  File "/usr/lib/python3.12/_pydecimal.py", line 1234, in __mul__
    other = _convert_other(other)
TypeError: unsupported operand type(s) for *: 'float' and 'decimal.Decimal'
"""


def test_the_repositorys_innermost_frame_ranks_first(tmp_path: Path, mirror: GitRepo) -> None:
    index = open_index(tmp_path)
    index.update(mirror, "main")
    hits = search(index, LIBRARY_INNERMOST, 3)
    assert [h.path for h in hits] == ["shop/pricing.py", "shop/orders.py", "shop/cli.py"]
    assert (hits[0].symbol, hits[0].line_start, hits[0].line_end) == ("apply_discount", 8, 10)
    assert hits[1].symbol == "place_order"
    assert (hits[1].line_start or 0) <= 16 <= (hits[1].line_end or 0)
    index.close()


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_an_update_during_the_embedding_fill_leaves_no_stale_vector(
    tmp_path: Path, shop: Upstream, mirror: GitRepo, full: bool
) -> None:
    vectors = VectorStore(tmp_path / "var" / "index" / "chroma")
    index: RepoIndex | None = None

    def update_meanwhile(batch: int) -> None:
        """While the first batch is being embedded, a push changes a line and the index
        follows it (from another thread, as the service's refresh does)."""
        if batch != 1:
            return
        assert index is not None
        old = str(FILES["shop/pricing.py"])
        shop.commit({"shop/pricing.py": old.replace('"0.20"', '"0.25"')}, "raise VAT")
        Mirrors(tmp_path / "var" / "mirrors").ensure("shop", shop.url)
        updater = threading.Thread(
            target=index.update, args=(mirror, "main"), kwargs={"full": full}
        )
        updater.start()
        updater.join(timeout=60)
        assert not updater.is_alive()
        assert index.commit == mirror.resolve("main")

    embedder = HashingEmbedder(before_batch=update_meanwhile)
    index = open_index(tmp_path, vectors=vectors, embedder=embedder)
    index.update(mirror, "main")
    [vat] = [c for c in index.store.chunks() if 'VAT_RATE = Decimal("0.20")' in c.text]
    index.embed_pending(batch=100)  # one batch holds every chunk, the VAT one too

    assert index.status().embeddings_complete
    chunks = {c.id: c for c in index.store.chunks()}
    assert 'VAT_RATE = Decimal("0.25")' in chunks[vat.id].text  # same lines, same id
    stored = vectors.collection("shop").get(include=["embeddings"])
    assert sorted(stored["ids"]) == sorted(chunks)
    assert stored["embeddings"] is not None
    for chunk_id, vector in zip(stored["ids"], stored["embeddings"], strict=True):
        expected = embedder.vector(embedding_text(chunks[chunk_id]))
        assert list(vector) == pytest.approx(expected, abs=1e-6), chunk_id
    hits = search(index, 'VAT_RATE = Decimal("0.25")', 1)
    assert hits[0].path == "shop/pricing.py"
    index.close()
    vectors.close()


def test_a_module_level_frame_gets_the_chunk_around_its_line(
    tmp_path: Path, mirror: GitRepo
) -> None:
    index = open_index(tmp_path)
    index.update(mirror, "main")
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/shop/cli.py", line 15, in <module>\n'
        "    sys.exit(main(sys.argv[1:]))\n"
        "KeyboardInterrupt\n"
    )
    [top] = search(index, trace, 1)
    assert top.path == "shop/cli.py"
    assert (top.line_start or 0) <= 15 <= (top.line_end or 0)
    index.close()
