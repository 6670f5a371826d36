"""A common scale of the row weights changes nothing (issue 17, class 2).

Only the weights' ratios carry information: every guard that looks at counts must be
relative to the data's total weight. Fits with ``w`` and ``s * w`` must agree for every
scale ``s`` that keeps the weights finite and positive, subnormal ones included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gaussmix import GaussianMixture

MODELS = ["full", "tied", "diag", "spherical", "EII", "VEI", "EEV", "VVE"]


def _data(seed, n=120):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n // 2, 2)), rng.normal(size=(n // 2, 2)) * 2 + 5])
    return X, rng.uniform(0.1, 3.0, size=n)


def _fit(X, w, cov, init="kmeans"):
    return GaussianMixture(2, covariance_type=cov, random_state=0, init_params=init,
                           tol=1e-8, max_iter=200).fit(X, sample_weight=w)


def _same(a, b):
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9, atol=1e-12)
    assert np.isfinite(a.lower_bound_)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-10)
    assert a.n_iter_ == b.n_iter_


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cov=st.sampled_from(MODELS), log_scale=st.integers(-300, 300),
       init=st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"]),
       seed=st.integers(0, 1000))
def test_a_common_scale_of_the_weights_changes_nothing(cov, log_scale, init, seed):
    X, w = _data(seed)
    scaled = w * 10.0**log_scale
    if not np.all(np.isfinite(scaled) & (scaled > 0)):
        return
    _same(_fit(X, scaled, cov, init), _fit(X, w, cov, init))


@pytest.mark.parametrize("scale", [1e-10, 1e-100, 1e100, 1e-310])
def test_examples(scale):
    X, w = _data(3)
    _same(_fit(X, w * scale, "EII"), _fit(X, w, "EII"))
    _same(_fit(X, np.full(len(X), scale), "full"), _fit(X, None, "full"))
