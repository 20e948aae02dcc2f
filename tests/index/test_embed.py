"""Embedders with the real MiniLM files, a real ONNX export and a real HTTP server."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.errors import ConfigError, IndexError_
from appliance.index.embed import (
    OnnxMiniLm,
    OpenAIEmbedder,
    TorchMiniLm,
    cached_export,
    make_embedder,
    minilm_dir,
)
from tests.servers import free_port

STDLIB_SOURCES = ["json/decoder.py", "csv.py", "shutil.py", "textwrap.py", "argparse.py"]

# Small, clearly different functions and the question a developer would ask to find each.
FUNCTIONS = {
    "sha256 of a file": (
        "def file_digest(path):\n    h = hashlib.sha256()\n"
        "    with open(path, 'rb') as f:\n        for block in iter(lambda: f.read(65536), b''):\n"
        "            h.update(block)\n    return h.hexdigest()\n"
    ),
    "read rows from a csv file": (
        "def load_rows(path):\n    with open(path, newline='') as f:\n"
        "        return [row for row in csv.DictReader(f)]\n"
    ),
    "send an http request and retry on failure": (
        "def fetch(url, attempts=3):\n    for attempt in range(attempts):\n        try:\n"
        "            return requests.get(url, timeout=10)\n"
        "        except requests.ConnectionError:\n"
        "            time.sleep(2 ** attempt)\n    raise RuntimeError('unreachable')\n"
    ),
    "parse command line arguments": (
        "def parse_args(argv):\n    parser = argparse.ArgumentParser(prog='tool')\n"
        "    parser.add_argument('--verbose', action='store_true')\n"
        "    parser.add_argument('paths', nargs='+')\n    return parser.parse_args(argv)\n"
    ),
    "user password hashing and login check": (
        "class Users:\n    def login(self, name, password):\n        user = self.db.find(name)\n"
        "        return user and argon2.verify(user.password_hash, password)\n"
    ),
}


def code_chunks(count: int, lines: int = 40) -> list[str]:
    """Real code: consecutive 40-line spans of a few standard-library modules."""
    root = Path(json.__file__).parent.parent
    chunks: list[str] = []
    for name in STDLIB_SOURCES:
        text = (root / name).read_text().splitlines()
        for start in range(0, len(text) - lines, lines * 3):
            span = "\n".join(text[start : start + lines])
            if len(span.split()) > 80:
                chunks.append(span)
    assert len(chunks) >= count
    return chunks[:count]


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray[Any, Any]:
    return np.asarray(np.sum(np.asarray(a) * np.asarray(b), axis=1))


# ---------------------------------------------------------------------------- MiniLM


@pytest.mark.slow
def test_onnx_vectors_agree_with_torch_on_code(
    onnx_minilm: OnnxMiniLm, torch_minilm: TorchMiniLm
) -> None:
    chunks = code_chunks(24)
    fast, slow = onnx_minilm.embed(chunks), torch_minilm.embed(chunks)
    assert len(fast) == len(chunks)
    assert {len(v) for v in fast} == {onnx_minilm.dim} == {384}
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    agreement = cosines(fast, slow)
    assert agreement.min() >= 0.98, agreement


@pytest.mark.slow
@pytest.mark.parametrize("which", ["onnx", "torch"])
def test_query_finds_the_matching_function_first(
    which: str, onnx_minilm: OnnxMiniLm, torch_minilm: TorchMiniLm
) -> None:
    embedder = onnx_minilm if which == "onnx" else torch_minilm
    questions = list(FUNCTIONS)
    code = np.asarray(embedder.embed([FUNCTIONS[q] for q in questions]))
    asked = np.asarray(embedder.embed(questions))
    best = (asked @ code.T).argmax(axis=1)
    assert [questions[i] for i in best] == questions


@pytest.mark.slow
def test_length_sorted_batches_come_back_in_input_order(onnx_minilm: OnnxMiniLm) -> None:
    # long, short, long, empty...: sorting by length reorders them inside embed()
    texts = [*code_chunks(3), "x = 1", "", "def f():\n    pass"]
    texts = [texts[i] for i in (0, 3, 1, 4, 2, 5)]
    together = np.asarray(onnx_minilm.embed(texts))
    alone = np.asarray([onnx_minilm.embed([t])[0] for t in texts])
    similarity = together @ alone.T
    # int8 activations are scaled per batch, so batch mates move a vector slightly
    # (cosine ~0.97-0.999 with itself); a text swapped with another would score far lower
    assert list(similarity.argmax(axis=1)) == list(range(len(texts)))
    assert np.diag(similarity).min() > 0.95
    assert onnx_minilm.embed([]) == []


@pytest.mark.slow
def test_texts_longer_than_256_tokens_are_cut_not_refused(onnx_minilm: OnnxMiniLm) -> None:
    long_text = "\n".join(code_chunks(8))
    head = long_text[: len(long_text) // 3]  # well past 256 tokens already
    whole, start = onnx_minilm.embed([long_text, head])
    assert float(np.dot(whole, start)) > 0.999


@pytest.mark.slow
def test_second_construction_uses_the_cached_export(
    onnx_minilm: OnnxMiniLm, model_cache: Path
) -> None:
    model_file = onnx_minilm.model_path / "model.onnx"
    before = model_file.stat().st_mtime_ns
    entries = sorted(model_cache.iterdir())

    again = OnnxMiniLm(model_cache)

    assert again.export_seconds is None
    assert again.model_path == onnx_minilm.model_path
    assert model_file.stat().st_mtime_ns == before
    assert again.name == onnx_minilm.name
    assert sorted(model_cache.iterdir()) == entries  # no new export, no temporary folder


@pytest.mark.slow
def test_changed_model_files_are_exported_again(
    onnx_minilm: OnnxMiniLm, model_cache: Path, tmp_path: Path
) -> None:
    source = minilm_dir()
    copy = tmp_path / "minilm"
    copy.mkdir()
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (copy / name).symlink_to(source / name)
    # same model, different bytes: what a new package version looks like to the cache
    (copy / "config.json").write_text((source / "config.json").read_text() + "\n")

    changed = OnnxMiniLm(model_cache, model_dir=copy)

    assert changed.export_seconds is not None
    assert changed.model_path != onnx_minilm.model_path
    assert changed.name != onnx_minilm.name  # vectors stored under the old name get redone
    assert (onnx_minilm.model_path / "model.onnx").is_file()


def test_concurrent_exports_run_once_and_nobody_sees_half_a_model(tmp_path: Path) -> None:
    runs: list[float] = []

    def slow_export(model_dir: Path, out_dir: Path) -> None:
        runs.append(time.monotonic())
        (out_dir / "model.onnx").write_bytes(b"part")
        time.sleep(0.3)
        (out_dir / "model.onnx").write_bytes(b"whole model")

    results: list[tuple[Path, float | None]] = []

    def construct() -> None:
        results.append(cached_export(tmp_path, minilm_dir(), export=slow_export))

    threads = [threading.Thread(target=construct) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(runs) == 1
    assert len({path for path, _ in results}) == 1
    assert sorted(seconds is None for _, seconds in results) == [False, True, True]
    assert (results[0][0] / "model.onnx").read_bytes() == b"whole model"


def test_a_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken_export(model_dir: Path, out_dir: Path) -> None:
        (out_dir / "model.onnx").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_export(tmp_path, minilm_dir(), export=broken_export)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_an_incomplete_model_folder_is_refused_with_what_is_missing(tmp_path: Path) -> None:
    shutil.copy(minilm_dir() / "config.json", tmp_path / "config.json")
    with pytest.raises(ConfigError, match=r"lacks model\.safetensors, tokenizer\.json"):
        TorchMiniLm(model_dir=tmp_path)


# ---------------------------------------------------------------------------- registry


@pytest.mark.slow
def test_make_embedder_builds_the_default_onnx_one(
    onnx_minilm: OnnxMiniLm, model_cache: Path
) -> None:
    made = make_embedder(cache_dir=model_cache)
    assert isinstance(made, OnnxMiniLm)
    assert made.name == onnx_minilm.name


def test_make_embedder_refuses_unknown_kinds_and_options(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    with pytest.raises(ConfigError, match="minilm-onnx, minilm-torch, openai"):
        make_embedder("word2vec", cache_dir=cache)
    with pytest.raises(ConfigError, match="bad options for embedder 'openai'"):
        make_embedder("openai", cache_dir=cache, base_url="http://x/v1")  # no model
    with pytest.raises(ConfigError, match="bad options for embedder 'minilm-onnx'"):
        make_embedder("minilm-onnx", cache_dir=cache, colour="red")
    assert not cache.exists()  # refused before any export started


def test_make_embedder_builds_an_openai_one(tmp_path: Path) -> None:
    made = make_embedder("openai", cache_dir=tmp_path, base_url="http://gpu:8000/v1", model="m")
    assert isinstance(made, OpenAIEmbedder)
    assert made.name == "openai:m"


# ---------------------------------------------------------------------------- OpenAI-compatible


class EmbeddingServer:
    """A tiny OpenAI-compatible /v1/embeddings server; the model name picks its behaviour."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                status, reply = server.answer(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path != "/v1/embeddings":
            return 404, {"error": "not found"}
        model, inputs = body["model"], body["input"]
        if model == "crashing":
            return 500, {"error": {"message": "CUDA out of memory"}}
        if model == "malformed":
            # base64 strings where float lists were asked for
            return 200, {"data": [{"index": i, "embedding": "AAAA"} for i in range(len(inputs))]}
        if model == "forgetful":
            return 200, {"data": [{"index": 0, "embedding": [1.0, 2.0, 3.0]}]}
        # unnormalised vectors that encode the text's length, listed in reverse order
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
            for i, text in enumerate(inputs)
        ]
        return 200, {"object": "list", "model": model, "data": data[::-1]}


@pytest.fixture
def embedding_server() -> Iterator[EmbeddingServer]:
    server = EmbeddingServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join()


def test_openai_embedder_batches_orders_and_normalises(embedding_server: EmbeddingServer) -> None:
    embedder = OpenAIEmbedder(embedding_server.url, "code-embed", "s3cret-key", batch_size=2)
    texts = ["a", "bbb", "cc", "dddd", ""]

    vectors = embedder.embed(texts)

    assert len(embedding_server.requests) == 3
    assert embedding_server.requests[0] == {"model": "code-embed", "input": ["a", "bbb"]}
    assert all(h["Authorization"] == "Bearer s3cret-key" for h in embedding_server.headers)
    expected = [np.array([len(t), 1.0, 0.0]) / np.hypot(len(t), 1.0) for t in texts]
    assert np.allclose(vectors, expected, atol=1e-6)
    assert embedder.dim == 3
    assert len(embedding_server.requests) == 3  # dim came from the replies, no extra call


def test_openai_embedder_learns_its_dimension_when_asked_first(
    embedding_server: EmbeddingServer,
) -> None:
    embedder = OpenAIEmbedder(embedding_server.url, "code-embed")
    assert embedder.dim == 3
    assert "Authorization" not in embedding_server.headers[0]


def test_openai_server_error_is_reported_without_the_key(
    embedding_server: EmbeddingServer,
) -> None:
    embedder = OpenAIEmbedder(embedding_server.url, "crashing", "s3cret-key")
    with pytest.raises(IndexError_, match="answered HTTP 500") as caught:
        embedder.embed(["def f(): pass"])
    assert "CUDA out of memory" in caught.value.message
    assert "s3cret-key" not in caught.value.message
    assert "s3cret-key" not in repr(embedder)


@pytest.mark.parametrize(
    ("model", "why"),
    [("malformed", "an item has no 'embedding' list"), ("forgetful", "1 embeddings for 2 inputs")],
)
def test_openai_malformed_reply_is_a_clear_error(
    embedding_server: EmbeddingServer, model: str, why: str
) -> None:
    embedder = OpenAIEmbedder(embedding_server.url, model)
    with pytest.raises(IndexError_, match=f"malformed reply for model '{model}': {why}"):
        embedder.embed(["one", "two"])


def test_openai_dimension_change_is_refused(embedding_server: EmbeddingServer) -> None:
    embedder = OpenAIEmbedder(embedding_server.url, "code-embed", dim=768)
    with pytest.raises(IndexError_, match=r"returned 3-dimensional vectors .* 768 were expected"):
        embedder.embed(["x"])


def test_openai_unreachable_server_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    embedder = OpenAIEmbedder(url, "code-embed", timeout=5)
    with pytest.raises(IndexError_, match="could not be reached"):
        embedder.embed(["x"])


def test_openai_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        OpenAIEmbedder("gpu:8000/v1", "code-embed")


@pytest.mark.slow
def test_float32_export_matches_torch_exactly(
    model_cache: Path, torch_minilm: TorchMiniLm, onnx_minilm: OnnxMiniLm
) -> None:
    exact = OnnxMiniLm(model_cache, quantize=False)
    chunks = code_chunks(8)

    assert cosines(exact.embed(chunks), torch_minilm.embed(chunks)).min() > 0.9999
    assert exact.name.endswith("/onnx-fp32")
    assert exact.model_path != onnx_minilm.model_path  # both kept, side by side
