"""Index benchmark: full build by stage, incremental re-index, embeddings, search latency.

    .venv/bin/python bench/index.py REPO_DIR [--embed-limit N] [--sample N] [--json]

REPO_DIR is a git work tree (its HEAD is indexed) or any directory (committed into a private
git repository in a temporary cache, the directory untouched). Every run starts from an
empty index. Printed, in one run:

1. **Full index**, seconds per stage (catalog, parse = tree-sitter + chunks + BM25 tokens in
   worker processes, store, graph, BM25 matrices, save), files/s and chunks/s, and
   parse + graph + BM25 files/s (target >= 300 on a 2-core machine).
2. **Incremental re-index** after a commit that touches 10 source files (made with git
   plumbing in the mirror: a line appended to each), seconds (target < 2 s).
3. **Embeddings** on ``--sample`` chunks of the repository: the plain-torch all-MiniLM-L6-v2
   baseline and the appliance's ONNX int8 embedder, chunks/s each and the ratio (target
   >= 3x), and the time the ONNX embedder would take for all the repository's chunks at
   that rate; then the background fill of up to ``--embed-limit`` chunks while lexical search
   already answers (the search latency measured *during* that fill is printed too).
4. **Search latency** p50/p95 of the hybrid search over ``--queries`` queries (identifiers
   and docstring phrases of the repository), lexical + graph before embeddings and with
   vectors after (target p50 < 100 ms).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from typing import Any

from appliance.index.indexer import RepoIndex
from appliance.index.search import search
from appliance.repos.mirror import GitRepo
from bench.figures import percentile
from bench.repos import open_repo

SOURCE = (".py", ".js", ".ts", ".go", ".java")


def touch_commit(mirror: GitRepo, base: str, count: int) -> tuple[str, list[str]]:
    """A commit on top of ``base`` appending a line to ``count`` source files."""
    env = {**os.environ, "GIT_INDEX_FILE": str(mirror.path / "bench-index")}
    env |= {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@l",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@l",
    }

    def git(*args: str, stdin: bytes | None = None) -> str:
        out = subprocess.run(
            ["git", "--git-dir", str(mirror.path), *args],
            input=stdin,
            capture_output=True,
            env=env,
            check=True,
        )
        return out.stdout.decode().strip()

    files = [e for e in mirror.tree(base) if e.path.endswith(SOURCE) and e.mode == "100644"]
    chosen = random.Random(7).sample(files, min(count, len(files)))
    git("read-tree", base)
    blobs = mirror.read_blobs([e.blob_sha for e in chosen])
    comment = {".py": b"# touched\n", ".go": b"// touched\n"}
    for entry in chosen:
        marker = comment.get(Path(entry.path).suffix, b"// touched\n")
        sha = git("hash-object", "-w", "--stdin", stdin=blobs[entry.blob_sha] + b"\n" + marker)
        git("update-index", "--cacheinfo", f"100644,{sha},{entry.path}")
    tree = git("write-tree")
    commit = git("commit-tree", tree, "-p", base, "-m", "bench: touch files")
    (mirror.path / "bench-index").unlink(missing_ok=True)
    return commit, [e.path for e in chosen]


def queries_for(index: RepoIndex, n: int) -> list[str]:
    rng = random.Random(11)
    symbols = list(index.store.symbols().values())
    defs = [(fs.path, d) for fs in symbols for d in fs.definitions]
    if not defs:
        return ["main"] * n
    picks = rng.sample(defs, min(n, len(defs)))
    out = []
    for i, (_path, d) in enumerate(picks):
        if i % 2 and d.docstring:
            out.append(d.docstring.splitlines()[0][:120])
        else:
            out.append(f"where is {d.name} used")
    return out


def latencies(index: RepoIndex, queries: list[str]) -> dict[str, float | None]:
    times = []
    for q in queries:
        began = time.perf_counter()
        search(index, q, 10)
        times.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": _r(percentile(times, 50)), "p95_ms": _r(percentile(times, 95))}


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def chunks_per_second(embedder: Any, texts: list[str]) -> float:
    embedder.embed(texts[:8])  # warm up
    began = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo_dir", type=Path)
    parser.add_argument("--sample", type=int, default=256, help="Chunks for the embedder race.")
    parser.add_argument(
        "--embed-limit", type=int, default=2000, help="Chunks to embed in the background fill."
    )
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from appliance.index.embed import OnnxMiniLm, TorchMiniLm
    from appliance.index.indexer import embedding_text
    from appliance.index.vectors import VectorStore

    out: dict[str, Any] = {"repo_dir": str(args.repo_dir), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        cache = Path(tmp)
        models = Path.home() / ".cache" / "appliance-bench" / "models"
        onnx = OnnxMiniLm(models)
        vectors = VectorStore(cache / "chroma")
        mirror, commit, index = open_repo(args.repo_dir, cache, vectors=vectors, embedder=onnx)

        report = index.update(mirror, commit)
        s = report.seconds
        core = s["parse"] + s["graph"] + s["bm25"]
        out["full"] = {
            "files": report.indexed,
            "chunks": report.chunks,
            "seconds": {k: round(v, 2) for k, v in s.items()},
            "files_per_s": round(report.indexed / s["total"], 1),
            "chunks_per_s": round(report.chunks / s["total"], 1),
            "parse_graph_bm25_files_per_s": round(report.indexed / core, 1),
        }

        queries = queries_for(index, args.queries)
        out["search_lexical"] = latencies(index, queries)

        touched, paths = touch_commit(mirror, commit, 10)
        began = time.perf_counter()
        inc = index.update(mirror, touched)
        out["incremental"] = {
            "files_touched": len(paths),
            "mode": inc.mode,
            "seconds": round(time.perf_counter() - began, 3),
            "stages": {k: round(v, 3) for k, v in inc.seconds.items()},
        }

        chunks = index.store.chunks()
        rng = random.Random(3)
        sample = [embedding_text(c) for c in rng.sample(chunks, min(args.sample, len(chunks)))]
        torch_rate = chunks_per_second(TorchMiniLm(), sample)
        onnx_rate = chunks_per_second(onnx, sample)
        out["embeddings"] = {
            "sample_chunks": len(sample),
            "torch_baseline_chunks_per_s": round(torch_rate, 1),
            "onnx_int8_chunks_per_s": round(onnx_rate, 1),
            "ratio": round(onnx_rate / torch_rate, 2),
            "repository_chunks": len(chunks),
            "estimated_full_embedding_s": round(len(chunks) / onnx_rate, 1),
        }

        # background fill while lexical search answers
        stop = threading.Event()
        done_count: list[int] = [0]
        limit = args.embed_limit

        def fill() -> None:
            def progress(stage: str, done: int, total: int) -> None:
                done_count[0] = done
                if done >= limit:
                    stop.set()

            index.embed_pending(progress=progress, stop=stop)

        began = time.perf_counter()
        filler = threading.Thread(target=fill)
        filler.start()
        during = latencies(index, queries[: max(5, len(queries) // 4)])
        filler.join()
        fill_s = time.perf_counter() - began
        out["background_fill"] = {
            "chunks": done_count[0],
            "seconds": round(fill_s, 1),
            "chunks_per_s": round(done_count[0] / fill_s, 1) if fill_s else None,
            "search_during_fill": during,
        }
        out["search_hybrid_with_vectors"] = latencies(index, queries)
        index.close()
        vectors.close()

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    f = out["full"]
    print(f"repository: {args.repo_dir} ({out['cores']} cores)")
    print(
        f"full index: {f['files']} files, {f['chunks']} chunks in {f['seconds']['total']} s "
        f"({f['files_per_s']} files/s, {f['chunks_per_s']} chunks/s)"
    )
    print("  stages: " + ", ".join(f"{k} {v}s" for k, v in f["seconds"].items()))
    print(f"  parse + graph + BM25: {f['parse_graph_bm25_files_per_s']} files/s (target >= 300)")
    i = out["incremental"]
    print(f"incremental re-index of {i['files_touched']} touched files: {i['seconds']} s (< 2 s)")
    e = out["embeddings"]
    print(
        f"embeddings on {e['sample_chunks']} chunks: torch {e['torch_baseline_chunks_per_s']}/s, "
        f"ONNX int8 {e['onnx_int8_chunks_per_s']}/s = {e['ratio']}x (target >= 3x)"
    )
    print(
        f"  all {e['repository_chunks']} chunks of the repository at the ONNX rate: "
        f"~{e['estimated_full_embedding_s']} s ({e['estimated_full_embedding_s'] / 60:.1f} min)"
    )
    b = out["background_fill"]
    print(
        f"background fill: {b['chunks']} chunks in {b['seconds']} s; search meanwhile "
        f"p50 {b['search_during_fill']['p50_ms']} ms"
    )
    lex, hyb = out["search_lexical"], out["search_hybrid_with_vectors"]
    print(f"search lexical+graph: p50 {lex['p50_ms']} ms, p95 {lex['p95_ms']} ms")
    print(f"search with vectors:  p50 {hyb['p50_ms']} ms, p95 {hyb['p95_ms']} ms (< 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
