"""Starting statistics: scikit-learn's four initialisations, read through a Source.

Each method settles a hard label for some rows from an in-memory sample of the source
(k-means on all rows when they fit in the sample, else on a random subset and then one
assignment pass; k-means++ and random_from_data pick rows of the sample), or random
responsibilities ("random"); one pass over the source then gives the statistics the
first M-step starts from. Sample weights are honoured throughout. Random draws follow
scikit-learn's call sequence, so a given ``random_state`` starts both libraries at the
same place when the sample holds every row.

Rows with missing coordinates (NaN) enter the start with each gap filled by its
column's mean over the observed entries: only the start; EM then uses the conditional
moments (see :mod:`.missing`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import compiled
from .kmeans import kmeans_centres
from .missing import column_means, mean_filled, missing_rows
from .sources import Sample
from .stats import SuffStats, empty_stats, stats_from_labels, stats_from_resp

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

# The starting clustering runs on at most this many rows of the source. Beyond them,
# k-means runs on a random sample of KMEANS_ROWS_PER_COMPONENT rows per component (at
# least KMEANS_MIN_SAMPLE) and keeps the best of as many runs as KMEANS_SUBSET rows pay
# for (at most KMEANS_MAX_RUNS). Which optimum k-means reaches depends on its seeding
# far more than on the sample's size: over 10 seeds, three runs on 300 rows per
# component started W1, W2, W4, W5 and W6 as well as three runs on 1,000, and better
# than one run on 100,000 (see benchmarks/RESULTS.md, issue 16), at a fraction of the
# cost. (mclust's hierarchical start takes 2,000 rows whatever K.)
KMEANS_SUBSET = 100_000
KMEANS_ROWS_PER_COMPONENT = 300
KMEANS_MIN_SAMPLE = 3_000
KMEANS_MAX_RUNS = 3


def kmeans_plan(n_rows, n_components):
    """(rows of the k-means sample, k-means runs) for a source of ``n_rows`` rows."""
    if n_rows <= KMEANS_SUBSET:  # every row, one run: scikit-learn's start
        return KMEANS_SUBSET, 1
    size = min(KMEANS_SUBSET,
               max(KMEANS_MIN_SAMPLE, KMEANS_ROWS_PER_COMPONENT * n_components))
    return size, max(1, min(KMEANS_MAX_RUNS, KMEANS_SUBSET // size))


def _picked_rows(sample, n_components, method, random_state):
    """Positions (in the sample) of the rows k-means++ or random_from_data picks."""
    X, w = sample.X, sample.weights
    if method == "k-means++":
        from sklearn.cluster import kmeans_plusplus  # imported when used: 1 s or more

        return kmeans_plusplus(X, n_components, random_state=random_state,
                               sample_weight=w)[1]
    # random_from_data: distinct rows, a row drawn in proportion to its weight. Draw
    # among rows that carry weight, as for unweighted data, so a zero weight is exactly
    # an absent row (and no weights matches scikit-learn).
    rows = np.arange(X.shape[0])
    p = None
    if w is not None:
        rows = np.flatnonzero(w > 0)
        if not np.all(w[rows] == w[rows][0]):
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                p = w[rows] / w[rows].sum()
            if not (np.all(np.isfinite(p)) and np.count_nonzero(p) >= n_components):
                # Weights so unequal (1e300 and 1e-300) that the small ones' shares
                # underflow to 0, or so large that their sum overflows: the same draw
                # (without replacement, each row in proportion to its weight) by the
                # Gumbel top-k trick, in log space.
                keys = np.log(w[rows]) + random_state.gumbel(size=rows.size)
                return rows[np.argsort(-keys, kind="stable")[:n_components]]
    return rows[random_state.choice(rows.size, size=n_components, replace=False, p=p)]


def start_labels(source, n_components, method, random_state):
    """A function ``(start, chunk) -> labels`` giving each row's starting component
    (-1: none), for every method but "random"; and the sample's column means, which
    fill the gaps of rows with missing coordinates for the start."""
    size, runs = (kmeans_plan(source.n_rows, n_components) if method == "kmeans"
                  else (KMEANS_SUBSET, 1))
    sample = source.sample(size, random_state)
    fill = column_means(sample.X)
    if missing_rows(sample.X) is not None:  # the start clusters gap-filled rows
        sample = Sample(mean_filled(sample.X, fill), sample.weights, sample.rows,
                        sample.complete)
    if method == "kmeans":
        if sample.complete:  # scikit-learn's start
            from sklearn.cluster import KMeans  # imported when used: 1 s or more

            km = KMeans(n_clusters=n_components, n_init=runs, random_state=random_state)
            km.fit(sample.X, sample_weight=sample.weights)
            return (lambda start, chunk: km.labels_[start : start + chunk.shape[0]]), fill
        # Large data: k-means on the sample, then every row to its nearest centre, so
        # the start never costs more than a few EM iterations (as mclust starts its
        # hierarchy on a subset).
        return _nearest_sample_centre(sample, n_components, runs, random_state,
                                      source.n_rows, fill), fill
    picked = sample.rows[_picked_rows(sample, n_components, method, random_state)]
    order = np.argsort(picked)
    positions, components = picked[order], np.arange(n_components)[order]

    def labels(start, chunk):
        out = np.full(chunk.shape[0], -1, dtype=np.intp)
        lo, hi = np.searchsorted(positions, [start, start + chunk.shape[0]])
        out[positions[lo:hi] - start] = components[lo:hi]
        return out

    return labels, fill


def _nearest_sample_centre(sample, n_components, runs, random_state, n_rows, fill):
    """``KMeans(n_components, n_init=runs)`` on the sample, compiled where the start's
    pass over the source's ``n_rows`` is (see :mod:`.kmeans`); its centres' labeller."""
    centres = kmeans_centres(sample.X, sample.weights, n_components, runs, random_state,
                             work=n_rows * n_components * sample.X.shape[1])
    if centres is not None:
        return NearestCentre(centres, fill)
    from sklearn.cluster import KMeans  # imported when used: 1 s or more

    km = KMeans(n_clusters=n_components, n_init=runs, random_state=random_state)
    km.fit(sample.X, sample_weight=sample.weights)
    return NearestCentre(km.cluster_centers_, fill, nearest=km.predict)


class NearestCentre:
    """k-means' labels beyond its sample, ``(start, chunk) -> labels``: each row's
    nearest centre, a row with gaps after they are filled by the sample's column means.
    ``given_stats`` settles the labels and their statistics in one compiled pass where
    it can; ``nearest`` (rows -> labels, default NumPy's) serves the chunks it cannot."""

    def __init__(self, centres, fill, nearest=None):
        self.centres, self.fill = centres, fill
        self.nearest = nearest or self._nearest
        # the distances' terms about the centres' mean (a point near the rows)
        self._terms = compiled.nearest_centre_terms(centres, centres.mean(axis=0))

    def __call__(self, start, chunk):
        return self.nearest(mean_filled(chunk, self.fill))

    def _nearest(self, X):
        towards, offsets = self._terms
        towards = towards.astype(X.dtype)
        labels = np.empty(X.shape[0], dtype=np.intp)
        for a in range(0, X.shape[0], 8192):  # blocks that stay in cache
            scores = X[a : a + 8192] @ towards
            labels[a : a + 8192] = np.argmin(np.add(scores, offsets, out=scores), axis=1)
        return labels


def one_hot(labels, width, dtype=np.float64) -> np.ndarray:
    """Rows of ``width`` responsibilities: 1 in each row's label column, none for -1."""
    labels = np.asarray(labels)
    resp = np.zeros((labels.shape[0], width), dtype=dtype)
    rows = np.flatnonzero(labels >= 0)
    resp[rows, labels[rows]] = 1.0
    return resp


# Up to this K * D, one-hot responsibilities' threaded products sum hard labels faster
# than grouping the rows by label (whose gathers cost per row whatever K and D are):
# measured 1M x 8, K = 8 0.07 s against 0.10 s; 200k x 16, K = 16 0.10 against 0.03.
_ONE_HOT_CHEAPER = 64


def given_stats(source, n_components, kind, resp_of=None, centers=None, fill=None,
                labels_of=None) -> SuffStats:
    """Statistics of given responsibilities over every chunk of ``source``.

    Parameters
    ----------
    resp_of : callable (start, chunk) -> ndarray of shape (m, K) or (m, K + 1)
        The responsibilities of the chunk's rows (before row weights); a last column
        beyond the K Gaussian ones is the noise component's (summed in ``noise_nk``).
    labels_of : callable (start, chunk) -> ndarray of int of shape (m,), optional
        Instead of ``resp_of``: each row's component (-1: none), as one-hot
        responsibilities (for large K * D summed by label, without forming them).
    centers : ndarray of shape (K, D), optional
        Points the "full" scatter is accumulated about (see ``stats_from_resp``).
    fill : ndarray of shape (D,), optional
        What a missing coordinate (NaN) counts as; default its chunk's column mean.
    """
    total = empty_stats(n_components, source.n_features, kind)
    start = 0
    for chunk, w in source.chunks():
        if isinstance(labels_of, NearestCentre):  # assigned and summed in one pass
            stats = compiled.label_stats(chunk, None, w, kind, n_components,
                                         centres=labels_of.centres)
            if stats is not None:
                total = total + _counted(stats, chunk, w)
                start += chunk.shape[0]
                continue
        labels = None if labels_of is None else labels_of(start, chunk)
        resp = None if labels_of is not None else np.asarray(resp_of(start, chunk),
                                                                dtype=chunk.dtype)
        if missing_rows(chunk) is not None:  # a start: gaps filled by column means
            chunk = mean_filled(chunk, fill)
        by_label = None
        if labels is not None:  # compiled where it applies, else by grouping rows
            by_label = compiled.label_stats(chunk, labels, w, kind, n_components)
            if by_label is None and n_components * chunk.shape[1] > _ONE_HOT_CHEAPER:
                by_label = stats_from_labels(chunk, labels, w, kind, n_components)
        if by_label is not None:
            stats, noise_nk = by_label, 0.0
        else:
            if labels is not None:
                resp = one_hot(labels, n_components, chunk.dtype)
            if w is not None:
                resp = resp * w.astype(chunk.dtype)[:, None]
            gauss = np.ascontiguousarray(resp[:, :n_components])
            stats = stats_from_resp(chunk, gauss, kind, centers=centers)
            noise_nk = float(resp[:, n_components:].sum(dtype=np.float64))
        total = total + _counted(stats, chunk, w, noise_nk)
        start += chunk.shape[0]
    return total


def _counted(stats, chunk, w, noise_nk=0.0):
    """A chunk's statistics with its rows' weight and count."""
    return replace(stats,
                   weight=float(chunk.shape[0] if w is None else w.sum(dtype=np.float64)),
                   n_rows=chunk.shape[0] if w is None else int((w > 0).sum()),
                   noise_nk=noise_nk)


def _random_resp(n_components, random_state):
    def resp_of(start, chunk):
        resp = random_state.uniform(size=(chunk.shape[0], n_components))
        resp /= resp.sum(axis=1)[:, None]
        return resp

    return resp_of


def initial_stats(source, n_components, kind, method, random_state) -> SuffStats:
    """Statistics of the starting responsibilities of ``method`` over ``source``."""
    if method == "random":  # no sample: a chunk's gaps take its own column means
        resp_of, fill = _random_resp(n_components, random_state), None
    else:
        labels_of, fill = start_labels(source, n_components, method, random_state)
        # A source that runs this pass where its rows are (Dask: on the workers).
        on_source = getattr(source, "label_stats", None)
        if on_source is not None:
            return on_source(n_components, kind, labels_of, fill)
        return given_stats(source, n_components, kind, fill=fill, labels_of=labels_of)

    return given_stats(source, n_components, kind, resp_of, fill=fill)
