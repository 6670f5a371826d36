"""Components far from each other (issue 17, class 1): exact at any separation.

The kernels expand squares about one shift; a component far from it would lose about
eps * C of its log-densities and scatter (C: its squared Mahalanobis distance from the
shift). The reference here is the definition, in float64 with SciPy's densities.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture, Gauss, Mixture
from gaussmix._engine.estep import estep_chunk, log_resp_and_norm
from gaussmix._engine.params import params_from_covariances


from reference_em import direct_stats as _direct_stats


def direct_stats(X, resp, kind):
    """The definition in extended precision: float64's own sums lose the digits this
    module is about."""
    return _direct_stats(X, resp, kind, dtype=np.longdouble)


FAMILIES = ["full", "tied", "diag", "spherical"]
KIND = {"full": "full", "tied": "tied", "diag": "diag", "spherical": "diag"}


def _layout(covs, family):
    if family == "full":
        return covs
    if family == "tied":
        return covs[0]
    diag = np.stack([np.diag(c) for c in covs])
    return diag if family == "diag" else diag.mean(axis=1)


def _full(cov, family, k, d):
    if family == "full":
        return cov
    if family == "tied":
        return np.repeat(cov[None], k, axis=0)
    if family == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])


def _reference(X, weights, means, covs_full):
    logp = np.column_stack([np.log(w) + multivariate_normal(m, c).logpdf(X)
                            for w, m, c in zip(weights, means, covs_full)])
    norm = logsumexp(logp, axis=1)
    return np.exp(logp - norm[:, None]), norm


def _close_scatter(got, want, rtol):
    """Entries within rtol of the diagonal scale sqrt(S_ii S_jj) (full / tied layouts),
    or of themselves (diagonals)."""
    if want.ndim == got.ndim and want.shape[-1] == want.shape[-2] and want.ndim >= 2:
        diag = np.sqrt(np.abs(np.einsum("...ii->...i", want)))
        scale = diag[..., :, None] * diag[..., None, :]
        assert np.all(np.abs(got - want) <= rtol * scale + 1e-300), (got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(FAMILIES), k=st.integers(2, 3), d=st.integers(1, 3),
       log_sep=st.floats(0, 13), log_origin=st.floats(0, 9), seed=st.integers(0, 2**16))
def test_estep_is_exact_at_any_separation(family, k, d, log_sep, log_origin, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 10.0**log_sep + 10.0**log_origin * rng.normal()
    scales = rng.uniform(0.2, 5.0, size=k)
    covs = np.stack([np.eye(d) * s**2 for s in scales])
    if family in ("full", "tied"):
        rot = np.linalg.qr(rng.normal(size=(d, d)))[0]
        covs = np.stack([rot @ np.diag(rng.uniform(0.3, 3.0, d) * s**2) @ rot.T
                         for s in scales])
    if family == "tied":
        covs = np.repeat(covs[:1], k, axis=0)
    labels = rng.integers(0, k, size=200)
    X = centres[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[labels],
                                    rng.normal(size=(200, d)))
    weights = np.full(k, 1.0 / k)
    cov = _layout(covs, family)
    params = params_from_covariances(weights, centres, cov, family)
    resp, norm = _reference(X, weights, centres, _full(cov, family, k, d))
    # log-densities: as SciPy's, to 1e-6 relative (or 1e-9 absolute near zero)
    got_norm = log_resp_and_norm(X, params)[1]
    np.testing.assert_allclose(got_norm, norm, rtol=1e-6, atol=1e-9)
    # statistics: the definition's, for every component that holds rows
    stats = estep_chunk(X, None, params, KIND[family])
    nk, means, scatter = direct_stats(X, resp, KIND[family])
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-6, atol=1e-9)
    held = nk > 1e-3
    np.testing.assert_allclose(stats.means[held], means[held], rtol=1e-12,
                               atol=1e-6 * scales.min())
    if KIND[family] == "tied":
        _close_scatter(stats.scatter, scatter, 1e-6)
    else:
        _close_scatter(stats.scatter[held], scatter[held], 1e-6)


def _two_clusters(gap, n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + [gap, 0.0]])
    return X, np.r_[np.zeros(n, int), np.ones(n, int)]


@pytest.mark.parametrize("cov", FAMILIES)
@pytest.mark.parametrize("gap", [1e6, 1e8, 1e12])
def test_two_clusters_far_apart_fit_their_exact_statistics(cov, gap):
    X, labels = _two_clusters(gap)
    gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X)
    order = np.argsort(gm.means_[:, 0])
    resp = np.eye(2)[labels]
    nk, means, scatter = direct_stats(X, resp, KIND[cov])
    np.testing.assert_allclose(gm.means_[order], means, rtol=1e-9, atol=1e-9)
    reg = 1e-6
    if cov == "full":
        want = scatter / nk[:, None, None] + reg * np.eye(2)
        np.testing.assert_allclose(gm.covariances_[order], want, rtol=1e-6)
    elif cov == "tied":
        np.testing.assert_allclose(gm.covariances_, scatter / nk.sum() + reg * np.eye(2),
                                   rtol=1e-6)
    elif cov == "diag":
        np.testing.assert_allclose(gm.covariances_[order], scatter / nk[:, None] + reg,
                                   rtol=1e-6)
    else:
        np.testing.assert_allclose(gm.covariances_[order],
                                   scatter.sum(axis=1) / nk / 2 + reg, rtol=1e-6)
    covs = _full(gm.covariances_, cov, 2, 2)
    _, norm = _reference(X, gm.weights_, gm.means_, covs)
    np.testing.assert_allclose(gm.score_samples(X), norm, rtol=1e-6)


FIVE_ROWS = np.array([[0.3], [-1.2], [0.8], [0.1], [1e12]])


@pytest.mark.parametrize("chunk_size", [None, 1, 2])
def test_one_far_row_does_not_spoil_the_others(chunk_size):
    gm = GaussianMixture(2, covariance_type="diag", random_state=0,
                         chunk_size=chunk_size).fit(FIVE_ROWS)
    near = int(np.argmin(gm.means_[:, 0]))
    assert gm.covariances_[near, 0] == pytest.approx(np.var(FIVE_ROWS[:4, 0]) + 1e-6,
                                                     rel=1e-9)
    want = multivariate_normal(gm.means_[near], gm.covariances_[near]).logpdf(
        FIVE_ROWS[:4]) + np.log(gm.weights_[near])
    np.testing.assert_allclose(gm.score_samples(FIVE_ROWS[:4]), want, rtol=1e-9)


def test_one_far_row_in_the_object_model():
    mixture = Mixture([Gauss([0.0], [[1.0]], 0.5), Gauss([1e12], [[1.0]], 0.5)])
    mixture.fit(FIVE_ROWS, n_steps=5)
    assert mixture[0].cov[0, 0] == pytest.approx(np.var(FIVE_ROWS[:4, 0]) + 1e-6,
                                                 rel=1e-9)
    assert mixture[0].mu[0] == pytest.approx(FIVE_ROWS[:4, 0].mean(), rel=1e-12)
