"""File localization: does the index rank the files a change touched near the top?

    .venv/bin/python bench/localization.py --cases FILE.jsonl [--no-embed] [--cache DIR]

Each line of FILE.jsonl is ``{"repo_dir": ..., "query": ..., "gold_files": [...]}``: a
repository directory (a git work tree at the commit before the change, or any directory),
the request or issue text, and the repository-relative paths the real fix changed. Each
distinct repo_dir is indexed once (cached under ``--cache``, keyed by its path and commit).

Printed as JSON: for the appliance's hybrid search and for a plain BM25-over-files baseline
computed in the same run (``bm25s`` with its default English tokenizer over each file's
text, no path boost, no code-aware splitting), file-level hit@1, hit@5, hit@10 and MRR (the
reciprocal rank of the first gold file within the top 10, 0 when none is there), over the
cases. Embeddings are computed unless ``--no-embed`` (they are cached with the index).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on sys.path: put the repository root there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.index.indexer import RepoIndex
from appliance.index.search import search
from bench.repos import cache_key, open_repo

K = 10


@dataclass
class Scores:
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the first gold file

    def add(self, ranked: list[str], gold: set[str]) -> None:
        self.ranks.append(next((i for i, p in enumerate(ranked[:K], 1) if p in gold), None))

    def summary(self) -> dict[str, float]:
        n = len(self.ranks) or 1

        def hit(k: int) -> float:
            return round(sum(1 for r in self.ranks if r is not None and r <= k) / n, 4)

        mrr = sum(1 / r for r in self.ranks if r is not None) / n
        return {"hit@1": hit(1), "hit@5": hit(5), "hit@10": hit(10), "mrr": round(mrr, 4)}


class PlainBm25:
    """The baseline: bm25s with its stock tokenizer over raw file texts."""

    def __init__(self, texts: dict[str, str]) -> None:
        import bm25s  # type: ignore[import-untyped]

        self.paths = sorted(texts)
        self.retriever = bm25s.BM25()
        corpus = bm25s.tokenize([texts[p] for p in self.paths], stopwords="en", show_progress=False)
        self.retriever.index(corpus, show_progress=False)
        self._bm25s = bm25s

    def search(self, query: str, k: int) -> list[str]:
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        k = min(k, len(self.paths))
        docs, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        return [self.paths[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        missing = {"repo_dir", "query", "gold_files"} - set(case)
        if missing:
            raise SystemExit(f"{path}:{n}: missing {', '.join(sorted(missing))}")
        cases.append(case)
    return cases


def prepare(repo_dir: Path, cache_root: Path, embed: bool) -> RepoIndex:
    vectors = embedder = None
    cache = cache_root / cache_key(repo_dir)
    if embed:
        from appliance.index.embed import make_embedder
        from appliance.index.vectors import VectorStore

        embedder = make_embedder(cache_dir=cache_root / "models")
        vectors = VectorStore(cache / "chroma")
    mirror, commit, index = open_repo(repo_dir, cache, vectors=vectors, embedder=embedder)
    began = time.perf_counter()
    report = index.update(mirror, commit)
    if report.mode != "unchanged":
        print(f"indexed {repo_dir}: {report.summary()}", file=sys.stderr)
    if embed:
        done = index.embed_pending(
            progress=lambda s, d, t: print(f"\r  embeddings {d}/{t}", end="", file=sys.stderr)
        )
        if done:
            print(file=sys.stderr)
    print(f"  ready in {time.perf_counter() - began:.1f}s", file=sys.stderr)
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, required=True, help="JSONL file of cases.")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "appliance-bench" / "localization",
        help="Where indexes are kept between runs.",
    )
    parser.add_argument("--no-embed", action="store_true", help="Lexical and graph only.")
    parser.add_argument("--per-case", action="store_true", help="Print each case's ranks.")
    args = parser.parse_args()

    cases = load_cases(args.cases)
    hybrid, baseline = Scores(), Scores()
    indexes: dict[Path, tuple[RepoIndex, PlainBm25]] = {}
    latencies: list[float] = []
    details = []
    for case in cases:
        repo_dir = Path(case["repo_dir"]).resolve()
        if repo_dir not in indexes:
            index = prepare(repo_dir, args.cache, embed=not args.no_embed)
            indexes[repo_dir] = (index, PlainBm25(index.store.texts()))
        index, plain = indexes[repo_dir]
        gold = {g.lstrip("./") for g in case["gold_files"]}
        began = time.perf_counter()
        hits = search(index, case["query"], K)
        latencies.append(time.perf_counter() - began)
        hybrid.add([h.path for h in hits], gold)
        baseline.add(plain.search(case["query"], K), gold)
        if args.per_case:
            details.append(
                {
                    "query": case["query"][:80],
                    "hybrid_rank": hybrid.ranks[-1],
                    "bm25_rank": baseline.ranks[-1],
                    "top": [h.path for h in hits[:3]],
                }
            )
    latencies.sort()
    result: dict[str, Any] = {
        "cases": len(cases),
        "repositories": len(indexes),
        "embeddings": not args.no_embed,
        "hybrid": hybrid.summary(),
        "bm25_files_baseline": baseline.summary(),
        "search_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
    }
    if args.per_case:
        result["per_case"] = details
    print(json.dumps(result, indent=2))
    for index, _ in indexes.values():
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
