"""The indexes of all registered repositories, as the CLI, API and pipeline use them.

``<data dir>/mirrors/`` holds the bare mirrors, ``<data dir>/index/<name>/`` each
repository's index, ``<data dir>/index/chroma/`` the shared Chroma database (one collection
per repository) and ``<data dir>/models/`` the exported embedding model.

:meth:`IndexService.refresh` fetches a repository and brings its index to the tip of its
default branch (incremental unless asked or needed otherwise); embeddings then fill in on a
background thread (:meth:`IndexService.embed_in_background`) while lexical and graph search
already work. One lock per repository serialises refreshes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.config import Settings
from appliance.index.indexer import IndexReport, IndexStatus, Progress, RepoIndex
from appliance.index.types import Embedder
from appliance.repos.mirror import FetchAccess, Mirrors

if TYPE_CHECKING:
    from appliance.index.vectors import VectorStore

log = logging.getLogger(__name__)


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class RefreshProgress:
    running: bool = False
    stage: str | None = None
    done: int = 0
    total: int = 0
    error: str | None = None
    summary: str | None = None


@dataclass
class EmbeddingProgress:
    done: int = 0
    total: int = 0
    running: bool = False
    error: str | None = None


def index_dir_name(name: str) -> str:
    """A repository name as one directory name (``team/svc`` → ``team%2Fsvc``)."""
    return name.replace("/", "%2F")


class IndexService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.mirrors = Mirrors(self.data_dir / "mirrors")
        self.root = self.data_dir / "index"
        self._indexes: dict[str, RepoIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._vectors: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._embedding: dict[str, EmbeddingProgress] = {}
        self._refreshing: dict[str, RefreshProgress] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()

    # -- parts built on first use -----------------------------------------------------------

    def embedder(self) -> Embedder | None:
        cfg = self.settings.index
        if cfg.embedder == "none":
            return None
        with self._guard:
            if self._embedder is None:
                from appliance.index.embed import make_embedder

                opts: dict[str, object] = {}
                if cfg.embedder == "openai":
                    key = cfg.embeddings_api_key
                    opts = {
                        "base_url": cfg.embeddings_url,
                        "model": cfg.embeddings_model,
                        "api_key": key.get_secret_value() if key else None,
                    }
                self._embedder = make_embedder(
                    cfg.embedder, cache_dir=self.data_dir / "models", **opts
                )
            return self._embedder

    def vectors(self) -> VectorStore | None:
        if self.settings.index.embedder == "none":
            return None
        with self._guard:
            if self._vectors is None:
                from appliance.index.vectors import VectorStore

                self._vectors = VectorStore(self.root / "chroma")
            return self._vectors

    def open(self, name: str, *, with_vectors: bool = True) -> RepoIndex:
        """The index of repository ``name`` (empty until refreshed)."""
        with self._guard:
            index = self._indexes.get(name)
        if index is not None:
            return index
        vectors = self.vectors() if with_vectors else None
        embedder = self.embedder() if with_vectors else None
        with self._guard:
            index = self._indexes.get(name)
            if index is None:
                index = RepoIndex(
                    name,
                    self.root / index_dir_name(name),
                    vectors=vectors,
                    embedder=embedder,
                    max_file_bytes=self.settings.index.max_file_bytes,
                )
                self._indexes[name] = index
                self._locks[name] = threading.Lock()
            return index

    def exists(self, name: str) -> bool:
        return (self.root / index_dir_name(name) / "index.sqlite").is_file()

    # -- refreshing ---------------------------------------------------------------------------

    def refresh(
        self,
        name: str,
        url: str,
        branch: str,
        *,
        token: str | None = None,
        access: FetchAccess | None = None,
        full: bool = False,
        progress: Progress = _quiet,
        with_vectors: bool = True,
    ) -> IndexReport:
        """Fetch ``url`` into the mirror of ``name`` and index ``branch``'s tip. ``access``
        (:func:`appliance.forges.connect.fetch_access`) carries the token and the CA
        bundle, TLS switch and proxy of the repository; ``token`` alone is the old way."""
        progress("fetch", 0, 1)
        repo = self.mirrors.ensure(name, url, token=token, access=access)
        progress("fetch", 1, 1)
        index = self.open(name, with_vectors=with_vectors)
        with self._locks[name]:
            return index.update(repo, branch, full=full, progress=progress)

    def refresh_progress(self, name: str) -> RefreshProgress:
        return self._refreshing.get(name, RefreshProgress())

    def refresh_in_background(
        self,
        name: str,
        url: str,
        branch: str,
        *,
        token: str | None = None,
        access: FetchAccess | None = None,
        full: bool = False,
    ) -> bool:
        """Refresh on a daemon thread, then embed; False when a refresh is already running."""
        with self._guard:
            state = self._refreshing.get(name)
            if state is not None and state.running:
                return False
            state = self._refreshing[name] = RefreshProgress(running=True)

        def progress(stage: str, done: int, total: int) -> None:
            state.stage, state.done, state.total = stage, done, total

        def work() -> None:
            try:
                report = self.refresh(
                    name, url, branch, token=token, access=access, full=full, progress=progress
                )
                state.summary = report.summary()
            except Exception as exc:  # reported through refresh_progress, and logged
                log.exception("%s: indexing failed", name)
                state.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                return
            finally:
                state.running = False
            self.embed_in_background(name)

        threading.Thread(target=work, name=f"index-{name}", daemon=True).start()
        return True

    def status(self, name: str) -> IndexStatus | None:
        if not self.exists(name):
            return None
        status = self.open(name, with_vectors=False).status()
        return status

    # -- embeddings ---------------------------------------------------------------------------

    def embedding_progress(self, name: str) -> EmbeddingProgress:
        return self._embedding.get(name, EmbeddingProgress())

    def embed(self, name: str, *, progress: Progress = _quiet) -> int:
        """Embed what is pending for ``name`` now, in this thread."""
        index = self.open(name)
        state = self._embedding.setdefault(name, EmbeddingProgress())

        def tracked(stage: str, done: int, total: int) -> None:
            state.done, state.total = done, total
            progress(stage, done, total)

        state.running, state.error = True, None
        try:
            return index.embed_pending(progress=tracked, stop=self._stop)
        except Exception as exc:
            state.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            state.running = False

    def embed_in_background(self, name: str) -> threading.Thread | None:
        """Start embedding ``name``'s pending chunks on a daemon thread (one per repository)."""
        if self.settings.index.embedder == "none":
            return None
        with self._guard:
            running = self._threads.get(name)
            if running is not None and running.is_alive():
                return running

            def work() -> None:
                try:
                    count = self.embed(name)
                    log.info("%s: embedded %d chunk(s)", name, count)
                except Exception:
                    log.exception("%s: embedding failed; lexical search still works", name)

            thread = threading.Thread(target=work, name=f"embed-{name}", daemon=True)
            self._threads[name] = thread
        thread.start()
        return thread

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=30)
        with self._guard:
            for index in self._indexes.values():
                index.close()
            self._indexes.clear()
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None


def remove_index(root: Path, name: str) -> None:
    """Delete the index directory of ``name`` (retention of deleted repositories)."""
    import shutil

    shutil.rmtree(root / index_dir_name(name), ignore_errors=True)
