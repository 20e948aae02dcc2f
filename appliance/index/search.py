"""Hybrid search: BM25, vectors and the reference graph, fused by reciprocal rank.

Each signal ranks files on its own:

* **named** — paths the request names, matched to catalogued files by suffix; the strongest
  evidence there is. A ranked list: the repository's stack-trace frames first, innermost
  (where the error was raised) first, then other paths, then library frames; the n-th file
  gets ``weight / sqrt(n)``, and a frame's file gets the span of the definition around the
  frame's line;
* **defines** — files that define an identifier the request names (``parse_config``,
  ``UserSettings``), most specific identifier first;
* **bm25** — BM25 over whole files (path words boosted) with a code-aware tokenizer;
* **chunks** — BM25 over symbol-aligned chunks, each file ranked by its best chunk;
* **vector** — cosine similarity of the chunks' embeddings (when they are there: the index
  serves lexical and graph results while embeddings fill in);
* **graph** — personalised PageRank from the named/defining files, i.e. their neighbours in
  the reference/import graph.

A file's score is ``Σ weight_s / (K + rank_s)`` over the signals that ranked it (reciprocal
rank fusion, K = 60); :class:`~appliance.index.types.Hit.reasons` lists them ("bm25 #2",
"defines parse_config") and the line span is the best chunk's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.index.indexer import RepoIndex
from appliance.index.query import QueryInfo, analyse, match_paths
from appliance.index.types import Hit

log = logging.getLogger(__name__)

K = 60
DEPTH = 100  # how many candidates each signal contributes


@dataclass(frozen=True)
class Weights:
    named: float = 4.0
    defines: float = 2.0
    bm25: float = 1.0
    chunks: float = 1.0
    vector: float = 1.0
    graph: float = 0.5


DEFAULT_WEIGHTS = Weights()


@dataclass
class _Candidate:
    score: float = 0.0
    span: tuple[int, int, str | None] | None = None
    reasons: list[str] | None = None


def _add(found: dict[str, _Candidate], ranked: Sequence[str], weight: float, label: str) -> None:
    for rank, path in enumerate(ranked[:DEPTH], 1):
        c = found.setdefault(path, _Candidate(reasons=[]))
        c.score += weight / (K + rank)
        assert c.reasons is not None
        direct = label.startswith(("named", "defines"))
        if rank <= 10 or direct:
            c.reasons.append(label if direct else f"{label} #{rank}")


def search(
    index: RepoIndex,
    query: str,
    k: int = 10,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    info: QueryInfo | None = None,
) -> list[Hit]:
    """The ``k`` best files for ``query`` with their best chunk's lines and the reasons."""
    info = info or analyse(query)
    found: dict[str, _Candidate] = {}
    spans: dict[str, tuple[int, int, str | None]] = {}
    paths = index.paths()

    matched = match_paths(info.paths, paths)
    named = list(dict.fromkeys(matched.values()))  # the innermost of the repo's frames first
    for rank, path in enumerate(named, 1):
        _add(found, [path], weights.named / rank**0.5, "named in the request")
    for frame in info.frames:  # innermost first: a file's span is where its deepest frame is
        framed = matched.get(frame.path)
        if framed is not None and framed not in spans:
            span = _enclosing(index, framed, frame.line)
            if span is not None:
                spans[framed] = span

    defining: list[str] = []
    for name in info.identifiers[:20]:
        for path, definition in index.definitions(name):
            if path not in defining:
                defining.append(path)
                spans.setdefault(path, (definition.line_start, definition.line_end, name))
                weight = weights.defines / len(defining) ** 0.5
                _add(found, [path], weight, f"defines {name}")

    _add(found, [p for p, _ in index.files_bm25.search(query, DEPTH)], weights.bm25, "bm25")

    chunk_files: list[str] = []
    for chunk_id, _score in index.chunks_bm25.search(query, DEPTH * 2):
        chunk = index.chunk(chunk_id)
        if chunk is None or chunk.path in chunk_files:
            continue
        chunk_files.append(chunk.path)
        spans.setdefault(chunk.path, (chunk.line_start, chunk.line_end, chunk.symbol))
    _add(found, chunk_files, weights.chunks, "chunks")

    vector_files = _vector_files(index, query, spans)
    _add(found, vector_files, weights.vector, "vector")

    seeds = {p: 1.0 for p in named} | {p: 0.5 for p in defining if p not in named}
    if seeds:
        ranked = [p for p in index.graph.rank(seeds) if p not in seeds]
        _add(found, ranked, weights.graph, "graph")

    best = sorted(found.items(), key=lambda item: (-item[1].score, item[0]))[:k]
    hits = []
    for path, cand in best:
        span = spans.get(path)
        hits.append(
            Hit(
                path=path,
                score=round(cand.score, 6),
                line_start=span[0] if span else None,
                line_end=span[1] if span else None,
                symbol=span[2] if span else None,
                reasons=list(dict.fromkeys(cand.reasons or [])),
            )
        )
    return hits


def _enclosing(index: RepoIndex, path: str, line: int) -> tuple[int, int, str | None] | None:
    """The innermost definition of ``path`` around ``line``, else the chunk around it."""
    symbols = index.symbols_of(path)
    around = [
        d for d in (symbols.definitions if symbols else ()) if d.line_start <= line <= d.line_end
    ]
    if around:
        best = min(around, key=lambda d: d.line_end - d.line_start)
        return best.line_start, best.line_end, best.name
    chunk = index.chunk_at(path, line)
    return None if chunk is None else (chunk.line_start, chunk.line_end, chunk.symbol)


def _vector_files(
    index: RepoIndex, query: str, spans: dict[str, tuple[int, int, str | None]]
) -> list[str]:
    if index.vectors is None or index.embedder is None:
        return []
    done, _total = index.store.chunk_counts()
    if done == 0:
        return []
    try:
        [vector] = index.embedder.embed([query])
        hits = index.vectors.query(index.name, vector, DEPTH * 2)
    except Exception as exc:  # a broken embedder must not break search; lexical still works
        log.warning("vector search on %s failed: %s", index.name, exc)
        return []
    files: list[str] = []
    for hit in hits:
        if hit.path in files:
            continue
        files.append(hit.path)
        if hit.line_start is not None and hit.line_end is not None:
            spans.setdefault(hit.path, (hit.line_start, hit.line_end, hit.symbol))
    return files


def bm25_files(index: RepoIndex, query: str, k: int = 10) -> list[str]:
    """The plain BM25-over-files baseline (for the localization benchmark)."""
    return [p for p, _ in index.files_bm25.search(query, k)]
