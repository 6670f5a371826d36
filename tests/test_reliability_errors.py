"""Extreme data (scales 1e-150 .. 1e200, shifts, constant columns, duplicates): no NaN in
any output, and every failure a typed FitError or a clear ValueError (issue 17)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _deadline import within_deadline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaussmix import (
    DegenerateCovarianceError,
    FitError,
    Gauss,
    GaussianMixture,
    Mixture,
    select,
)
from gaussmix._mclust.hc import qclass, starting_partitions

RNG = np.random.default_rng(4)
X2 = np.vstack([RNG.normal(0.0, 1.0, (40, 2)), RNG.normal(5.0, 1.0, (40, 2))])
X1 = RNG.normal(size=100)

SCALES = [1e-150, 1e-40, 1.0, 1e40, 1e150, 1e160, 1e200]
SHIFTS = [0.0, 1e9, -1e9, 1e100]


@st.composite
def extreme_data(draw):
    n = draw(st.integers(6, 30))
    d = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    X = np.random.default_rng(seed).normal(size=(n, d))
    if draw(st.booleans()):  # two groups
        X[: n // 2] += 6.0
    X = X * draw(st.sampled_from(SCALES)) + draw(st.sampled_from(SHIFTS))
    if d > 1 and draw(st.booleans()):
        X[:, draw(st.integers(0, d - 1))] = draw(st.sampled_from([0.0, 3.0, 1e200]))
    if draw(st.booleans()):  # duplicated rows
        X = np.vstack([X, X[: draw(st.integers(1, n))]])
    return X


FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
FAR = np.array([1e200, -1e200, 1e-300, 1e308])


def _check_estimator_outputs(gm, X):
    d = X.shape[1]
    queries = np.vstack([X[:3], np.tile(FAR[:, None], (1, d))])
    for fn in (gm.score_samples, gm.predict_proba, gm.predict):
        assert not np.isnan(fn(queries)).any(), fn.__name__
    proba = gm.predict_proba(queries)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert np.all(gm.score_samples(queries) < np.inf)


@FAST
@given(X=extreme_data())
def test_select_on_extreme_data(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = within_deadline(select, X, G=[1, 2, 3],
                                     models=["EII", "VVI", "VEV", "EVE"], n_jobs=1)
        except FitError:  # every cell failed: typed, not a crash
            return
    assert np.isfinite(result.bic_value)
    assert not np.isnan(result.z).any() and not np.isnan(result.uncertainty).any()
    assert result.classification.min() >= 0


@FAST
@given(X=extreme_data(), family=st.sampled_from(["full", "diag", "spherical", "tied"]))
def test_gaussian_mixture_on_extreme_data(X, family):
    gm = GaussianMixture(2, covariance_type=family, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            within_deadline(gm.fit, X)
        except ValueError as exc:  # scikit-learn's ValueErrors, FitError among them
            assert "Traceback" not in str(exc)
            return
        _check_estimator_outputs(gm, X)


@FAST
@given(X=extreme_data())
def test_mixture_on_extreme_data(X):
    d = X.shape[1]
    mixture = Mixture([Gauss(X[0], np.eye(d)), Gauss(X[-1], np.eye(d))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            within_deadline(mixture.fit, X, n_steps=5)
        except ValueError:
            return
    for out in (mixture.log_p(X), mixture.predict_proba(X), mixture.predict(X)):
        assert not np.isnan(out).any()


# reference for the nearest component of a row beyond every density
def log_mahalanobis(X, params):
    """``log`` of each row's squared Mahalanobis distance to each component, (n, K),
    without overflow (``-inf`` for a row at a component's mean)."""
    n, d = X.shape
    K = params.n_components
    pc, family = params.precisions_cholesky, params.family
    out = np.empty((n, K))
    for k in range(K):
        diff = X - params.means[k]
        scale = np.max(np.abs(diff), axis=1, keepdims=True)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        unit = diff / scale
        if family == "full":
            y = unit @ pc[k]
        elif family == "tied":
            y = unit @ pc
        elif family == "diag":
            y = unit * pc[k]
        else:  # spherical
            y = unit * pc[k]
        with np.errstate(divide="ignore"):
            out[:, k] = 2.0 * np.log(scale[:, 0]) + np.log(np.einsum("ij,ij->i", y, y))
    return out


# ------------------------------------------------------- the examples
def test_far_row_has_a_log_density_and_a_distribution():
    gm = GaussianMixture(2, random_state=0).fit(X2)
    far = np.array([[1e200, 1e200]])
    assert gm.score_samples(far)[0] == -np.inf
    proba = gm.predict_proba(far)
    assert not np.isnan(proba).any() and proba.sum() == 1.0
    # The nearest component in Mahalanobis terms takes it all.
    from gaussmix._estimator import _as_params

    nearest = np.argmin(log_mahalanobis(far, _as_params(gm)))
    assert proba[0, nearest] == 1.0 and gm.predict(far)[0] == nearest
    _check_estimator_outputs(gm, X2)


def test_select_shifted_1d_data():
    x = X1 * 0.01 + 1e9  # mclust's quantile bounds vanish in rounding at 1e9
    assert (qclass(x, 3) >= 0).all()
    result = within_deadline(select, x)
    assert np.isfinite(result.bic_value)
    assert within_deadline(select, X1 + 1e9).best_model in ("E", "V")


def test_noise_with_a_constant_column_is_a_clear_error():
    X = X2.copy()
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match="hypvol"):
        select(X, noise=np.arange(5))
    result = select(X, G=[0, 1, 2], models=["EII"], noise=np.arange(5), hypvol=10.0)
    assert np.isfinite(result.bic_value)


@pytest.mark.parametrize("hypvol", [np.nan, np.inf, -1.0, 0.0, "1"])
def test_select_rejects_a_meaningless_hypvol(hypvol):
    with pytest.raises((ValueError, TypeError), match="hypvol"):
        select(X2, G=[1, 2], models=["EII"], noise=np.arange(5), hypvol=hypvol)


def test_1d_select_with_G_above_the_distinct_values_leaves_nan_cells():
    x = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0])
    assert set(starting_partitions(x, [2, 3, 4, 5])) == {2, 3}
    result = select(x, G=[1, 2, 3, 4, 5])
    assert result.bic.loc[[4, 5]].isna().all().all()
    assert np.isfinite(result.bic_value)


@pytest.mark.parametrize("model", ["VEV", "EVE", "EEV", "EVV", "VVE"])
@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_overflowing_scale_is_a_typed_failure(model, backend):
    X = X2 * 1e160
    with pytest.raises(FitError, match="could be fitted"):  # every cell NaN
        select(X, G=[2], models=[model], backend=backend)
    result = select(X2 * 1e150, G=[1, 2], models=[model], backend=backend)
    assert np.isfinite(result.bic_value)
    with pytest.raises(DegenerateCovarianceError):
        GaussianMixture(2, covariance_type=model, random_state=0).fit(X)


def test_random_from_data_with_extreme_weights_draws_correctly():
    w = np.r_[1e300, np.full(X2.shape[0] - 1, 1e-300)]
    gm = GaussianMixture(2, init_params="random_from_data", random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X2, sample_weight=w)
    assert np.all(np.isfinite(gm.means_))
    from gaussmix._engine.init import _picked_rows
    from gaussmix._engine.sources import Sample

    picked = _picked_rows(Sample(X2, w, np.arange(X2.shape[0]), True), 3,
                          "random_from_data", np.random.RandomState(0))
    assert 0 in picked and len(set(picked)) == 3  # the heavy row, all distinct


def test_mixture_fit_on_no_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="no rows"):
        Mixture([Gauss([0.0, 0.0]), Gauss([1.0, 1.0])]).fit(np.empty((0, 2)))


def test_gauss_with_the_largest_variance_has_a_finite_log_density():
    assert np.isfinite(Gauss([0.0], 1e308).log_p(np.array([[0.0]]))).all()
    assert np.isfinite(Gauss([0.0, 0.0], 1e308).log_p(np.array([[0.0, 1.0]]))).all()


def test_sample_of_an_unrepresentable_count_is_a_clear_error():
    with pytest.raises(ValueError, match="n must be an integer"):
        Mixture([Gauss([0.0, 0.0])]).sample(10**30)
