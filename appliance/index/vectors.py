"""Chunk vectors in an embedded Chroma database, one collection per repository.

``VectorStore(path)`` opens (or creates) a Chroma ``PersistentClient`` directory. Each
repository gets a collection whose name is derived from the repository's name (sanitised
to Chroma's rules plus a short hash, so ``a/b`` and ``a_b`` never share one), in cosine
space, with the name and dimension of the embedder that made its vectors in its metadata.
``reset(repo, embedder, dim)`` drops whatever the repository had and starts an empty
collection for that embedder; ``embedder_of(repo)`` and ``matches(repo, embedder, dim)``
tell the caller whether the stored vectors are still usable. Methods that take an
``embedder`` name raise :class:`EmbedderMismatch` when the stored vectors came from
another one, and writing or querying with a vector of the wrong length is refused.

Vectors are always passed in: every collection is created and fetched with
``embedding_function=None``, so Chroma never instantiates its default embedding function
(which would download an ONNX model), and telemetry is off. Nothing here uses the network.

Ids are ``Chunk.id`` (``path:start-end``); metadata holds path, line_start, line_end and,
when known, symbol. ``query`` scores hits 1 - cosine distance.

Threads: one background thread may write (upsert, delete, reset) while others query.
We rely on Chroma's local clients being safe to share between threads (they lock their
shared resources internally, as its maintainers state in chroma-core/chroma PR #1240; the
1.x Rust core also serialises its SQLite and HNSW access), and a test writes from one
thread while another queries. On top of that our writes are serialised by one lock (a
caller's batch of upserts is never interleaved with another's reset or drop), and the
repo → collection cache has its own short lock; queries take no other lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import IndexError_
from appliance.index.types import Chunk, Hit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

_PAGE = 5000  # ids per get()/delete() call; Chroma caps batches at a few thousand
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")


class EmbedderMismatch(IndexError_):
    """A repository's vectors come from another embedder (or dimension) than the caller's."""

    code = "embedder_mismatch"


@contextlib.contextmanager
def _chroma_errors(repo: str) -> Iterator[None]:
    """Chroma's own exceptions, as IndexError_ naming the repository."""
    from chromadb.errors import ChromaError

    try:
        yield
    except ChromaError as exc:
        raise IndexError_(f"the vector store failed for repository {repo!r}: {exc}") from exc


def collection_name(repo: str) -> str:
    """A Chroma collection name for ``repo``: 3-512 chars of ``[a-zA-Z0-9._-]``, starting and
    ending with a letter or digit; a hash of the exact name keeps distinct repos apart."""
    if not repo:
        raise IndexError_("a repository name is needed to find its vectors")
    slug = _UNSAFE.sub("_", repo).strip("_-")[:48]
    digest = hashlib.sha256(repo.encode()).hexdigest()[:10]
    return f"repo-{slug}-{digest}" if slug else f"repo-{digest}"


class VectorStore:
    """Chroma-backed vectors of code chunks for many repositories."""

    def __init__(self, path: Path) -> None:
        import chromadb
        from chromadb.config import Settings

        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._client: ClientAPI = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )
        self._collections: dict[str, Collection] = {}
        self._cache_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- collections

    def embedder_of(self, repo: str) -> tuple[str, int] | None:
        """(embedder name, dim) of the repository's vectors; None when it has none."""
        found = self._existing(repo)
        return None if found is None else _made_by(found)

    def matches(self, repo: str, embedder: str, dim: int) -> bool:
        """True when the repository's collection exists and was made by this embedder."""
        return self.embedder_of(repo) == (embedder, dim)

    def collection(
        self, repo: str, embedder: str | None = None, dim: int | None = None
    ) -> Collection:
        """The repository's collection. With ``embedder`` and ``dim`` it is created when
        missing, and EmbedderMismatch is raised when another embedder made it."""
        found = self._existing(repo)
        if found is None:
            if embedder is None or dim is None:
                raise IndexError_(
                    f"repository {repo!r} has no vectors yet: "
                    "call reset(repo, embedder, dim) before storing any"
                )
            with self._cache_lock:
                found = self._client.get_or_create_collection(
                    collection_name(repo),
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"repo": repo, "embedder": embedder, "dim": dim},
                )
                self._collections[repo] = found
        _check(repo, found, embedder, dim)
        return found

    def _existing(self, repo: str) -> Collection | None:
        from chromadb.errors import NotFoundError

        with self._cache_lock:
            cached = self._collections.get(repo)
            if cached is not None:
                return cached
            try:
                found = self._client.get_collection(collection_name(repo), embedding_function=None)
            except NotFoundError:
                return None
            self._collections[repo] = found
            return found

    def reset(self, repo: str, embedder: str, dim: int) -> None:
        """Drop the repository's vectors, whoever made them, and start an empty collection
        for ``embedder`` (vectors of ``dim`` numbers)."""
        self.drop(repo)
        self.collection(repo, embedder, dim)

    def drop(self, repo: str) -> None:
        """Forget the repository's vectors (no error when there are none)."""
        from chromadb.errors import NotFoundError

        with self._write_lock, self._cache_lock:
            self._collections.pop(repo, None)
            with contextlib.suppress(NotFoundError):
                self._client.delete_collection(collection_name(repo))

    # -- writes

    def upsert(
        self,
        repo: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        *,
        embedder: str | None = None,
    ) -> None:
        """Store (or replace) the vectors of ``chunks``; ``vectors[i]`` belongs to ``chunks[i]``.

        The collection must exist (``reset``) unless ``embedder`` is given, which creates it
        and checks that it is the one that made the stored vectors."""
        if len(chunks) != len(vectors):
            raise IndexError_(f"{len(chunks)} chunks but {len(vectors)} vectors for {repo!r}")
        if not chunks:
            return
        import numpy as np

        target = self.collection(repo, embedder, len(vectors[0]) if embedder else None)
        _, dim = _made_by(target)
        bad = next((len(v) for v in vectors if len(v) != dim), None)
        if bad is not None:
            raise EmbedderMismatch(
                f"a {bad}-dimensional vector for repository {repo!r}, whose vectors have "
                f"{dim}: embed with the embedder that made them, or reset the repository"
            )
        step = self._client.get_max_batch_size()
        with self._write_lock, _chroma_errors(repo):
            for start in range(0, len(chunks), step):
                part = chunks[start : start + step]
                target.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.asarray(vectors[start : start + step], dtype=np.float32),
                    metadatas=[_metadata(c) for c in part],
                )

    def delete_paths(self, repo: str, paths: Sequence[str] | set[str]) -> None:
        """Remove every chunk of the given files (deleted or about to be re-embedded)."""
        target = self._existing(repo)
        paths = list(paths)
        if target is None or not paths:
            return
        with self._write_lock, _chroma_errors(repo):
            for start in range(0, len(paths), 100):
                where: Any = {"path": {"$in": paths[start : start + 100]}}
                target.delete(where=where)

    # -- reads

    def query(
        self,
        repo: str,
        vector: Sequence[float],
        k: int,
        *,
        paths: Sequence[str] | None = None,
        embedder: str | None = None,
    ) -> list[Hit]:
        """The ``k`` chunks nearest ``vector``, best first; ``paths`` limits the files searched.

        No vectors for the repository: no hits. ``embedder`` (the query's) is checked
        against the one that made the stored vectors."""
        target = self._existing(repo)
        if target is None or k <= 0 or (paths is not None and not paths):
            return []
        _check(repo, target, embedder, None)
        made_by, dim = _made_by(target)
        if len(vector) != dim:
            raise EmbedderMismatch(
                f"a {len(vector)}-dimensional query for repository {repo!r}, whose vectors "
                f"({made_by}) have {dim}: embed the query with the same embedder"
            )
        import numpy as np

        where: Any = {"path": {"$in": list(paths)}} if paths is not None else None
        with _chroma_errors(repo):
            result = target.query(
                query_embeddings=np.asarray([vector], dtype=np.float32),
                n_results=k,
                where=where,
                include=["metadatas", "distances"],
            )
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            Hit(
                path=str(meta["path"]),
                score=1.0 - float(distance),
                line_start=_int_or_none(meta.get("line_start")),
                line_end=_int_or_none(meta.get("line_end")),
                symbol=_str_or_none(meta.get("symbol")),
                reasons=["vector"],
            )
            for meta, distance in zip(metadatas, distances, strict=True)
        ]

    def count(self, repo: str) -> int:
        target = self._existing(repo)
        if target is None:
            return 0
        with _chroma_errors(repo):
            return target.count()

    def indexed_paths(self, repo: str) -> set[str]:
        """The files that have at least one chunk stored."""
        target = self._existing(repo)
        if target is None:
            return set()
        with _chroma_errors(repo):
            return {str(meta["path"]) for meta in _all_metadatas(target)}

    def close(self) -> None:
        """Release Chroma's files (the SQLite database) held by this store's client."""
        with self._write_lock, self._cache_lock:
            self._collections.clear()
            self._client.close()  # type: ignore[attr-defined]

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _made_by(found: Collection) -> tuple[str, int]:
    meta = found.metadata or {}
    embedder, dim = meta.get("embedder"), meta.get("dim")
    if not isinstance(embedder, str) or not isinstance(dim, int):
        raise IndexError_(
            f"the vector collection {found.name} lacks its embedder's name and dimension "
            "(not made by the appliance?): drop it or reset the repository"
        )
    return embedder, dim


def _check(repo: str, found: Collection, embedder: str | None, dim: int | None) -> None:
    made_by, made_dim = _made_by(found)
    if (embedder is not None and embedder != made_by) or (dim is not None and dim != made_dim):
        raise EmbedderMismatch(
            f"the vectors of repository {repo!r} were made by embedder {made_by!r} "
            f"(dim {made_dim}), not {embedder or made_by!r} (dim {dim or made_dim}): "
            "re-index it (VectorStore.reset drops the old vectors)"
        )


def _metadata(chunk: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {
        "path": chunk.path,
        "line_start": chunk.line_start,
        "line_end": chunk.line_end,
    }
    if chunk.symbol:
        meta["symbol"] = chunk.symbol
    return meta


def _all_metadatas(target: Collection) -> Iterator[Any]:
    offset = 0
    while True:
        page = target.get(include=["metadatas"], limit=_PAGE, offset=offset)
        metadatas = page["metadatas"] or []
        yield from metadatas
        if len(metadatas) < _PAGE:
            return
        offset += _PAGE


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
