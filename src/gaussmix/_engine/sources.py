"""Data sources: where the rows of a fit come from, one bounded chunk at a time."""

from __future__ import annotations

from typing import Iterator

import numpy as np

# The E-step kernel works through a chunk in cache-sized blocks on every core and
# allocates per thread, not per chunk (see _estep), so a chunk can be large: it only
# has to amortise the per-chunk set-up (factors, merges) and give every core blocks.
# About this many elements of (D + K)-wide rows per chunk:
_TARGET_ELEMENTS = 1 << 23


def default_chunk_rows(n_components: int, n_features: int) -> int:
    """Rows per chunk for K components and D features."""
    return int(max(16384, _TARGET_ELEMENTS // max(n_components + n_features, 1)))


class ArraySource:
    """Rows of an in-memory (or memory-mapped) array with optional row weights.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
    chunk_rows : int
        Rows per chunk; fitting allocates O(chunk_rows * K * D) beyond X.
    """

    def __init__(self, X, sample_weight=None, chunk_rows=4096):
        self.X = X
        self.sample_weight = sample_weight
        self.chunk_rows = int(chunk_rows)

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(X_chunk, weight_chunk_or_None)`` in row order."""
        w = self.sample_weight
        for start in range(0, self.X.shape[0], self.chunk_rows):
            stop = start + self.chunk_rows
            yield self.X[start:stop], (None if w is None else w[start:stop])
