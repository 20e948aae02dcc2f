"""The index's data types and the seams between its stages.

A repository is indexed at one commit, read straight from its bare mirror (no checkout, so
no symlink is ever followed and no filter ever runs):

    RepoReader ──▶ catalog (FileEntry) ──▶ parse (FileSymbols) ──▶ graph / repo map
                                      └──▶ chunks (Chunk) ──▶ BM25 + Embedder → Chroma

Every stage is a pure function of the files it is given, so an incremental update re-runs
the stages for the changed paths only and drops the deleted ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Language = Literal["python", "javascript", "typescript", "tsx", "go", "java"]
SymbolKind = Literal[
    "function", "method", "class", "interface", "struct", "enum", "type", "constant", "variable"
]
ChangeStatus = Literal["A", "M", "D"]


@dataclass(frozen=True)
class TreeEntry:
    """One path of ``git ls-tree -r -l <commit>``."""

    path: str  # repository-relative, forward slashes
    mode: str  # "100644", "100755", "120000" (symlink), "160000" (submodule)
    blob_sha: str
    size: int  # bytes; 0 for submodules


@dataclass(frozen=True)
class Change:
    """One line of ``git diff --name-status -M <old> <new>``; a rename is a D plus an A."""

    status: ChangeStatus
    path: str


class RepoReader(Protocol):
    """Read-only access to a repository's objects (implemented by ``appliance.repos``)."""

    def resolve(self, ref: str) -> str:
        """The full commit sha ``ref`` names; raises ``RepoError`` when it names none."""
        ...

    def tree(self, commit: str) -> list[TreeEntry]:
        """Every path at ``commit`` (recursive)."""
        ...

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Blob contents by sha, read in one batch (``git cat-file --batch``)."""
        ...

    def changes(self, old: str, new: str) -> list[Change]:
        """What changed between two commits, renames split into D + A."""
        ...


@dataclass(frozen=True)
class FileEntry:
    """A catalogued file. ``skipped`` says why it is not parsed or searched (else None)."""

    path: str
    language: Language | None  # None: a text file no grammar covers (still searchable)
    size: int
    blob_sha: str
    skipped: Literal["binary", "vendored", "generated", "too_large", "symlink", None] = None


@dataclass(frozen=True)
class Definition:
    name: str
    kind: SymbolKind
    line_start: int  # 1-based, inclusive
    line_end: int  # 1-based, inclusive
    signature: str  # the first line(s) of the definition up to the body, whitespace-trimmed
    docstring: str | None = None
    parent: str | None = None  # enclosing class/struct name for methods


@dataclass(frozen=True)
class Reference:
    name: str  # an identifier used (called, instantiated, read) but not defined here
    line: int  # 1-based


@dataclass(frozen=True)
class FileSymbols:
    path: str
    language: Language
    definitions: tuple[Definition, ...] = ()
    references: tuple[Reference, ...] = ()
    imports: tuple[str, ...] = ()  # module specifiers as written: "os.path", "./util", "fmt"
    error: str | None = None  # parse problems worth showing (the file is still indexed)


@dataclass(frozen=True)
class Chunk:
    """A span of a file, aligned to symbols where it can be, that gets embedded."""

    path: str
    line_start: int  # 1-based, inclusive
    line_end: int  # 1-based, inclusive
    text: str
    symbol: str | None = None  # the main definition the chunk holds

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line_start}-{self.line_end}"


class Embedder(Protocol):
    """Text → unit-length vectors. Implementations: MiniLM on ONNX Runtime (default),
    MiniLM on torch (the baseline), an OpenAI-compatible ``/v1/embeddings`` endpoint."""

    name: str  # stable id stored with the vectors; a different name means re-embed
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass
class Hit:
    """One search result: a file, or a chunk of it when the lines are known."""

    path: str
    score: float
    line_start: int | None = None
    line_end: int | None = None
    symbol: str | None = None
    reasons: list[str] = field(default_factory=list)  # which signals ranked it, e.g. "bm25 #2"


def paths_of(entries: Iterable[FileEntry]) -> list[str]:
    return [e.path for e in entries]
