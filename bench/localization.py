"""File localization: does the index rank the files a change touched near the top?

    .venv/bin/python bench/localization.py --cases FILE.jsonl [--no-embed] [--cache DIR]

Each line of FILE.jsonl is ``{"repo_dir": ..., "query": ..., "gold_files": [...]}``: a
repository directory (a git work tree at the commit before the change, or any directory;
absolute, or relative to the current directory or else to FILE.jsonl's folder), the request
or issue text, and the repository-relative paths the real fix changed. Each repository is
mirrored and indexed once (cached under ``--cache``); the worktrees of one repository share
its index, which an incremental update brings to each case's commit.

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
from typing import TYPE_CHECKING, Any

from appliance.index.indexer import RepoIndex
from appliance.index.query import strip_dot_slash
from appliance.index.search import search
from appliance.index.types import Embedder
from appliance.repos.mirror import GitRepo
from bench.repos import cache_key, mirror_repo

if TYPE_CHECKING:
    from appliance.index.vectors import VectorStore

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


def resolve_repo_dir(value: str, cases_file: Path) -> Path:
    """``repo_dir`` as written: absolute, else relative to the current directory, else to
    the folder of the cases file (so a committed case file can name fixtures beside it)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.is_dir():
        return path.resolve()
    beside = cases_file.parent / path
    if beside.is_dir():
        return beside.resolve()
    raise SystemExit(
        f"{cases_file}: repo_dir {value!r} is no directory, neither under the current "
        f"directory nor under {cases_file.parent}"
    )


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        missing = {"repo_dir", "query", "gold_files"} - set(case)
        if missing:
            raise SystemExit(f"{path}:{n}: missing {', '.join(sorted(missing))}")
        case["repo_dir"] = resolve_repo_dir(case["repo_dir"], path)
        cases.append(case)
    return cases


class Repositories:
    """One mirror and one index per repository, cached under ``cache_root``. A case's
    ``repo_dir`` is brought to its own commit: the worktrees of one repository (one per case
    of ``history_cases.py``) share an index that moves between commits incrementally, so only
    the files that differ are parsed and embedded again."""

    def __init__(self, cache_root: Path, embed: bool) -> None:
        self.cache_root = cache_root
        self.embed = embed
        self.embedder: Embedder | None = None
        self.indexes: dict[str, tuple[RepoIndex, VectorStore | None]] = {}
        self.commits: dict[Path, tuple[str, GitRepo, str]] = {}  # repo_dir → key, mirror, commit
        self.baselines: dict[str, tuple[str, PlainBm25]] = {}  # key → commit, its baseline

    def prepare(self, repo_dir: Path) -> tuple[RepoIndex, PlainBm25]:
        if repo_dir not in self.commits:
            key = cache_key(repo_dir)
            mirror, commit = mirror_repo(repo_dir, self.cache_root / key)
            self.commits[repo_dir] = (key, mirror, commit)
        key, mirror, commit = self.commits[repo_dir]
        index = self._index(key)
        began = time.perf_counter()
        report = index.update(mirror, commit)
        if report.mode != "unchanged":
            print(f"indexed {repo_dir}: {report.summary()}", file=sys.stderr)
        if self.embed:
            done = index.embed_pending(
                progress=lambda s, d, t: print(f"\r  embeddings {d}/{t}", end="", file=sys.stderr)
            )
            if done:
                print(file=sys.stderr)
        if report.mode != "unchanged":
            print(f"  ready in {time.perf_counter() - began:.1f}s", file=sys.stderr)
        known = self.baselines.get(key)
        if known is None or known[0] != commit:
            known = (commit, PlainBm25(index.store.texts()))
            self.baselines[key] = known
        return index, known[1]

    def _index(self, key: str) -> RepoIndex:
        if key not in self.indexes:
            cache = self.cache_root / key
            vectors = None
            if self.embed:
                from appliance.index.embed import make_embedder
                from appliance.index.vectors import VectorStore

                if self.embedder is None:
                    self.embedder = make_embedder(cache_dir=self.cache_root / "models")
                vectors = VectorStore(cache / "chroma")
            index = RepoIndex("bench", cache / "index", vectors=vectors, embedder=self.embedder)
            self.indexes[key] = (index, vectors)
        return self.indexes[key][0]

    def close(self) -> None:
        for index, vectors in self.indexes.values():
            index.close()
            if vectors is not None:
                vectors.close()


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
    repositories = Repositories(args.cache, embed=not args.no_embed)
    latencies: list[float] = []
    details = []
    for case in cases:
        index, plain = repositories.prepare(case["repo_dir"])
        gold = {strip_dot_slash(g) for g in case["gold_files"]}
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
        "repositories": len(repositories.commits),
        "embeddings": not args.no_embed,
        "hybrid": hybrid.summary(),
        "bm25_files_baseline": baseline.summary(),
        "search_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
    }
    if args.per_case:
        result["per_case"] = details
    print(json.dumps(result, indent=2))
    repositories.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
