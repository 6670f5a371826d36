"""The compiled k-means of the start's sample (gaussmix._engine.kmeans) against
scikit-learn's KMeans: the same centres, labels and inertia from the same random state,
and the state advanced as KMeans advances it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

pytest.importorskip("numba")

from gaussmix._engine import _compiled_kernels  # noqa: E402
from gaussmix._engine.init import NearestCentre  # noqa: E402
from gaussmix._engine.kmeans import kmeans_centres  # noqa: E402


def _blobs(n, d, k, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d)) + offset
    scales = rng.uniform(0.3, 2.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return means[labels] + rng.normal(size=(n, d)) * scales[labels]


@pytest.mark.parametrize("n_init", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, d, k, offset", [(3000, 2, 3, 0.0), (4800, 16, 16, 0.0),
                                             (2000, 5, 7, 1e4)])
def test_kmeans_finds_scikit_learns_centres(n, d, k, offset, weighted, n_init):
    for seed in range(3):
        X = _blobs(n, d, k, seed, offset)
        w = np.random.default_rng(seed).uniform(0.1, 3.0, n) if weighted else None
        ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
        km = KMeans(k, n_init=n_init, random_state=theirs).fit(X, sample_weight=w)
        got = kmeans_centres(X, w, k, n_init, ours, work=np.inf)
        np.testing.assert_allclose(got, km.cluster_centers_, rtol=1e-10,
                                   atol=1e-10 * (1 + abs(offset)))
        # the random state is left where KMeans leaves it: the next draws agree
        assert ours.randint(2**31) == theirs.randint(2**31)


def test_lloyd_relocates_an_empty_cluster_as_kmeans_does():
    """A centre far from every row loses its rows at once: it takes the row farthest
    from its centre, as in KMeans; labels, centres, inertia and iterations agree."""
    X = _blobs(1500, 3, 4, seed=5)
    start = np.vstack([X[:3], [[1e3, 1e3, 1e3]]])
    km = KMeans(4, init=start, n_init=1).fit(X)
    mean = X.mean(axis=0)
    centres = start - mean
    labels = np.empty(X.shape[0], dtype=np.int64)
    tol = 1e-4 * np.var(X, axis=0).mean()
    inertia, n_iter = _compiled_kernels.lloyd(np.ascontiguousarray(X - mean),
                                              np.ones(X.shape[0]), centres, tol, 300,
                                              labels)
    np.testing.assert_allclose(centres + mean, km.cluster_centers_, rtol=1e-10)
    np.testing.assert_array_equal(labels, km.labels_)
    assert inertia == pytest.approx(km.inertia_, rel=1e-10)
    assert n_iter == km.n_iter_


def test_kmeans_with_fewer_distinct_rows_than_clusters():
    """Duplicated rows: every distinct row becomes a centre, none is NaN, inertia 0."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 3))
    X = points[rng.integers(5, size=3000)]
    got = kmeans_centres(X, None, 8, 3, np.random.RandomState(0), work=np.inf)
    assert np.all(np.isfinite(got))
    distances = ((X[:, None] - got) ** 2).sum(-1).min(axis=1)
    assert distances.max() == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_nearest_centre_matches_direct_differences(dtype):
    """The labeller for chunks the compiled pass leaves (NumPy, about the centres'
    mean) against direct differences, far from the origin."""
    X = _blobs(20000, 4, 6, seed=1, offset=1e4).astype(dtype)
    centres = _blobs(6, 4, 6, seed=2, offset=1e4)
    got = NearestCentre(centres, np.zeros(4))(0, X)
    direct = ((X.astype(np.float64)[:, None] - centres) ** 2).sum(-1)
    nearest = np.argmin(direct, axis=1)
    # float32 rounding of a row may swap centres at a near-tie only
    changed = got != nearest
    gaps = direct[changed, got[changed]] - direct[changed, nearest[changed]]
    assert changed.mean() < 1e-3 and np.all(gaps <= 1e-3 * direct[changed].min(axis=1) + 1)


def test_same_clustering_is_up_to_naming():
    from gaussmix._engine.kmeans import _same_clustering

    rng = np.random.default_rng(0)
    a = rng.integers(4, size=500)
    renamed = np.array([2, 0, 3, 1])[a]
    assert _same_clustering(a, renamed, 4)
    split = renamed.copy()
    split[np.flatnonzero(a == 0)[:3]] = 0  # three rows of one cluster moved to another
    assert not _same_clustering(a, split, 4)
    assert not _same_clustering(a, np.where(a == 3, 2, a), 4)  # two clusters merged
