"""Sources: where the rows of a fit come from, one bounded chunk at a time.

A Source is anything with ``n_rows``, ``n_features``, ``dtype``, ``chunks()`` (a
re-iterable of ``(X_chunk, weight_chunk_or_None)`` in row order) and
``sample(n, random_state)`` (an in-memory random subset). The engine reads data only
through these: the E-step passes through ``chunks()``, initialisation (k-means on a
subset, mclust's hierarchical start) through ``sample``. A file, a Dask array or a GPU
array becomes fittable by every face by being a Source.
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

import numpy as np

# The E-step kernel works through a chunk in cache-sized blocks on every core and
# allocates per thread, not per chunk (see estep), so a chunk can be large: it only
# has to amortise the per-chunk set-up (factors, merges) and give every core blocks.
# About this many elements of (D + K)-wide rows per chunk:
_TARGET_ELEMENTS = 1 << 23


def default_chunk_rows(n_components: int, n_features: int) -> int:
    """Rows per chunk for K components and D features."""
    return int(max(16384, _TARGET_ELEMENTS // max(n_components + n_features, 1)))


@runtime_checkable
class Source(Protocol):
    """Rows of a fit: the protocol every producer and initialisation reads through."""

    n_rows: int
    n_features: int
    dtype: np.dtype

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """``(X_chunk, weight_chunk_or_None)`` in row order; may be iterated again."""

    def sample(self, n: int, random_state) -> "Sample":
        """At most ``n`` rows in memory (see :class:`Sample`)."""


class Sample:
    """An in-memory subset of a source's rows.

    Attributes
    ----------
    X : ndarray of shape (m, D)
    weights : ndarray of shape (m,) or None
    rows : ndarray of int of shape (m,)
        Their positions in the source, increasing.
    complete : bool
        Whether these are all the source's rows, in order.
    """

    def __init__(self, X, weights, rows, complete):
        self.X, self.weights, self.rows, self.complete = X, weights, rows, complete


def draw_rows(n_rows: int, n: int, random_state, weights=None) -> np.ndarray | None:
    """Sorted positions of ``n`` distinct rows drawn uniformly among those with a positive
    weight, or None when every row is kept (no random number is drawn then)."""
    if n >= n_rows:
        return None
    pool = None if weights is None else np.flatnonzero(weights > 0)
    picked = draw_positions(n_rows if pool is None else pool.size, n, random_state)
    return picked if pool is None else pool[picked]


def draw_positions(size, n, random_state) -> np.ndarray:
    """``n`` distinct sorted integers in [0, size), uniformly (every n-subset equally
    likely). RandomState.choice without replacement permutes the whole pool (40 ms for
    a million rows, 320 MB for 40 million); a draw of a small share is made by
    rejection instead."""
    if size > 16 * n:
        return _sparse_draw(size, n, random_state)
    return np.sort(random_state.choice(size, size=min(size, n), replace=False))


def _sparse_draw(size, n, random_state) -> np.ndarray:
    """``n`` distinct sorted integers in [0, size), uniformly, for ``n << size``."""
    draw = getattr(random_state, "integers", None) or random_state.randint
    picked = _sorted_distinct(draw(0, size, n))
    while picked.size < n:
        picked = _sorted_distinct(np.concatenate([picked, draw(0, size, n - picked.size)]))
    return picked


def _sorted_distinct(values):
    """``np.unique(values)`` by a sort (NumPy 2's hashing unique: 10x slower here)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


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

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(X_chunk, weight_chunk_or_None)`` in row order."""
        w = self.sample_weight
        for start in range(0, self.X.shape[0], self.chunk_rows):
            stop = start + self.chunk_rows
            yield self.X[start:stop], (None if w is None else w[start:stop])

    def sample(self, n: int, random_state) -> Sample:
        """All rows when ``n >= n_rows``, else ``n`` rows with a positive weight drawn
        without replacement by ``random_state`` (NumPy RandomState or Generator)."""
        rows = draw_rows(self.n_rows, n, random_state, self.sample_weight)
        w = self.sample_weight
        if rows is None:
            return Sample(self.X, w, np.arange(self.n_rows), True)
        return Sample(self.X[rows], None if w is None else w[rows], rows, False)


def take_rows(source, rows) -> np.ndarray:
    """The rows at positions ``rows`` (in that order), gathered in one pass."""
    rows = np.asarray(rows, dtype=np.intp)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    out = np.empty((rows.size, source.n_features), dtype=source.dtype)
    start = 0
    for chunk, _ in source.chunks():
        stop = start + chunk.shape[0]
        lo, hi = np.searchsorted(wanted, [start, stop])
        out[order[lo:hi]] = chunk[wanted[lo:hi] - start]
        start = stop
    return out


def sample_through_chunks(source, n: int, random_state) -> Sample:
    """A source's :meth:`~Source.sample` read through its chunks: all rows when
    ``n >= n_rows``, else ``n`` distinct rows drawn uniformly (one pass). For sources
    without row weights (files)."""
    rows = draw_rows(source.n_rows, n, random_state)
    if rows is None:
        X = np.concatenate([X for X, _ in source.chunks()])
        return Sample(X, None, np.arange(source.n_rows), True)
    return Sample(take_rows(source, rows), None, rows, False)
