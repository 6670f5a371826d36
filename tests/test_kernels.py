"""The blocked, threaded E-step kernels against slow references written the obvious way.

Small block sizes are forced so every test crosses block, sub-block and thread
boundaries (the fast paths only differ from the obvious code in how they cut the rows).
"""

import numpy as np
import pytest
from scipy import stats as sps

from gaussmix import _estep, _parallel, _stats
from gaussmix._estep import estep_chunk, log_gaussian_prob, log_resp_and_norm
from gaussmix._params import params_from_covariances
from gaussmix._stats import stats_from_resp

FAMILIES = ["full", "tied", "diag", "spherical"]
KIND = {"full": "full", "tied": "tied", "diag": "diag", "spherical": "diag"}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """512-row blocks, 16-column sub-blocks, two threads."""
    monkeypatch.setattr(_stats, "BLOCK_ELEMENTS", 1 << 8)
    monkeypatch.setattr(_estep, "FULL_RESIDUAL_ELEMENTS", 1 << 6)
    _parallel.set_num_threads(2)
    yield
    _parallel.set_num_threads(None)


def _problem(family, n=1700, d=4, k=3, seed=0, shift=0.0, cond=None):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    covs = []
    for _ in range(k):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        eig = rng.uniform(0.3, 2.0, d)
        if cond is not None:
            eig = np.geomspace(1.0, 1.0 / cond, d)
        covs.append((q * eig) @ q.T)
    covs = np.stack(covs)
    labels = rng.integers(k, size=n)
    X = means[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[labels],
                                  rng.normal(size=(n, d)))
    weights = rng.dirichlet(np.ones(k) * 3)
    if family == "tied":
        cov_param = covs.mean(axis=0)
        dense = np.broadcast_to(cov_param, covs.shape)
    elif family == "diag":
        cov_param = np.stack([np.diag(c) for c in covs])
        dense = np.stack([np.diag(c) for c in cov_param])
    elif family == "spherical":
        cov_param = np.array([np.trace(c) / d for c in covs])
        dense = np.stack([np.eye(d) * v for v in cov_param])
    else:
        cov_param, dense = covs, covs
    params = params_from_covariances(weights, means + shift, cov_param, family)
    return X + shift, params, dense


def _reference_log_prob(X, params, dense):
    return np.stack([sps.multivariate_normal(m, c).logpdf(X)
                     for m, c in zip(params.means, dense)], axis=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_log_prob_matches_scipy(family):
    X, params, dense = _problem(family)
    ref = _reference_log_prob(X, params, dense)
    np.testing.assert_allclose(log_gaussian_prob(X, params), ref, rtol=1e-11, atol=1e-11)
    log_resp, norm = log_resp_and_norm(X, params)
    wlp = ref + np.log(params.weights)
    ref_norm = np.logaddexp.reduce(wlp, axis=1)
    np.testing.assert_allclose(norm, ref_norm, rtol=1e-11)
    np.testing.assert_allclose(log_resp, wlp - ref_norm[:, None], rtol=1e-9, atol=1e-9)


def _direct_stats(X, resp_w, kind):
    nk = resp_w.sum(axis=0)
    means = resp_w.T @ X / nk[:, None]
    scat = np.stack([(resp_w[:, j, None] * (X - means[j])).T @ (X - means[j])
                     for j in range(len(nk))])
    if kind == "diag":
        scat = np.stack([np.diag(s) for s in scat])
    elif kind == "tied":
        scat = scat.sum(axis=0)
    return nk, means, scat


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_estep_stats_match_definition(family, weighted):
    X, params, dense = _problem(family, seed=1)
    w = np.random.default_rng(2).uniform(0, 3, len(X)) if weighted else None
    if weighted:
        w[::7] = 0.0
    wlp = _reference_log_prob(X, params, dense) + np.log(params.weights)
    norm = np.logaddexp.reduce(wlp, axis=1)
    resp = np.exp(wlp - norm[:, None])
    ww = np.ones(len(X)) if w is None else w
    kind = KIND[family]
    s = estep_chunk(X, w, params, kind)
    nk, means, scat = _direct_stats(X, resp * ww[:, None], kind)
    np.testing.assert_allclose(s.nk, nk, rtol=1e-11)
    np.testing.assert_allclose(s.means, means, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-9, atol=1e-9 * np.abs(scat).max())
    assert s.loglik == pytest.approx(float(norm @ ww), rel=1e-12)
    assert s.weight == pytest.approx(ww.sum(), rel=1e-14)
    assert s.n_rows == np.count_nonzero(ww)
    worst = np.argmin(np.where(ww > 0, norm, np.inf))
    assert s.worst_loglik == pytest.approx(norm[worst], rel=1e-12)
    np.testing.assert_array_equal(s.worst_row, X[worst])


@pytest.mark.parametrize("family", FAMILIES)
def test_threads_and_blocks_do_not_change_results(family, monkeypatch):
    X, params, _ = _problem(family, n=3000, seed=3)
    kind = KIND[family]
    many = estep_chunk(X, None, params, kind)
    _parallel.set_num_threads(1)
    monkeypatch.setattr(_stats, "BLOCK_ELEMENTS", 1 << 20)
    monkeypatch.setattr(_estep, "FULL_RESIDUAL_ELEMENTS", 1 << 20)
    one = estep_chunk(X, None, params, kind)
    np.testing.assert_allclose(many.nk, one.nk, rtol=1e-12)
    np.testing.assert_allclose(many.scatter, one.scatter, rtol=1e-10, atol=1e-10)
    assert many.loglik == pytest.approx(one.loglik, rel=1e-13)


@pytest.mark.parametrize("family", FAMILIES)
def test_far_from_origin_float64(family):
    """Data and parameters shifted by 1e8 give the statistics of the unshifted ones."""
    X, params, _ = _problem(family, seed=4)
    Xs, params_s, _ = _problem(family, seed=4, shift=1e8)
    kind = KIND[family]
    a, b = estep_chunk(X, None, params, kind), estep_chunk(Xs, None, params_s, kind)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-7)
    np.testing.assert_allclose(b.nk, a.nk, rtol=1e-6)
    np.testing.assert_allclose(b.means - 1e8, a.means, atol=1e-6)
    np.testing.assert_allclose(b.scatter, a.scatter, rtol=1e-6, atol=1e-6 * a.scatter.max())


@pytest.mark.parametrize("family", FAMILIES)
def test_float32_far_from_origin_agrees_with_float64(family):
    """float32 rows 1e4 from the origin: the same statistics as float64 on those rows."""
    X, params, _ = _problem(family, seed=5, shift=1e4)
    X32 = X.astype(np.float32)
    kind = KIND[family]
    a = estep_chunk(X32.astype(np.float64), None, params, kind)
    b = estep_chunk(X32, None, params, kind)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-5)
    np.testing.assert_allclose(b.nk, a.nk, rtol=1e-4)
    np.testing.assert_allclose(b.means, a.means, rtol=1e-7, atol=1e-4)
    np.testing.assert_allclose(b.scatter, a.scatter, rtol=1e-3, atol=1e-3 * a.scatter.max())
    assert b.nk.dtype == np.float64 and b.scatter.dtype == np.float64


def test_full_scatter_with_ill_conditioned_covariances():
    """The whitened scatter maps back exactly enough when covariances are near-singular."""
    X, params, dense = _problem("full", seed=6, cond=1e6)
    wlp = _reference_log_prob(X, params, dense) + np.log(params.weights)
    resp = np.exp(wlp - np.logaddexp.reduce(wlp, axis=1)[:, None])
    s = estep_chunk(X, None, params, "full")
    nk, means, scat = _direct_stats(X, resp, "full")
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-7, atol=1e-9 * np.abs(scat).max())
    # and the smallest directions too: compare in the reference's whitened coordinates
    for k in range(len(nk)):
        lo = np.linalg.cholesky(scat[k] / nk[k])
        white = np.linalg.solve(lo, np.linalg.solve(lo, s.scatter[k] / nk[k]).T)
        np.testing.assert_allclose(white, np.eye(X.shape[1]), atol=1e-6)


@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
def test_stats_from_resp_blocks_match_definition(kind):
    X, _, _ = _problem("full", seed=7, shift=1e6)
    resp = np.random.default_rng(8).dirichlet(np.ones(3), size=len(X))
    s = stats_from_resp(X, resp, kind)
    nk, means, scat = _direct_stats(X, resp, kind)
    np.testing.assert_allclose(s.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(s.means, means, rtol=1e-12)
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-8, atol=1e-8 * np.abs(scat).max())


def test_integer_rows_are_accepted():
    X, params, dense = _problem("full", n=600, seed=9)
    Xi = np.round(X).astype(np.int64)
    np.testing.assert_allclose(log_gaussian_prob(Xi, params),
                               _reference_log_prob(Xi.astype(float), params, dense),
                               rtol=1e-11, atol=1e-11)
