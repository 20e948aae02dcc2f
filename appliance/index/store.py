"""Where a repository's index lives between runs: one SQLite file per repository.

``<data dir>/index/<repo>/index.sqlite`` holds the indexed commit, the file catalog, each
file's text and symbols (as JSON) and its chunks' line spans (their text is cut from the
file's), with an ``embedded`` flag per chunk so embedding can run behind the fast stages and
resume after a restart. The BM25 indexes are rebuilt from
these rows in memory (cheap); the vectors live in Chroma (:mod:`appliance.index.vectors`).

Writes happen in one transaction per update, so a crash mid-update leaves the previous
commit's index whole (the commit is recorded last, in the same transaction).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from appliance.index.types import Chunk, Definition, FileEntry, FileSymbols, Reference

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, language TEXT, size INTEGER NOT NULL,
    blob_sha TEXT NOT NULL, skipped TEXT
);
CREATE TABLE IF NOT EXISTS symbols (path TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS texts (path TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL, symbol TEXT, embedded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(embedded) WHERE embedded = 0;
"""


def symbols_to_json(fs: FileSymbols) -> str:
    return json.dumps(asdict(fs), separators=(",", ":"))


def symbols_from_json(text: str) -> FileSymbols:
    data: dict[str, Any] = json.loads(text)
    return FileSymbols(
        path=data["path"],
        language=data["language"],
        definitions=tuple(Definition(**d) for d in data["definitions"]),
        references=tuple(Reference(**r) for r in data["references"]),
        imports=tuple(data["imports"]),
        error=data.get("error"),
    )


class IndexStore:
    """The persisted index of one repository. Thread-safe (one lock around one connection)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        version = self.meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            # another layout: an index is derived data, so start it again
            self._db.executescript(
                "DROP TABLE meta; DROP TABLE files; DROP TABLE symbols; DROP TABLE texts; "
                "DROP TABLE chunks;" + _SCHEMA
            )
        self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta --------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def commit(self) -> str | None:
        """The commit the index describes (None: never indexed)."""
        return self.meta("commit")

    # -- writes ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def clear(self) -> None:
        with self.transaction() as db:
            for table in ("files", "symbols", "texts", "chunks"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.execute("DELETE FROM meta WHERE key != 'schema_version'")

    def apply(
        self,
        *,
        commit: str,
        removed: Iterable[str],
        files: Sequence[FileEntry],
        symbols: Sequence[FileSymbols],
        texts: dict[str, str],
        chunks: Sequence[Chunk],
        extra_meta: dict[str, str] | None = None,
    ) -> None:
        """Replace what is known about ``removed`` and the given files, then record ``commit``.

        ``removed`` are paths gone (or changed: their old rows go first); ``files`` etc. are
        the new rows. One transaction: readers see the old index or the new one.
        """
        gone = list(removed)
        with self.transaction() as db:
            for table in ("files", "symbols", "texts", "chunks"):
                db.executemany(
                    f"DELETE FROM {table} WHERE path = ?",  # noqa: S608 - fixed table names
                    [(p,) for p in gone],
                )
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                [(f.path, f.language, f.size, f.blob_sha, f.skipped) for f in files],
            )
            db.executemany(
                "INSERT OR REPLACE INTO symbols VALUES (?, ?)",
                [(s.path, symbols_to_json(s)) for s in symbols],
            )
            db.executemany("INSERT OR REPLACE INTO texts VALUES (?, ?)", list(texts.items()))
            db.executemany(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, 0)",
                [(c.id, c.path, c.line_start, c.line_end, c.symbol) for c in chunks],
            )
            for key, value in (extra_meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('commit', ?)", (commit,))

    def mark_embedded(self, chunk_ids: Sequence[str]) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE chunks SET embedded = 1 WHERE id = ?", [(i,) for i in chunk_ids])

    def reset_embeddings(self) -> None:
        with self.transaction() as db:
            db.execute("UPDATE chunks SET embedded = 0")

    # -- reads -------------------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def files(self) -> list[FileEntry]:
        return [FileEntry(*row) for row in self._rows("SELECT * FROM files ORDER BY path")]

    def symbols(self) -> dict[str, FileSymbols]:
        rows = self._rows("SELECT path, data FROM symbols")
        return {path: symbols_from_json(data) for path, data in rows}

    def texts(self) -> dict[str, str]:
        return dict(self._rows("SELECT path, text FROM texts"))

    def text(self, path: str) -> str | None:
        rows = self._rows("SELECT text FROM texts WHERE path = ?", (path,))
        return str(rows[0][0]) if rows else None

    def _with_text(self, rows: list[tuple[Any, ...]]) -> list[Chunk]:
        paths = sorted({r[0] for r in rows})
        lines: dict[str, list[str]] = {}
        for i in range(0, len(paths), 500):
            part = paths[i : i + 500]
            marks = ",".join("?" * len(part))
            for path, text in self._rows(
                f"SELECT path, text FROM texts WHERE path IN ({marks})",  # noqa: S608
                part,
            ):
                lines[path] = text.split("\n")
        return [
            Chunk(
                path=r[0],
                line_start=r[1],
                line_end=r[2],
                symbol=r[3],
                text="\n".join(lines.get(r[0], [])[r[1] - 1 : r[2]]),
            )
            for r in rows
        ]

    def chunks(self) -> list[Chunk]:
        return self._with_text(
            self._rows("SELECT path, line_start, line_end, symbol FROM chunks ORDER BY id")
        )

    def pending_chunks(self, limit: int) -> list[Chunk]:
        rows = self._rows(
            "SELECT path, line_start, line_end, symbol FROM chunks WHERE embedded = 0 "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return self._with_text(rows)

    def pending_chunks_by_id(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The chunks among ``chunk_ids`` that exist and are not embedded, with today's text."""
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            rows += self._rows(
                "SELECT path, line_start, line_end, symbol FROM chunks "  # noqa: S608
                f"WHERE embedded = 0 AND id IN ({marks})",
                part,
            )
        return self._with_text(rows)

    def chunk_counts(self) -> tuple[int, int]:
        """(embedded, total) chunks."""
        [(done, total)] = self._rows("SELECT COALESCE(SUM(embedded), 0), COUNT(*) FROM chunks")
        return int(done), int(total)
