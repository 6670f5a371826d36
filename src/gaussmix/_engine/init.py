"""Starting statistics: scikit-learn's four initialisations, sample weights honoured.

Each method yields responsibilities chunk by chunk (hard labels for the k-means family,
random ones for "random"), turned into sufficient statistics the M-step can start from.
Random draws follow scikit-learn's call sequence so a given ``random_state`` starts both
libraries at the same place when no sample weights are given.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from .stats import SuffStats, empty_stats, stats_from_resp

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

# Above this many rows the "kmeans" start clusters a random subset of this size.
KMEANS_SUBSET = 100_000


def _initial_labels(X, sample_weight, n_components, method, random_state):
    """Hard start: a label per row, -1 for rows that start in no component."""
    n_samples = X.shape[0]
    if method == "kmeans":
        km = KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
        if n_samples <= KMEANS_SUBSET:
            return km.fit(X, sample_weight=sample_weight).labels_
        # Large data: k-means on a random subset, then every row to its nearest centre,
        # so the start never costs more than a few EM iterations (as mclust starts its
        # hierarchical clustering on a subset).
        rows = np.flatnonzero(sample_weight > 0) if sample_weight is not None else None
        pool = n_samples if rows is None else rows.size
        subset = np.sort(random_state.choice(pool, size=min(pool, KMEANS_SUBSET),
                                             replace=False))
        if rows is not None:
            subset = rows[subset]
        km.fit(X[subset], sample_weight=None if sample_weight is None
               else sample_weight[subset])
        return km.predict(X)
    labels = np.full(n_samples, -1, dtype=np.intp)
    if method == "k-means++":
        _, indices = kmeans_plusplus(
            X, n_components, random_state=random_state, sample_weight=sample_weight
        )
    else:  # random_from_data: distinct rows, a row drawn in proportion to its weight
        # Draw among rows that carry weight, in the same way as for unweighted data, so
        # a zero weight is exactly an absent row (and no weights matches scikit-learn).
        rows = np.arange(n_samples)
        p = None
        if sample_weight is not None:
            rows = np.flatnonzero(sample_weight > 0)
            w = sample_weight[rows]
            if not np.all(w == w[0]):
                p = w / w.sum()
        indices = rows[random_state.choice(rows.size, size=n_components, replace=False, p=p)]
    labels[indices] = np.arange(n_components)
    return labels


def initial_stats(source, n_components, kind, method, random_state) -> SuffStats:
    """Statistics of the starting responsibilities over every chunk of ``source``."""
    X, sample_weight = source.X, source.sample_weight
    n_features = X.shape[1]
    labels = None
    if method != "random":
        labels = _initial_labels(X, sample_weight, n_components, method, random_state)
    total = empty_stats(n_components, n_features, kind)
    start = 0
    for chunk, w in source.chunks():
        stop = start + chunk.shape[0]
        if labels is None:
            resp = random_state.uniform(size=(chunk.shape[0], n_components))
            resp /= resp.sum(axis=1)[:, None]
            resp = resp.astype(chunk.dtype)
        else:
            resp = np.zeros((chunk.shape[0], n_components), dtype=chunk.dtype)
            lab = labels[start:stop]
            rows = np.flatnonzero(lab >= 0)
            resp[rows, lab[rows]] = 1.0
        if w is not None:
            resp *= w.astype(chunk.dtype)[:, None]
        total = total + replace(
            stats_from_resp(chunk, resp, kind),
            weight=float(chunk.shape[0] if w is None else w.sum(dtype=np.float64)),
            n_rows=chunk.shape[0] if w is None else int((w > 0).sum()),
        )
        start = stop
    return total
