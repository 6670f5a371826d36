"""k-means on the start's sample, compiled: scikit-learn's ``KMeans`` without its
per-call overhead.

On a sample of a few thousand rows, ``KMeans(n_init=3)`` spends most of its time outside
the arithmetic: k-means++ seeding is a Python loop over the centres with a validated
distance call each, and every run pays input checks and thread-pool setup (W5, three
runs on 4,800 rows x 16, K = 16: 16-27 ms, against about 9 ms compiled).
:func:`kmeans_centres` runs the same algorithm in two compiled calls per run
(``_compiled_kernels.kmeans_seeds`` and ``lloyd``): the data centred at their mean,
greedy k-means++ seeding with scikit-learn's draws from ``random_state`` in
scikit-learn's order, Lloyd's iterations to its stopping rule, the run of least inertia
kept. Given the same ``random_state`` it finds
scikit-learn's centres, to rounding.
"""

from __future__ import annotations

import numpy as np

from . import compiled

MAX_ITER = 300  # scikit-learn's defaults
TOL = 1e-4


def kmeans_centres(X, sample_weight, n_clusters, n_init, random_state, work):
    """The centres (K, D) of ``KMeans(n_clusters, n_init=n_init).fit(X, sample_weight)``
    drawing from ``random_state`` (a ``RandomState``, advanced as ``KMeans`` advances
    it); None where the compiled kernels do not run now (``work``: the n K D that decides
    that, see ``compiled._ready``): use ``KMeans``."""
    seeds = compiled._ready(work, "kmeans_seeds")
    lloyd = compiled._ready(work, "lloyd")
    if seeds is None or lloyd is None:
        return None
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    X = np.ascontiguousarray(X - mean)  # as KMeans centres dense data, for precision
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    x_sq = np.einsum("ij,ij->i", X, X)
    tol = TOL * float(np.mean(np.var(X, axis=0)))
    trials = 2 + int(np.log(n_clusters))
    best = None
    for _ in range(n_init):
        first = random_state.choice(n, p=w / w.sum())
        uniforms = random_state.uniform(size=(n_clusters - 1, trials))
        indices = np.empty(n_clusters, dtype=np.int64)
        seeds(X, w, x_sq, first, uniforms, indices)
        centres = X[indices]
        labels = np.empty(n, dtype=np.int64)
        inertia, _ = lloyd(X, w, centres, tol, MAX_ITER, labels)
        # KMeans keeps the first run of least inertia, and a later run only when it is
        # a different clustering (not the same one relabelled, to rounding).
        if best is None or (inertia < best[0]
                            and not _same_clustering(labels, best[1], n_clusters)):
            best = (inertia, labels, centres)
    return best[2] + mean


def _same_clustering(a, b, n_clusters):
    """Whether labels ``a`` and ``b`` are one partition under two namings."""
    def distinct(values, size):
        return np.count_nonzero(np.bincount(values, minlength=size))

    pairs = distinct(a * n_clusters + b, n_clusters * n_clusters)
    return pairs == distinct(a, n_clusters) == distinct(b, n_clusters)
