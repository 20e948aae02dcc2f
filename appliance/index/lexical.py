"""BM25 keyword search over files or chunks, with a tokenizer that knows code.

**Tokenizer.** A request says "where do we refresh the access token" and the code says
``refreshAccessToken``, ``refresh_access_token`` or ``RefreshAccessToken``. So every
identifier yields its parts (split on ``_`` and on camel/Pascal case: ``HTTPServerError`` →
``http``, ``server``, ``error``) *and* itself lower-cased with underscores dropped
(``refreshaccesstoken``), so the three spellings meet and an exact identifier in a query
still outranks a text that merely has the words. Tokens shorter than two characters and a
short list of English and keyword stop words (``the``, ``self``, ``return``, …) are
dropped; IDF would make them near-worthless anyway, and dropping them keeps the index small.

Stemming is a light plural folding of single words and identifier parts (``users`` →
``user``, ``entries`` → ``entry``, ``classes`` → ``class``), never of a whole compound
identifier. Code and requests mix singular and plural freely, and that is most of what a
stemmer buys here; a full stemmer (Porter, Snowball) would conflate identifiers that mean
different things (``generic`` / ``generate`` → ``gener``) and needs another package.

**Speed.** Source text is mostly ASCII, so words are cut with ``bytes.translate`` +
``split`` (C speed), counted, and each distinct word is split into tokens once per batch.
A document is stored as its bag of words (token → count): BM25 ignores order, and the bags
are what an update re-uses.

**Index.** :class:`Bm25Index` keeps each document's token counts, so
:meth:`Bm25Index.update` re-tokenizes only the documents given and rebuilds the ``bm25s``
score matrix from the cached counts (a fraction of a second for thousands of files);
documents are kept sorted by id, so an update equals a rebuild exactly. ``save`` writes the
``bm25s`` matrix and the token counts to a directory; ``load`` reads them back.

Files and chunks go in separate indexes. For files, :func:`file_document` repeats the path
in front of the content, so ``auth/session.py`` matches "session" strongly however long the
file is.

numpy and bm25s are imported lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import IndexError_

if TYPE_CHECKING:
    import bm25s  # type: ignore[import-untyped]

MIN_TOKEN_LENGTH = 2
PATH_WEIGHT = 3  # how many times file_document repeats the path

_ENGLISH_STOP_WORDS = (
    "an and are as at be been but by can could did do does for from had has have how if in "
    "into is it its may me my no not of on or our should so such than that the their them "
    "then there these they this those to too us was we were what when where which while who "
    "why will with would you your"
)
# keywords and names present in nearly every file of some language
_CODE_STOP_WORDS = (
    "async await cls def elif else end fn func function import let nil none null package pass "
    "private protected public return self static this true false var void"
)
STOP_WORDS = frozenset(_ENGLISH_STOP_WORDS.split()) | frozenset(_CODE_STOP_WORDS.split())

_FORMAT = 1
_DOCS_FILE = "docs.json"
_BM25_DIR = "bm25s"
# Bytes that are not ASCII letters, digits or "_" become spaces; non-ASCII bytes stay, so
# UTF-8 words survive the cut and are split properly by _word_tokens.
_CUT = bytes(
    c if (chr(c).isascii() and (chr(c).isalnum() or c == 0x5F)) or c >= 0x80 else 0x20
    for c in range(256)
)
_WORDS = re.compile(r"\w+")
_PIECES = re.compile(r"[^\W_]+")  # alphanumeric runs: what "_" and punctuation separate
_CASE_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``, in order: see the module docstring."""
    memo: dict[bytes, tuple[str, ...]] = {}
    out: list[str] = []
    for word in text.encode("utf-8", "surrogatepass").translate(_CUT).split():
        tokens = memo.get(word)
        if tokens is None:
            tokens = memo[word] = _word_tokens(word.decode("utf-8", "replace"))
        out.extend(tokens)
    return out


def file_document(path: str, content: str, *, path_weight: int = PATH_WEIGHT) -> str:
    """The text to index for a file: its path ``path_weight`` times, then its content."""
    return (path + "\n") * path_weight + content


def _fold_plural(token: str) -> str:
    if len(token) <= 3 or not token.endswith("s"):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "shes", "zzes")) or (
        token.endswith("ches") and len(token) > 4 and token[-5] not in "aeiou"
    ):  # classes, boxes, matches (but caches)
        return token[:-2]
    if token.endswith(("ss", "us", "is")):
        return token
    return token[:-1]


def _word_tokens(word: str) -> tuple[str, ...]:
    """The tokens of one cut word: an identifier, or for non-ASCII text possibly several
    words joined by punctuation the byte cut kept (``café—naïve``)."""
    if not word.isascii():
        words = _WORDS.findall(word)
        if len(words) != 1:
            return tuple(token for w in words for token in _identifier_tokens(w))
    return _identifier_tokens(word)


def _identifier_tokens(word: str) -> tuple[str, ...]:
    """``parseHTTPRequest`` → ``("parsehttprequest", "parse", "http", "request")``."""
    parts: list[str] = []
    for piece in _PIECES.findall(word):
        if piece.isascii():
            parts.extend(p.lower() for p in _CASE_PARTS.findall(piece))
        else:
            parts.append(piece.lower())
    if not parts:
        return ()
    parts = [_fold_plural(p) for p in parts]
    tokens = ["".join(parts) if len(parts) == 1 else "".join(_PIECES.findall(word)).lower()]
    if len(parts) > 1:
        tokens.extend(parts)
    return tuple(t for t in tokens if len(t) >= MIN_TOKEN_LENGTH and t not in STOP_WORDS)


Bag = dict[str, int]


def merge_bags(bags: Iterable[Mapping[str, int]]) -> Bag:
    """The bag of a text made of the texts of ``bags`` (a file from its chunks)."""
    out: Bag = {}
    for bag in bags:
        for token, count in bag.items():
            out[token] = out.get(token, 0) + count
    return out


def bags_of(texts: Iterable[str]) -> list[Bag]:
    """The bag of tokens of each text (what :class:`Bm25Index` indexes); computing them in
    worker processes and handing them to :meth:`Bm25Index.update_bags` spreads the work."""
    return _token_counts(texts)


def _token_counts(texts: Iterable[str]) -> list[dict[str, int]]:
    """The bag of tokens of each text; one word-splitting memo for the whole batch."""
    memo: dict[bytes, tuple[str, ...]] = {}
    bags: list[dict[str, int]] = []
    for text in texts:
        bag: dict[str, int] = {}
        words = Counter(text.encode("utf-8", "surrogatepass").translate(_CUT).split())
        for word, count in words.items():
            tokens = memo.get(word)
            if tokens is None:
                tokens = memo[word] = _word_tokens(word.decode("utf-8", "replace"))
            for token in tokens:
                bag[token] = bag.get(token, 0) + count
        bags.append(bag)
    return bags


class Bm25Index:
    """A BM25 index over ``(doc_id, text)`` documents. ``k1`` and ``b`` are BM25's usual
    term-saturation and length-normalisation parameters."""

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._bags: dict[str, dict[str, int]] = {}
        self._ids: list[str] = []  # document order in the bm25s matrix
        self._retriever: bm25s.BM25 | None = None

    def __len__(self) -> int:
        return len(self._bags)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._bags

    @property
    def ids(self) -> list[str]:
        """The indexed document ids, sorted."""
        return list(self._ids)

    def build(self, docs: Iterable[tuple[str, str]]) -> None:
        """Index ``docs`` from scratch, replacing whatever was indexed."""
        docs = list(docs)
        ids = [doc_id for doc_id, _ in docs]
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise IndexError_(f"document ids must be unique; repeated: {', '.join(dupes[:5])}")
        self._bags = dict(zip(ids, _token_counts(text for _, text in docs), strict=True))
        self._reindex()

    def update(self, upserts: Mapping[str, str], removed: Iterable[str] = ()) -> None:
        """Add or replace the documents in ``upserts`` (id → text) and drop ``removed``
        (unknown ids are ignored). Only the upserted texts are tokenized."""
        for doc_id in removed:
            self._bags.pop(doc_id, None)
        self._bags.update(zip(upserts, _token_counts(upserts.values()), strict=True))
        self._reindex()

    def update_bags(
        self, upserts: Mapping[str, Mapping[str, int]], removed: Iterable[str] = ()
    ) -> None:
        """:meth:`update` with the documents already tokenized (see :func:`bags_of`)."""
        for doc_id in removed:
            self._bags.pop(doc_id, None)
        self._bags.update((doc_id, dict(bag)) for doc_id, bag in upserts.items())
        self._reindex()

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best documents for ``query`` as ``(doc_id, score)``, best first (ties
        by id). Documents sharing no token with the query are never returned."""
        import numpy as np

        if k <= 0 or self._retriever is None:
            return []
        vocab: dict[str, int] = self._retriever.vocab_dict
        token_ids = [vocab[t] for t in dict.fromkeys(tokenize(query)) if t in vocab]
        if not token_ids:
            return []
        scores = self._retriever.get_scores(token_ids)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:  # keep every document tied with the k-th, then order by id
            kth = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            hits = hits[scores[hits] >= kth]
        ranked = sorted((-float(scores[i]), self._ids[i]) for i in hits)[:k]
        return [(doc_id, -negative) for negative, doc_id in ranked]

    def save(self, directory: str | Path) -> None:
        """Write the index to ``directory`` (created if missing; its files are replaced)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        docs = {"format": _FORMAT, "k1": self.k1, "b": self.b, "ids": self._ids}
        docs["bags"] = [self._bags[doc_id] for doc_id in self._ids]
        docs["matrix"] = self._retriever is not None
        if self._retriever is not None:
            self._retriever.save(str(directory / _BM25_DIR), show_progress=False)
        (directory / _DOCS_FILE).write_text(json.dumps(docs, separators=(",", ":")))

    @classmethod
    def load(cls, directory: str | Path) -> Bm25Index:
        """Read an index written by :meth:`save`; ``IndexError_`` when it is missing,
        damaged or of another format (rebuild it then)."""
        bm25s = _bm25s()

        directory = Path(directory)
        try:
            docs: dict[str, Any] = json.loads((directory / _DOCS_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise IndexError_(
                f"no readable BM25 index in {directory} ({exc}); rebuild the index"
            ) from exc
        if docs.get("format") != _FORMAT:
            raise IndexError_(
                f"the BM25 index in {directory} has format {docs.get('format')!r}, "
                f"this version reads {_FORMAT}; rebuild the index"
            )
        index = cls(k1=docs["k1"], b=docs["b"])
        index._ids = list(docs["ids"])
        index._bags = dict(zip(index._ids, docs["bags"], strict=True))
        if docs.get("matrix"):
            try:
                retriever = bm25s.BM25.load(str(directory / _BM25_DIR), show_progress=False)
            except (OSError, ValueError) as exc:
                raise IndexError_(
                    f"the BM25 matrix in {directory} is unreadable ({exc}); rebuild the index"
                ) from exc
            if retriever.scores["num_docs"] != len(index._ids):
                raise IndexError_(
                    f"the BM25 index in {directory} holds {retriever.scores['num_docs']} "
                    f"documents but lists {len(index._ids)}; rebuild the index"
                )
            index._retriever = retriever
        return index

    def _reindex(self) -> None:
        """Rebuild the bm25s matrix from the cached bags, documents sorted by id."""
        bm25s = _bm25s()

        self._ids = sorted(self._bags)
        if not self._ids:
            self._retriever = None
            return
        vocab: dict[str, int] = {}
        corpus: list[list[int]] = []
        for doc_id in self._ids:
            ids: list[int] = []
            for token, count in self._bags[doc_id].items():
                token_id = vocab.setdefault(token, len(vocab))
                ids.extend([token_id] * count)
            corpus.append(ids)
        if not vocab:  # every document is empty: nothing can match
            self._retriever = None
            return
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        retriever.index((corpus, vocab), create_empty_token=False, show_progress=False)
        self._retriever = retriever


def _bm25s() -> Any:
    """bm25s, imported on first use; it sets its own logger to DEBUG on import, which would
    put a line per index build into the appliance's logs."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s
