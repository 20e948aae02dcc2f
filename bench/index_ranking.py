"""Timings of the index's ranking stages on a real codebase: file graph, PageRank, repo map
and BM25.

    .venv/bin/python -m bench.index_ranking [ROOT] [--max-files N]

ROOT defaults to the ``transformers`` package of the virtualenv (~2,900 Python files,
~52 MB: heavier than ordinary source). Files are parsed with the real tree-sitter parser
first (not timed). Each figure is the best of a few runs; nothing fails on timing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from appliance.index.graph import FileGraph
from appliance.index.lexical import Bm25Index, file_document
from appliance.index.parse import parse_file
from appliance.index.repomap import render_repo_map
from appliance.index.types import FileSymbols, Language

DEFAULT_ROOT = Path(sys.prefix) / "lib/python3.11/site-packages/transformers"
LANGUAGES: dict[str, Language] = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
}
QUERIES = [
    "attention mask padding",
    "BertModel forward",
    "load pretrained tokenizer from the hub",
    "rotary position embedding",
    "get_input_embeddings",
    "quantization config bitsandbytes",
    "beam search logits processor",
    "save_pretrained safetensors sharding",
]


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--max-files", type=int, default=3000)
    args = parser.parse_args()

    sources = sorted(p for p in args.root.rglob("*") if p.suffix in LANGUAGES and p.is_file())
    sources = sources[: args.max_files]
    texts = {str(p.relative_to(args.root)): p.read_bytes() for p in sources}
    symbols: dict[str, FileSymbols] = {}
    for path, data in texts.items():
        symbols[path] = parse_file(path, LANGUAGES[Path(path).suffix], data)
    refs = sum(len(fs.references) for fs in symbols.values())
    size = sum(len(d) for d in texts.values()) / 1e6
    print(f"{args.root}: {len(texts)} files, {size:.1f} MB, {refs} references")

    graph = FileGraph(symbols)
    print(f"graph build         {best_of(3, lambda: FileGraph(symbols)):.3f} s", end="")
    print(f"  ({graph.graph.number_of_edges()} edges)")
    fresh = [FileGraph(symbols) for _ in range(3)]
    print(f"rank (plain, cold)  {best_of(3, lambda: fresh.pop().rank()):.3f} s")
    seeded = best_of(5, lambda: graph.rank({sorted(symbols)[0]: 1.0}))
    print(f"rank (seeded, warm) {seeded:.3f} s")
    one = sorted(symbols)[len(symbols) // 2]
    print(f"update 1 file       {best_of(3, lambda: graph.update({one: symbols[one]})):.3f} s")
    ranked = graph.rank()
    repo_map = best_of(3, lambda: render_repo_map(ranked, symbols, token_budget=2048))
    print(f"repo map 2k tokens  {repo_map:.3f} s")

    docs = [
        (path, file_document(path, data.decode("utf-8", "replace"))) for path, data in texts.items()
    ]
    index = Bm25Index()
    print(f"bm25 build          {best_of(3, lambda: index.build(docs)):.3f} s")
    latencies = []
    for _ in range(5):
        for query in QUERIES:
            start = time.perf_counter()
            index.search(query, 20)
            latencies.append(time.perf_counter() - start)
    print(
        f"bm25 query          median {statistics.median(latencies) * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms"
    )
    path, text = docs[0]
    print(f"bm25 update 1 doc   {best_of(3, lambda: index.update({path: text + ' x'})):.3f} s")
    with tempfile.TemporaryDirectory() as directory:
        print(f"bm25 save           {best_of(3, lambda: index.save(directory)):.3f} s")
        print(f"bm25 load           {best_of(3, lambda: Bm25Index.load(directory)):.3f} s")


if __name__ == "__main__":
    main()
