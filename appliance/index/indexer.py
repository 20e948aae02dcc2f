"""One repository's index: build it, bring it up to a new commit, answer lookups.

:meth:`RepoIndex.update` reads the tree at a commit from a :class:`RepoReader` (the bare
mirror), and either indexes every file (first time, ``full=True``, or a changed embedder) or
only what ``git diff --name-status`` says changed since the indexed commit:

1. **catalog** — classify each path (skip binary, vendored, generated, too large, symlinks);
2. **parse** — tree-sitter symbols, references and imports of each source file;
3. **chunks** — symbol-aligned spans for BM25 and embeddings;
4. **store** — one SQLite transaction records all of it and the new commit;
5. **graph**, then **BM25** — updated in memory for the changed files (timed apart);
6. **embeddings** — *not* done here: chunks are stored as pending, and
   :meth:`RepoIndex.embed_pending` (run in the background by the caller) fills Chroma in
   batches, so lexical and graph search serve at once.

Progress goes to a callback ``(stage, done, total)``. The in-memory parts (graph, BM25) are
rebuilt from the store when an index is opened, so a restart needs no git access.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from appliance.errors import IndexError_
from appliance.index.catalog import DEFAULT_MAX_BYTES, iter_catalog
from appliance.index.chunks import chunk_file
from appliance.index.graph import FileGraph
from appliance.index.lexical import PATH_WEIGHT, Bag, Bm25Index, bags_of, merge_bags
from appliance.index.parse import parse_file
from appliance.index.store import IndexStore
from appliance.index.types import (
    Chunk,
    Definition,
    FileEntry,
    FileSymbols,
    Language,
    RepoReader,
)

if TYPE_CHECKING:
    from appliance.index.types import Embedder
    from appliance.index.vectors import VectorStore

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Mode = Literal["full", "incremental", "unchanged"]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class IndexReport:
    commit: str
    previous: str | None
    mode: Mode
    files: int = 0  # catalogued files at the commit
    indexed: int = 0  # files (re)parsed in this update
    removed: int = 0
    chunks: int = 0  # chunks (re)made in this update
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        if self.mode == "unchanged":
            return f"index already at {self.commit[:12]}"
        return (
            f"{self.mode} index at {self.commit[:12]}: {self.indexed} file(s) indexed, "
            f"{self.removed} removed, {self.chunks} chunk(s); {self.files} files in all ({stages})"
        )


@dataclass(frozen=True)
class IndexStatus:
    commit: str | None
    files: int
    chunks_embedded: int
    chunks_total: int
    embedder: str | None

    @property
    def embeddings_complete(self) -> bool:
        return self.chunks_embedded >= self.chunks_total


def _decode(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")


class RepoIndex:
    """The index of repository ``name`` under ``root`` (``<data dir>/index/<name>``).

    ``vectors``/``embedder`` are optional: without them the index is lexical + graph only.
    Thread-safety: updates are serialised by a lock; lookups read immutable snapshots.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        vectors: VectorStore | None = None,
        embedder: Embedder | None = None,
        max_file_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.name = name
        self.max_file_bytes = max_file_bytes
        self.root = root
        self.store = IndexStore(root / "index.sqlite")
        self.vectors = vectors
        self.embedder = embedder
        self._lock = threading.RLock()
        self._graph: FileGraph | None = None
        self._files_bm25: Bm25Index | None = None
        self._chunks_bm25: Bm25Index | None = None
        self._chunk_spans: dict[str, Chunk] = {}

    def close(self) -> None:
        self.store.close()

    # -- in-memory parts, rebuilt from the store on first use --------------------------------

    def _load(self) -> None:
        """Build the in-memory parts from the store (and the saved BM25 indexes)."""
        with self._lock:
            if self._graph is not None:
                return
            files = self.store.files()
            chunks = self.store.chunks()
            self._chunk_spans = {c.id: c for c in chunks}
            saved = self._load_bm25()
            if saved is not None:
                self._files_bm25, self._chunks_bm25 = saved
            else:
                by_path: dict[str, list[Chunk]] = {}
                for c in chunks:
                    by_path.setdefault(c.path, []).append(c)
                file_bags: dict[str, Bag] = {}
                chunk_bags: dict[str, Bag] = {}
                for path, file_chunks in by_path.items():
                    file_bag, bags = tokenize_file(path, file_chunks)
                    file_bags[path] = file_bag
                    chunk_bags.update(zip((c.id for c in file_chunks), bags, strict=True))
                self._files_bm25 = Bm25Index()
                self._files_bm25.update_bags(file_bags)
                self._chunks_bm25 = Bm25Index()
                self._chunks_bm25.update_bags(chunk_bags)
            self._graph = FileGraph(self.store.symbols(), [f.path for f in files])
            self._graph.warm()

    @property
    def graph(self) -> FileGraph:
        self._load()
        assert self._graph is not None
        return self._graph

    @property
    def files_bm25(self) -> Bm25Index:
        self._load()
        assert self._files_bm25 is not None
        return self._files_bm25

    @property
    def chunks_bm25(self) -> Bm25Index:
        self._load()
        assert self._chunks_bm25 is not None
        return self._chunks_bm25

    def chunk(self, chunk_id: str) -> Chunk | None:
        self._load()
        return self._chunk_spans.get(chunk_id)

    # -- status --------------------------------------------------------------------------------

    @property
    def commit(self) -> str | None:
        return self.store.commit

    def status(self) -> IndexStatus:
        done, total = self.store.chunk_counts()
        files = sum(1 for f in self.store.files() if f.skipped is None)
        return IndexStatus(self.store.commit, files, done, total, self.store.meta("embedder"))

    # -- updating ------------------------------------------------------------------------------

    def update(
        self,
        reader: RepoReader,
        ref: str,
        *,
        full: bool = False,
        progress: Progress = _no_progress,
    ) -> IndexReport:
        """Bring the index to the commit ``ref`` names (see the module doc)."""
        with self._lock:
            commit = reader.resolve(ref)
            previous = self.store.commit
            embedder_changed = (
                self.embedder is not None and self.store.meta("embedder") != self.embedder.name
            )
            if previous == commit and not full and not embedder_changed:
                return IndexReport(commit, previous, "unchanged", files=self.status().files)
            seconds: dict[str, float] = {}
            began = time.perf_counter()
            tree = reader.tree(commit)
            if full or previous is None or embedder_changed:
                mode: Mode = "full"
                wanted = {e.path for e in tree}
                removed = {f.path for f in self.store.files()}
            else:
                mode = "incremental"
                try:
                    changes = reader.changes(previous, commit)
                except IndexError_:
                    raise
                except Exception as exc:  # the old commit is gone (force-push): rebuild
                    log.warning("%s: no diff from %s (%s); full re-index", self.name, previous, exc)
                    return self.update(reader, commit, full=True, progress=progress)
                wanted = {c.path for c in changes if c.status != "D"}
                removed = {c.path for c in changes}
            entries = [e for e in tree if e.path in wanted]
            seconds["tree"] = time.perf_counter() - began

            catalogued: list[FileEntry] = []
            contents: dict[str, bytes] = {}
            t = time.perf_counter()
            for i, (entry, content) in enumerate(
                iter_catalog(entries, reader.read_blobs, max_bytes=self.max_file_bytes), 1
            ):
                catalogued.append(entry)
                if content is not None:
                    contents[entry.path] = content
                if i % 500 == 0:
                    progress("catalog", i, len(entries))
            progress("catalog", len(entries), len(entries))
            seconds["catalog"] = time.perf_counter() - t

            t = time.perf_counter()
            symbols: list[FileSymbols] = []
            texts: dict[str, str] = {}
            chunks: list[Chunk] = []
            languages = {e.path: e.language for e in catalogued}
            work = [(path, languages[path], content) for path, content in contents.items()]
            file_bags: dict[str, Bag] = {}
            chunk_bags: dict[str, Bag] = {}
            for i, parsed in enumerate(_parse_all(work), 1):
                texts[parsed.path] = parsed.text
                if parsed.symbols is not None:
                    symbols.append(parsed.symbols)
                chunks.extend(parsed.chunks)
                file_bags[parsed.path] = parsed.file_bag
                chunk_bags.update(
                    zip((c.id for c in parsed.chunks), parsed.chunk_bags, strict=True)
                )
                if i % 200 == 0:
                    progress("parse", i, len(work))
            progress("parse", len(work), len(work))
            seconds["parse"] = time.perf_counter() - t

            if mode == "incremental":
                self._load()  # the in-memory parts of the previous commit, to update
            t = time.perf_counter()
            extra = {"embedder": self.embedder.name} if self.embedder is not None else {}
            if mode == "full":
                self.store.clear()
                if self.vectors is not None and self.embedder is not None:
                    self.vectors.reset(self.name, self.embedder.name, self.embedder.dim)
            self.store.apply(
                commit=commit,
                removed=removed,
                files=catalogued,
                symbols=symbols,
                texts=texts,
                chunks=chunks,
                extra_meta=extra,
            )
            seconds["store"] = time.perf_counter() - t

            if mode == "full":
                self._reset_in_memory()
            t = time.perf_counter()
            self._apply_graph(removed, catalogued, symbols, fresh=mode == "full")
            self.graph.warm()
            seconds["graph"] = time.perf_counter() - t
            t = time.perf_counter()
            self._apply_bm25(removed, chunks, file_bags, chunk_bags)
            seconds["bm25"] = time.perf_counter() - t
            t = time.perf_counter()
            self._save_bm25(commit)
            seconds["save"] = time.perf_counter() - t
            if self.vectors is not None and mode == "incremental" and removed:
                self.vectors.delete_paths(self.name, sorted(removed))
            seconds["total"] = time.perf_counter() - began
            report = IndexReport(
                commit,
                previous,
                mode,
                files=self.status().files,
                indexed=len(contents),
                removed=len(removed - wanted),
                chunks=len(chunks),
                seconds=seconds,
            )
            log.info("%s: %s", self.name, report.summary())
            return report

    def _reset_in_memory(self) -> None:
        self._graph = None
        self._files_bm25 = Bm25Index()
        self._chunks_bm25 = Bm25Index()
        self._chunk_spans = {}

    def _apply_graph(
        self,
        removed: set[str],
        catalogued: list[FileEntry],
        symbols: list[FileSymbols],
        *,
        fresh: bool,
    ) -> None:
        changed = {fs.path: fs for fs in symbols}
        if fresh or self._graph is None:
            self._graph = FileGraph(changed, [e.path for e in catalogued])
        else:
            self._graph.update(changed, removed - set(changed), paths=[e.path for e in catalogued])

    def _apply_bm25(
        self,
        removed: set[str],
        chunks: list[Chunk],
        file_bags: dict[str, Bag],
        chunk_bags: dict[str, Bag],
    ) -> None:
        assert self._files_bm25 is not None
        assert self._chunks_bm25 is not None
        self._files_bm25.update_bags(file_bags, removed - set(file_bags))
        stale = [cid for cid, c in self._chunk_spans.items() if c.path in removed]
        for cid in stale:
            del self._chunk_spans[cid]
        self._chunk_spans.update((c.id, c) for c in chunks)
        self._chunks_bm25.update_bags(chunk_bags, [s for s in stale if s not in chunk_bags])

    def _bm25_dirs(self) -> tuple[Path, Path]:
        return self.root / "bm25-files", self.root / "bm25-chunks"

    def _save_bm25(self, commit: str) -> None:
        files_dir, chunks_dir = self._bm25_dirs()
        self.files_bm25.save(files_dir)
        self.chunks_bm25.save(chunks_dir)
        (self.root / "bm25-commit").write_text(commit)

    def _load_bm25(self) -> tuple[Bm25Index, Bm25Index] | None:
        marker = self.root / "bm25-commit"
        if not marker.is_file() or marker.read_text().strip() != self.store.commit:
            return None
        files_dir, chunks_dir = self._bm25_dirs()
        try:
            return Bm25Index.load(files_dir), Bm25Index.load(chunks_dir)
        except IndexError_ as exc:
            log.warning("%s: saved BM25 index unusable (%s); rebuilding it", self.name, exc)
            return None

    # -- embeddings ------------------------------------------------------------------------------

    def embed_pending(
        self,
        *,
        batch: int = 64,
        progress: Progress = _no_progress,
        stop: threading.Event | None = None,
    ) -> int:
        """Embed the chunks not embedded yet, in batches; returns how many were embedded.

        Runs beside :meth:`update` (in a background thread): the slow part, the embedder,
        runs without the lock; each batch's vectors are then written under the lock, and
        only for the chunks still pending with the text they were embedded from. A chunk id
        (``path:start-end``) outlives an edit that keeps the lines, and a full update resets
        the collection, so a vector of the old text is dropped, not stored; the chunk's new
        text comes up in a later batch."""
        if self.vectors is None or self.embedder is None:
            return 0
        embedded = 0
        while stop is None or not stop.is_set():
            pending = self.store.pending_chunks(batch)
            if not pending:
                break
            vectors = self.embedder.embed([embedding_text(c) for c in pending])
            with self._lock:
                current = {
                    c.id: c for c in self.store.pending_chunks_by_id([c.id for c in pending])
                }
                fresh = [
                    (c, v) for c, v in zip(pending, vectors, strict=True) if current.get(c.id) == c
                ]
                if fresh:
                    self.vectors.upsert(self.name, [c for c, _ in fresh], [v for _, v in fresh])
                    self.store.mark_embedded([c.id for c, _ in fresh])
                done, total = self.store.chunk_counts()
            embedded += len(fresh)
            if len(fresh) < len(pending):
                log.info(
                    "%s: %d chunk(s) changed while embedding; they are embedded again",
                    self.name,
                    len(pending) - len(fresh),
                )
            progress("embeddings", done, total)
        return embedded

    # -- lookups -------------------------------------------------------------------------------

    def definitions(self, name: str) -> list[tuple[str, Definition]]:
        return self.graph.definitions(name)

    def references(self, name: str) -> list[str]:
        return self.graph.references(name)

    def symbols_of(self, path: str) -> FileSymbols | None:
        return self.graph.symbols(path)

    def text(self, path: str) -> str | None:
        return self.store.text(path)

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        """The chunk of ``path`` that holds ``line`` (None when no chunk does)."""
        self._load()
        return next(
            (
                c
                for c in self._chunk_spans.values()
                if c.path == path and c.line_start <= line <= c.line_end
            ),
            None,
        )

    def paths(self) -> list[str]:
        return [f.path for f in self.store.files() if f.skipped is None]


@dataclass
class Parsed:
    path: str
    symbols: FileSymbols | None
    text: str
    chunks: list[Chunk]
    file_bag: Bag  # BM25 tokens of the whole file (path words counted PATH_WEIGHT times)
    chunk_bags: list[Bag]  # BM25 tokens of each chunk (with the path's words once)


_POOL_MIN_FILES = 400  # below this, starting worker processes costs more than it saves


def tokenize_file(path: str, chunks: list[Chunk]) -> tuple[Bag, list[Bag]]:
    """BM25 bags for a file and its chunks, tokenizing each line once (chunks tile the file)."""
    path_bag, *texts = bags_of([path.replace("/", " "), *(_chunk_doc(c) for c in chunks)])
    file_bag = merge_bags([*texts, *([path_bag] * PATH_WEIGHT)])
    return file_bag, [merge_bags([bag, path_bag]) for bag in texts]


def _parse_one(item: tuple[str, Language | None, bytes]) -> Parsed:
    path, language, content = item
    text = _decode(content)
    fs = parse_file(path, language, content) if language is not None else None
    chunks = chunk_file(path, text, fs)
    file_bag, chunk_bags = tokenize_file(path, chunks)
    return Parsed(path, fs, text, chunks, file_bag, chunk_bags)


def _parse_many(items: list[tuple[str, Language | None, bytes]]) -> list[Parsed]:
    return [_parse_one(item) for item in items]


def _parse_all(work: list[tuple[str, Language | None, bytes]]) -> Iterator[Parsed]:
    """Parse, chunk and tokenize ``work``; in worker processes (one per core) when there is a
    lot of it: tree-sitter and the tokenizer hold the GIL, so threads would not help."""
    workers = min(os.cpu_count() or 1, 8)
    if len(work) < _POOL_MIN_FILES or workers < 2:
        yield from map(_parse_one, work)
        return
    batches = [work[i : i + 32] for i in range(0, len(work), 32)]
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for parsed in pool.map(_parse_many, batches):
            yield from parsed


def _chunk_doc(chunk: Chunk) -> str:
    return chunk.text


def embedding_text(chunk: Chunk) -> str:
    """What the embedder sees: where the chunk is, then its code."""
    head = f"{chunk.path}" + (f" · {chunk.symbol}" if chunk.symbol else "")
    return f"{head}\n{chunk.text}"
