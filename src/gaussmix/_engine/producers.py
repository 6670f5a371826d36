"""Producers: a Source and a backend turned into the pass ``Params -> SuffStats``.

The threads producer runs the NumPy/BLAS E-step kernel over the source's chunks on every
core and adds the chunks' statistics. What a row contributes (its weight, a fixed label,
the noise component) is settled in the kernel, so every producer gets it. Per-row
results (responsibilities, densities) come from :func:`row_pass`, chunk by chunk.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .estep import estep_chunk
from .params import Params
from .stats import SuffStats, empty_stats


def thread_pass(source, kind: str, *, labels=None,
                n_threads: int | None = None) -> Callable[[Params], SuffStats]:
    """The E-step pass over ``source`` on the kernel threads.

    Parameters
    ----------
    source : Source
    kind : {"full", "diag", "tied"}
        Scatter layout the M-step reads.
    labels : ndarray of int of shape (n_rows,), optional
        Rows with a label ``k >= 0`` keep component ``k`` (see ``estep_chunk``).
    n_threads : int, optional
        Kernel threads (default $GAUSSMIX_NUM_THREADS, else every core).

    A source that brings its own producer (``source.producer(kind, labels=...)``, a
    Dask source: the kernel on the workers) gets that one: every face builds its pass
    here, so each runs on such a source unchanged.
    """
    own = getattr(source, "producer", None)
    if own is not None:
        return own(kind, labels=labels)

    def run(params: Params) -> SuffStats:
        total = None  # a first chunk's statistics as they are (mclust's small fits)
        start = 0
        for X, w in source.chunks():
            stop = start + X.shape[0]
            fixed = None if labels is None else labels[start:stop]
            stats = estep_chunk(X, w, params, kind, fixed, n_threads)
            total = stats if total is None else total + stats
            start = stop
        if total is None:
            return empty_stats(params.n_components, source.n_features, kind)
        return total

    return run


def sum_stats(source, params: Params, kind: str) -> SuffStats:
    """One E-step pass over every chunk of ``source``, statistics summed."""
    return thread_pass(source, kind)(params)


def row_pass(source, per_chunk: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``per_chunk`` of every chunk of ``source``, concatenated along the rows.

    A source with ``map_rows`` (Dask) returns it lazily instead: a Dask array.
    """
    own = getattr(source, "map_rows", None)
    if own is not None:
        return own(per_chunk)
    parts = [per_chunk(X) for X, _ in source.chunks()]
    return np.concatenate(parts) if parts else np.empty(0)
