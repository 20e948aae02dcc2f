"""Small helpers the benchmarks share: percentiles, rounding, and printing numbers."""

from __future__ import annotations

import math
from typing import Any


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def ms_text(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"
