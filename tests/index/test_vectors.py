"""VectorStore over a real embedded Chroma database in tmp_path."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import IndexError_
from appliance.index.embed import OnnxMiniLm
from appliance.index.types import Chunk
from appliance.index.vectors import EmbedderMismatch, VectorStore, collection_name

DIM = 4


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


CHUNKS = [
    Chunk("src/auth.py", 1, 40, "def login(): ...", symbol="login"),
    Chunk("src/auth.py", 41, 90, "def logout(): ...", symbol="logout"),
    Chunk("src/db.py", 1, 60, "class Pool: ..."),
    Chunk("README.md", 1, 30, "# Project"),
]
VECTORS = [unit(1, 0, 0, 0), unit(1, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records (and refuses) every attempt to connect anywhere but this machine."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            attempts.append(address)
            raise OSError(f"test refused a network connection to {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture
def store(tmp_path: Path, no_network: list[Any]) -> Iterator[VectorStore]:
    with VectorStore(tmp_path / "chroma") as opened:
        opened.reset("acme/shop", "test-embedder", DIM)
        yield opened
    assert no_network == []


def test_query_returns_nearest_chunks_with_their_lines(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)

    hits = store.query("acme/shop", unit(1, 0.1, 0, 0), k=2)

    assert [(h.path, h.line_start, h.line_end, h.symbol) for h in hits] == [
        ("src/auth.py", 1, 40, "login"),
        ("src/auth.py", 41, 90, "logout"),
    ]
    assert hits[0].score == pytest.approx(0.995, abs=0.001)
    assert hits[0].score > hits[1].score
    assert all(h.reasons == ["vector"] for h in hits)
    assert store.count("acme/shop") == 4


def test_query_can_be_limited_to_some_files(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)

    hits = store.query("acme/shop", unit(1, 0, 0, 0), k=10, paths=["src/db.py", "README.md"])

    assert sorted(h.path for h in hits) == ["README.md", "src/db.py"]
    assert hits[0].symbol is None
    assert store.query("acme/shop", unit(1, 0, 0, 0), k=10, paths=[]) == []


def test_upserting_the_same_chunk_replaces_it(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)
    store.upsert("acme/shop", CHUNKS[:1], [unit(0, 0, 0, 1)])

    assert store.count("acme/shop") == 4
    best = store.query("acme/shop", unit(0, 0, 0, 1), k=2)
    assert {h.path for h in best} == {"src/auth.py", "README.md"}
    assert best[0].score == pytest.approx(1.0, abs=1e-4)


def test_delete_paths_forgets_every_chunk_of_those_files(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)
    assert store.indexed_paths("acme/shop") == {"src/auth.py", "src/db.py", "README.md"}

    store.delete_paths("acme/shop", ["src/auth.py", "gone.py"])

    assert store.indexed_paths("acme/shop") == {"src/db.py", "README.md"}
    assert store.count("acme/shop") == 2
    assert all(h.path != "src/auth.py" for h in store.query("acme/shop", VECTORS[0], k=5))


def test_repositories_are_kept_apart_even_with_similar_names(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS[:1], VECTORS[:1])
    store.upsert("acme_shop", CHUNKS[2:3], VECTORS[2:3], embedder="test-embedder")
    store.upsert("192.168.1.1", CHUNKS[3:], VECTORS[3:], embedder="test-embedder")

    assert store.indexed_paths("acme/shop") == {"src/auth.py"}
    assert store.indexed_paths("acme_shop") == {"src/db.py"}
    assert store.indexed_paths("192.168.1.1") == {"README.md"}
    assert collection_name("acme/shop") != collection_name("acme_shop")
    for odd in ("a", "ü/ö", "x" * 600, "..", "group/sub/repo.git"):
        name = collection_name(odd)
        assert 3 <= len(name) <= 512, odd
        assert name[0].isalnum(), odd
        assert name[-1].isalnum(), odd


def test_unknown_repository_reads_as_empty(store: VectorStore) -> None:
    assert store.query("nobody", unit(1, 0, 0, 0), k=3) == []
    assert store.count("nobody") == 0
    assert store.indexed_paths("nobody") == set()
    store.delete_paths("nobody", ["a.py"])
    store.drop("nobody")


def test_vectors_persist_across_a_new_store_instance(tmp_path: Path) -> None:
    path = tmp_path / "chroma"
    with VectorStore(path) as first:
        first.upsert("acme/shop", CHUNKS, VECTORS, embedder="test-embedder")

    with VectorStore(path) as second:
        assert second.embedder_of("acme/shop") == ("test-embedder", DIM)
        assert second.count("acme/shop") == 4
        assert second.query("acme/shop", VECTORS[2], k=1)[0].path == "src/db.py"


def test_another_embedders_vectors_are_reported_and_reset_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "chroma"
    with VectorStore(path) as old:
        old.upsert("acme/shop", CHUNKS, VECTORS, embedder="minilm")

    with VectorStore(path) as new:
        assert not new.matches("acme/shop", "code-embed-v2", DIM)
        assert new.matches("acme/shop", "minilm", DIM)
        with pytest.raises(EmbedderMismatch, match=r"made by embedder 'minilm'.*reset"):
            new.query("acme/shop", VECTORS[0], k=1, embedder="code-embed-v2")
        with pytest.raises(EmbedderMismatch):
            new.upsert("acme/shop", CHUNKS[:1], VECTORS[:1], embedder="code-embed-v2")
        with pytest.raises(EmbedderMismatch, match="8-dimensional"):
            new.upsert("acme/shop", CHUNKS[:1], [[0.5] * 8])  # a bigger model's vectors

        new.reset("acme/shop", "code-embed-v2", 8)

        assert new.embedder_of("acme/shop") == ("code-embed-v2", 8)
        assert new.count("acme/shop") == 0
        new.upsert("acme/shop", CHUNKS[:1], [[0.5] * 8])
        assert new.query("acme/shop", [0.5] * 8, k=1)[0].path == "src/auth.py"


def test_storing_into_a_repository_never_reset_says_what_to_do(tmp_path: Path) -> None:
    with VectorStore(tmp_path / "chroma") as vectors:
        assert vectors.embedder_of("acme/shop") is None
        assert not vectors.matches("acme/shop", "minilm", DIM)
        with pytest.raises(IndexError_, match=r"no vectors yet: call reset\(repo, embedder"):
            vectors.upsert("acme/shop", CHUNKS, VECTORS)


def test_vectors_of_the_wrong_length_are_refused(store: VectorStore) -> None:
    with pytest.raises(IndexError_, match="a 3-dimensional vector"):
        store.upsert("acme/shop", CHUNKS[:1], [[1.0, 0.0, 0.0]])
    with pytest.raises(IndexError_, match="2 chunks but 1 vectors"):
        store.upsert("acme/shop", CHUNKS[:2], VECTORS[:1])
    store.upsert("acme/shop", CHUNKS, VECTORS)
    with pytest.raises(IndexError_, match="a 2-dimensional query"):
        store.query("acme/shop", [1.0, 0.0], k=1)


def test_chroma_never_gets_an_embedding_function(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)
    # Chroma's default one would download an ONNX model on first use
    assert store.collection("acme/shop")._embedding_function is None
    assert store.collection("acme/shop").metadata == {
        "repo": "acme/shop",
        "embedder": "test-embedder",
        "dim": DIM,
    }


def test_queries_run_while_a_background_thread_writes(store: VectorStore) -> None:
    store.upsert("acme/shop", CHUNKS, VECTORS)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(40):
                batch = [Chunk(f"gen/f{i}.py", j * 10 + 1, j * 10 + 10, "x") for j in range(25)]
                store.upsert("acme/shop", batch, [unit(0, 1, 0.01 * j, 0.5) for j in range(25)])
                if i % 10 == 9:
                    store.delete_paths("acme/shop", [f"gen/f{i - 1}.py"])
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        assert store.query("acme/shop", VECTORS[2], k=1)[0].path == "src/db.py"
    writer.join()

    assert errors == []
    assert store.count("acme/shop") == 4 + 40 * 25 - 4 * 25


@pytest.mark.slow
def test_real_code_chunks_are_found_by_a_question(
    tmp_path: Path, onnx_minilm: OnnxMiniLm, no_network: list[Any]
) -> None:
    chunks = [
        Chunk(
            "util/hashing.py",
            1,
            6,
            "def file_digest(path):\n    return hashlib.sha256("
            "Path(path).read_bytes()).hexdigest()\n",
            symbol="file_digest",
        ),
        Chunk(
            "cli/args.py",
            1,
            8,
            "def parse_args(argv):\n    parser = argparse.ArgumentParser()"
            "\n    parser.add_argument('--verbose')\n    return parser.parse_args(argv)\n",
            symbol="parse_args",
        ),
        Chunk(
            "io/rows.py",
            1,
            5,
            "def load_rows(path):\n    with open(path) as f:\n"
            "        return list(csv.DictReader(f))\n",
            symbol="load_rows",
        ),
    ]
    with VectorStore(tmp_path / "chroma") as vs:
        vs.reset("acme/shop", onnx_minilm.name, onnx_minilm.dim)
        vs.upsert("acme/shop", chunks, onnx_minilm.embed([c.text for c in chunks]))
        question = onnx_minilm.embed(["read a csv file into a list of dicts"])[0]
        hits = vs.query("acme/shop", question, k=3, embedder=onnx_minilm.name)

    assert hits[0].symbol == "load_rows"
    assert hits[0].score > hits[1].score
    assert no_network == []
