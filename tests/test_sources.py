"""Every face reads its rows only through a Source, and iterates only in the one loop.

``CountingSource`` hides its array (no ``X``): a face that reached past ``chunks()`` and
``sample()`` would fail. It counts its passes and which of them the engine's one EM loop
(``gaussmix._engine.loop.run_em``) drove, and the fits must equal the same fits on the
plain array.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gaussmix import GaussianMixture, Mixture, Gauss, select
from gaussmix._engine import loop
from gaussmix._engine.sources import ArraySource, Source, take_rows
from gaussmix._models.prior import prior_control


def _inside_the_loop() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is loop.run_em.__code__:
            return True
        frame = frame.f_back
    return False


class CountingSource:
    def __init__(self, X, sample_weight=None, chunk_rows=37):
        self._rows = ArraySource(X, sample_weight, chunk_rows)
        self.n_rows, self.n_features, self.dtype = X.shape[0], X.shape[1], X.dtype
        self.passes = self.loop_passes = self.samples = 0

    def chunks(self):
        self.passes += 1
        self.loop_passes += _inside_the_loop()
        return self._rows.chunks()

    def sample(self, n, random_state):
        self.samples += 1
        return self._rows.sample(n, random_state)


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    return np.vstack([c + rng.normal(size=(n // 3, 2)) * s
                      for c, s in zip(centres, (1.0, 0.7, 1.5))])


def test_counting_source_is_a_source_without_its_array():
    source = CountingSource(_blobs())
    assert isinstance(source, Source) and not hasattr(source, "X")


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical", "VEV"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_mixture_fits_a_source_through_the_loop(cov, weighted):
    X = _blobs()
    w = np.random.default_rng(1).integers(0, 3, size=len(X)).astype(float) if weighted \
        else None
    source = CountingSource(X, w)
    kwargs = dict(covariance_type=cov, random_state=0, tol=1e-6)
    got = GaussianMixture(3, **kwargs).fit(source)
    want = GaussianMixture(3, **kwargs).fit(X, sample_weight=w)
    assert got.n_iter_ == want.n_iter_
    np.testing.assert_allclose(got.means_, want.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.covariances_, want.covariances_, rtol=1e-9, atol=1e-12)
    assert got.lower_bound_ == pytest.approx(want.lower_bound_, rel=1e-12)
    # The start's E-step and one per iteration ran in the loop; the k-means start read a
    # sample, then one pass gave its statistics.
    assert source.loop_passes == got.n_iter_ + 1
    assert source.passes == source.loop_passes + 1
    assert source.samples == 1


def test_mixture_fits_a_source_through_the_loop():
    X = _blobs()
    rng = np.random.default_rng(3)
    starts = [(rng.normal(size=2) * 3, np.eye(2), 1 / 3) for _ in range(3)]
    source = CountingSource(X)
    got = Mixture(Gauss(*s) for s in starts).fit(source, n_steps=7)
    want = Mixture(Gauss(*s) for s in starts).fit(X, n_steps=7)
    np.testing.assert_allclose(got.means, want.means, rtol=1e-10)
    np.testing.assert_allclose(got.log_likelihoods_, want.log_likelihoods_, rtol=1e-12)
    np.testing.assert_allclose(got[0].r, want[0].r, rtol=1e-9, atol=1e-12)
    assert source.loop_passes == 7 + 1  # the start's E-step, then one per step
    assert source.passes == source.loop_passes + 1  # and the responsibilities at the end


@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("prior", [False, True])
def test_select_fits_a_source_through_the_loop(noise, prior):
    X = _blobs(seed=5)
    models = ["EII", "VVI", "EEE", "VVV"]
    kwargs = dict(G=range(1, 4), models=models, backend="numpy")
    if noise:
        rng = np.random.default_rng(2)
        X = np.vstack([X, rng.uniform(-6, 12, size=(30, 2))])
        kwargs["noise"] = np.r_[np.zeros(len(X) - 30, bool), np.ones(30, bool)]
    if prior:
        kwargs["prior"] = prior_control()
    source = CountingSource(X)
    got = select(source, **kwargs)
    want = select(X, **kwargs)
    a, b = got.bic.to_numpy(), want.bic.to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-10)
    np.testing.assert_allclose(got.icl.to_numpy()[~np.isnan(a)],
                               want.icl.to_numpy()[~np.isnan(b)], rtol=1e-10)
    np.testing.assert_array_equal(got.n_iter.to_numpy(), want.n_iter.to_numpy())
    assert (got.best_model, got.best_G) == (want.best_model, want.best_G)
    np.testing.assert_array_equal(got.classification, want.classification)
    # Every cell started from its partition with an M-step; each of its iterations is
    # one pass of the loop. Without noise, G = 1 is one closed-form fit per class.
    n_iter = got.n_iter.copy()
    ok = ~got.bic.isna()
    expected = int(n_iter[ok].loc[n_iter.index >= 2].to_numpy().sum())
    if noise:
        expected += int(n_iter[ok].loc[[1]].to_numpy().sum())
    else:
        from gaussmix import get_model

        expected += len({get_model(m).single_class for m in models})
    assert source.loop_passes == expected
    assert source.samples >= 1


def test_take_rows_keeps_the_order_given():
    X = _blobs()
    rows = np.array([250, 3, 77, 140, 0])
    np.testing.assert_array_equal(take_rows(ArraySource(X, None, 16), rows), X[rows])
