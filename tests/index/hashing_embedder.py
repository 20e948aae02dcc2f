"""A stand-in for the embedding model where a test needs many runs of it and no model: words
hashed into a small vector, so equal texts get equal vectors and similar texts near ones."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence


class HashingEmbedder:
    """Satisfies :class:`appliance.index.types.Embedder`. ``before_batch(n)`` is called before
    the n-th batch (from 1) is embedded: a test's hook to make something happen meanwhile."""

    name = "hashing-test"
    dim = 64

    def __init__(self, before_batch: Callable[[int], None] | None = None) -> None:
        self.before_batch = before_batch
        self.batches: list[list[str]] = []

    def vector(self, text: str) -> list[float]:
        counts = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            counts[int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        norm = math.sqrt(sum(c * c for c in counts))
        return [c / norm for c in counts] if norm else [1.0] + [0.0] * (self.dim - 1)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        if self.before_batch is not None:
            self.before_batch(len(self.batches))
        return [self.vector(t) for t in texts]
