"""Missing values (nan_policy="marginalize") against slow, obvious references.

The references here are written the textbook way, row by row: the marginal density of
the observed coordinates by SciPy, the conditional mean and covariance of the missing
ones by explicit sub-matrix solves, and an EM (Little & Rubin, ch. 11) built on them.
"""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs

import gaussmix
from gaussmix import GaussianMixture, Gauss, Mixture
from gaussmix._engine import missing
from gaussmix._engine.estep import estep_chunk
from gaussmix._engine.params import params_from_covariances

FAMILIES = ("full", "tied", "diag", "spherical")


def _with_gaps(X, share, seed):
    """X with a share of entries NaN, completely at random; no row left empty."""
    rng = np.random.default_rng(seed)
    Xm = np.array(X, dtype=np.float64)
    Xm[rng.uniform(size=X.shape) < share] = np.nan
    empty = np.flatnonzero(np.isnan(Xm).all(axis=1))
    Xm[empty, rng.integers(X.shape[1], size=empty.size)] = X[empty, 0]
    return Xm


def _random_params(rng, k, d, family):
    a = rng.normal(size=(k, d, d))
    full = a @ a.transpose(0, 2, 1) + np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": np.abs(rng.normal(size=(k, d))) + 0.3,
           "spherical": np.abs(rng.normal(size=k)) + 0.3}[family]
    return params_from_covariances(rng.dirichlet(np.ones(k)), rng.normal(size=(k, d)),
                                   cov, family)


# ------------------------------------------------------------- the references
def _ref_log_prob(X, weights, means, covs):
    """log pi_k + log N(x_o; mu_o, Sigma_oo), row by row: SciPy's density, or where
    SciPy calls Sigma_oo singular (a fitted variance 1e12 times smaller than another,
    still positive definite) the textbook one through its Cholesky factor."""
    out = np.empty((X.shape[0], len(weights)))
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(len(weights)):
            cov = covs[k][np.ix_(o, o)]
            try:
                density = multivariate_normal(means[k][o], cov).logpdf(x[o])
            except np.linalg.LinAlgError:
                factor = np.linalg.cholesky(cov)
                z = solve_triangular(factor, x[o] - means[k][o], lower=True)
                density = -0.5 * (z @ z + o.sum() * np.log(2 * np.pi)) - np.log(
                    np.diag(factor)).sum()
            out[i, k] = np.log(weights[k]) + density
    return out


def _ref_conditional(x, mean, cov):
    """E[x | x_o] (the whole row) and the covariance of x given x_o (D, D)."""
    o = ~np.isnan(x)
    m = ~o
    filled, cond = x.copy(), np.zeros((x.size, x.size))
    if m.any():
        b = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
        filled[m] = mean[m] + b @ (x[o] - mean[o])
        cond[np.ix_(m, m)] = cov[np.ix_(m, m)] - b @ cov[np.ix_(o, m)]
    return filled, cond


def _ref_moments(X, w, weights, means, covs):
    """Per component: n_k, the mean and the scatter of the expected complete data."""
    wlp = _ref_log_prob(X, weights, means, covs)
    resp = np.exp(wlp - logsumexp(wlp, axis=1)[:, None]) * w[:, None]
    k, d = means.shape
    nk, first, second = resp.sum(axis=0), np.zeros((k, d)), np.zeros((k, d, d))
    for i, x in enumerate(X):
        for j in range(k):
            filled, cond = _ref_conditional(x, means[j], covs[j])
            first[j] += resp[i, j] * filled
            second[j] += resp[i, j] * (np.outer(filled, filled) + cond)
    mu = first / nk[:, None]
    scatter = second - nk[:, None, None] * np.einsum("ki,kj->kij", mu, mu)
    return nk, mu, scatter, float(logsumexp(wlp, axis=1) @ w)


def _ref_em(X, w, weights, means, covs, family, n_iter):
    """The textbook EM with missing values: E-step then M-step, n_iter times."""
    n, d = X.shape
    for _ in range(n_iter):
        nk, mu, scatter, _ = _ref_moments(X, w, weights, means, covs)
        weights, means = nk / nk.sum(), mu
        cov = scatter / nk[:, None, None]
        if family == "tied":
            cov = np.broadcast_to(scatter.sum(axis=0) / nk.sum(), cov.shape)
        elif family == "diag":
            cov = np.einsum("kii->ki", cov)[:, :, None] * np.eye(d)
        elif family == "spherical":
            cov = (np.einsum("kii->k", cov) / d)[:, None, None] * np.eye(d)
        covs = np.array(cov)
    return weights, means, covs


def _observed_loglik(X, weights, means, covs):
    return float(logsumexp(_ref_log_prob(X, weights, means, covs), axis=1).sum())


# ------------------------------------------------------------------ the kernel
# The paths of the missing-data E-step: rows taken in blocks, and the rows of each
# pattern through the complete-row kernel on their observed coordinates.
# Patterns are found by bit keys, or (past 52 features) as rows of missing coordinates.
# The blocks' small inverses by batched elimination, or (past q = 8) LAPACK's; few gaps
# coordinate by coordinate, or (past 3) by products.
@pytest.fixture(params=["blocks", "complete-row kernel", "patterns as rows",
                        "blocks by LAPACK and products"])
def gap_path(request, monkeypatch):
    if request.param != "complete-row kernel":
        monkeypatch.setattr(gaussmix._engine.missing, "_KERNEL_ROWS", 10**9)
        if request.param == "patterns as rows":
            monkeypatch.setattr(gaussmix._engine.missing, "_BIT_KEYS", 0)
        if request.param == "blocks by LAPACK and products":
            monkeypatch.setattr(gaussmix._engine.missing, "_BATCHED_ELIMINATION", 0)
            monkeypatch.setattr(gaussmix._engine.missing, "_FEW_GAPS", 0)
    else:
        monkeypatch.setattr(gaussmix._engine.missing, "_KERNEL_ROWS", 1)
        monkeypatch.setattr(gaussmix._engine.missing, "_TASK_ROWS", 7)  # split patterns
    return request.param


@pytest.mark.parametrize("family", FAMILIES)
def test_kernel_matches_row_by_row_reference(family, gap_path):
    rng = np.random.default_rng(3)
    params = _random_params(rng, 3, 5, family)
    covs = params.full_covariances()
    X = _with_gaps(rng.normal(size=(80, 5)) * 2, 0.3, 4)
    w = rng.uniform(0.2, 3.0, size=80)
    ref = _ref_log_prob(X, params.weights, params.means, covs)
    np.testing.assert_allclose(gaussmix._engine.estep.weighted_log_prob(X, params), ref,
                               rtol=1e-12, atol=1e-12)
    nk, mu, scatter, loglik = _ref_moments(X, w, params.weights, params.means, covs)
    kind = {"full": "full", "tied": "tied"}.get(family, "diag")
    stats = estep_chunk(X, w, params, kind)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(stats.means, mu, rtol=1e-10, atol=1e-12)
    expected = {"full": scatter, "tied": scatter.sum(axis=0),
                "diag": np.einsum("kii->ki", scatter)}[kind]
    np.testing.assert_allclose(stats.scatter, expected, rtol=1e-10, atol=1e-10)
    assert stats.loglik == pytest.approx(loglik, rel=1e-12)
    assert stats.weight == pytest.approx(w.sum())


def test_unfactorisable_marginal_falls_back_to_the_blocks(monkeypatch):
    rng = np.random.default_rng(11)
    params = _random_params(rng, 3, 4, "full")
    X = _with_gaps(rng.normal(size=(200, 4)), 0.2, 12)
    monkeypatch.setattr(gaussmix._engine.missing, "_KERNEL_ROWS", 10**9)
    blocks = estep_chunk(X, None, params, "full")
    monkeypatch.setattr(gaussmix._engine.missing, "_KERNEL_ROWS", 1)

    calls = []

    def singular(a):
        calls.append(a.shape)
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(np.linalg, "cholesky", singular)
    fallback = estep_chunk(X, None, params, "full")
    assert calls  # the kernel path was tried, and fell back
    for name in ("nk", "means", "scatter"):
        np.testing.assert_allclose(getattr(fallback, name), getattr(blocks, name),
                                   rtol=1e-12, atol=1e-12)


def test_statistics_add_across_chunks():
    rng = np.random.default_rng(5)
    params = _random_params(rng, 4, 3, "full")
    X = _with_gaps(rng.normal(size=(300, 3)), 0.25, 6)
    whole = estep_chunk(X, None, params, "full")
    parts = estep_chunk(X[:97], None, params, "full") + estep_chunk(X[97:], None, params,
                                                                    "full")
    for name in ("nk", "means", "scatter"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-11,
                                   atol=1e-11)
    assert parts.loglik == pytest.approx(whole.loglik, rel=1e-13)


def test_fixed_labels_keep_their_component(gap_path):
    rng = np.random.default_rng(7)
    params = _random_params(rng, 3, 3, "full")
    X = _with_gaps(rng.normal(size=(60, 3)), 0.3, 8)
    labels = np.full(60, -1)
    labels[::4] = 2
    stats = estep_chunk(X, None, params, "full", labels)
    free = estep_chunk(X[labels < 0], None, params, "full")
    fixed = estep_chunk(X[labels >= 0], None, params, "full", labels[labels >= 0])
    np.testing.assert_allclose(stats.nk, (free + fixed).nk, rtol=1e-12)
    assert fixed.nk[2] == pytest.approx(15.0) and fixed.nk[:2].sum() == 0
    lp = _ref_log_prob(X[labels >= 0], params.weights, params.means,
                       params.full_covariances())
    assert fixed.loglik == pytest.approx(lp[:, 2].sum(), rel=1e-12)


# --------------------------------------------------------------- the estimator
def _blobs(n=240, d=3, seed=0):
    X, _ = make_blobs(n, n_features=d, centers=3, cluster_std=[1.0, 1.6, 0.7],
                      random_state=seed)
    return X


@pytest.mark.parametrize("family", FAMILIES)
def test_em_matches_textbook_em(family):
    X = _with_gaps(_blobs(), 0.2, 1)
    rng = np.random.default_rng(2)
    start = _random_params(rng, 3, 3, family)
    start = params_from_covariances(start.weights, np.nan_to_num(X[[0, 100, 200]]),
                                    start.covariances, family)
    gm = GaussianMixture(3, covariance_type=family, reg_covar=0.0, tol=0.0, max_iter=6,
                         weights_init=start.weights, means_init=start.means,
                         precisions_init=start.precisions(), nan_policy="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged after 6 iterations
        gm.fit(X)
    # The estimator's first E-step is under the start; each iteration then M, E.
    weights, means, covs = _ref_em(X, np.ones(len(X)), start.weights, start.means,
                                   start.full_covariances(), family, 6)
    np.testing.assert_allclose(gm.weights_, weights, rtol=1e-9)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-9, atol=1e-9)
    from gaussmix._engine.params import full_covariances
    got = full_covariances(gm.covariances_, family, 3, 3)
    np.testing.assert_allclose(got, covs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical", "VEV", "EEI"])
def test_no_nan_identical_to_policy_off(cov):
    X = _blobs(300, 4, 3)
    a = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    b = GaussianMixture(3, covariance_type=cov, random_state=0,
                        nan_policy="marginalize").fit(X)
    assert a.n_iter_ == b.n_iter_
    for name in ("weights_", "means_", "covariances_", "lower_bound_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.5),
       # Not VVE: its inexact (MM) M-step can lower the likelihood on complete data too.
       cov=st.sampled_from(["full", "tied", "diag", "spherical", "VEV", "EVI", "EEV"]))
def test_observed_loglik_never_decreases(seed, share, cov):
    X = _with_gaps(_blobs(150, 3, seed % 7), share, seed)
    gm = GaussianMixture(3, covariance_type=cov, tol=0.0, max_iter=25, random_state=seed,
                         nan_policy="marginalize", reg_covar=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    # reg_covar makes the M-step inexact: where a component collapses (seed 2000: two
    # rows, a variance of 1e-6) the likelihood falls by 6e-6 per row at a step. The
    # property is EM's, for components that reg_covar does not shape.
    full = gaussmix._estimator._as_params(gm).full_covariances()
    assume(min(np.linalg.eigvalsh(c).min() for c in full) > 1e3 * gm.reg_covar)
    steps = np.diff(gm.lower_bounds_)
    assert np.all(steps >= -1e-9 * (1 + np.abs(gm.lower_bounds_[1:])))
    # lower_bound_ is the observed-data log-likelihood of the returned parameters
    ll = _observed_loglik(X, gm.weights_, gm.means_,
                          gaussmix._estimator._as_params(gm).full_covariances())
    assert gm.lower_bound_ == pytest.approx(ll / len(X), rel=1e-10)


def _unpack(theta, k, d):
    """Weights (softmax), means, full covariances (Cholesky, log-diagonal) from theta."""
    logits = np.concatenate([[0.0], theta[: k - 1]])
    weights = np.exp(logits - logsumexp(logits))
    at = k - 1
    means = theta[at : at + k * d].reshape(k, d)
    at += k * d
    covs = np.empty((k, d, d))
    tri = np.tril_indices(d)
    for j in range(k):
        L = np.zeros((d, d))
        L[tri] = theta[at : at + len(tri[0])]
        at += len(tri[0])
        L[np.diag_indices(d)] = np.exp(np.diag(L))
        covs[j] = L @ L.T
    return weights, means, covs


def _pack(weights, means, covs):
    parts = [np.log(weights[1:] / weights[0]), means.ravel()]
    tri = np.tril_indices(means.shape[1])
    for c in covs:
        L = np.linalg.cholesky(c)
        L[np.diag_indices(len(c))] = np.log(np.diag(L))
        parts.append(L[tri])
    return np.concatenate(parts)


def test_gradient_vanishes_at_the_fit():
    X = _with_gaps(_blobs(200, 2, 4)[:, :2], 0.2, 9)
    gm = GaussianMixture(2, reg_covar=0.0, tol=1e-13, max_iter=5000, random_state=0,
                         nan_policy="marginalize").fit(X)
    theta = _pack(gm.weights_, gm.means_, gm.covariances_)

    def loglik(t):
        return _observed_loglik(X, *_unpack(t, 2, 2))

    grad = optimize.approx_fprime(theta, loglik, 1e-6)
    # Central-difference noise on a sum of 200 terms is about 1e-6; a parameter off the
    # optimum by 1e-3 would show a gradient of order 1.
    assert np.max(np.abs(grad)) < 1e-3
    assert loglik(theta) == pytest.approx(gm.lower_bound_ * len(X), rel=1e-12)


def test_one_component_equals_direct_maximiser():
    rng = np.random.default_rng(11)
    cov = np.array([[2.0, 0.8, 0.3], [0.8, 1.0, -0.2], [0.3, -0.2, 0.5]])
    X = _with_gaps(rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=300), 0.2, 12)
    gm = GaussianMixture(1, reg_covar=0.0, tol=1e-14, max_iter=10_000,
                         nan_policy="marginalize").fit(X)

    def neg(t):
        return -_observed_loglik(X, *_unpack(t, 1, 3))

    # Started from the complete rows' estimate, independently of the EM.
    complete = X[~np.isnan(X).any(axis=1)]
    t0 = _pack(np.ones(1), complete.mean(axis=0)[None], np.cov(complete.T)[None])
    best = optimize.minimize(neg, t0, method="BFGS", options={"gtol": 1e-9, "xrtol": 0})
    _, means, covs = _unpack(best.x, 1, 3)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gm.covariances_, covs, rtol=1e-6, atol=1e-6)
    assert -best.fun == pytest.approx(gm.lower_bound_ * len(X), rel=1e-10)


def test_sample_weight_counts_rows_with_gaps():
    X = _with_gaps(_blobs(120, 3, 5), 0.25, 13)
    counts = np.random.default_rng(1).integers(1, 4, size=len(X))
    start = _random_params(np.random.default_rng(2), 3, 3, "full")
    # The same start and the same 30 iterations (k-means would see other rows).
    start = dict(weights_init=start.weights, means_init=np.nan_to_num(X[[0, 50, 100]]),
                 precisions_init=start.precisions(), nan_policy="marginalize", tol=0.0,
                 max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 30 iterations
        a = GaussianMixture(3, **start).fit(X, sample_weight=counts)
        b = GaussianMixture(3, **start).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-10, atol=1e-12)


def test_predictions_score_rows_with_gaps():
    X = _with_gaps(_blobs(200, 3, 6), 0.2, 14)
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(X)
    wlp = _ref_log_prob(X, gm.weights_, gm.means_, gm.covariances_)
    np.testing.assert_allclose(gm.score_samples(X), logsumexp(wlp, axis=1), rtol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(X),
                               np.exp(wlp - logsumexp(wlp, axis=1)[:, None]), atol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), np.argmax(wlp, axis=1))
    n = len(X)
    assert gm.bic(X) == pytest.approx(-2 * gm.score(X) * n + gm._n_parameters() * np.log(n))


def test_impute_conditional_mean_and_draws():
    X = _with_gaps(_blobs(200, 3, 7), 0.2, 15)
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(X)
    filled = gm.impute(X)
    observed = ~np.isnan(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert np.isnan(X).sum() > 0  # the input is not modified
    wlp = _ref_log_prob(X, gm.weights_, gm.means_, gm.covariances_)
    resp = np.exp(wlp - logsumexp(wlp, axis=1)[:, None])
    for i in np.flatnonzero(~observed.all(axis=1))[:20]:
        expected = sum(resp[i, k] * _ref_conditional(X[i], gm.means_[k],
                                                     gm.covariances_[k])[0]
                       for k in range(3))
        np.testing.assert_allclose(filled[i], expected, rtol=1e-10, atol=1e-10)
    # Draws of one row: their mean and covariance are the conditional ones (K = 1).
    one = GaussianMixture(1, nan_policy="marginalize").fit(X)
    row = np.array([[X[0, 0] if observed[0, 0] else 0.5, np.nan, np.nan]])
    draws = one.impute(np.repeat(row, 20_000, axis=0), draw=True, random_state=0)
    mean, cond = _ref_conditional(row[0], one.means_[0], one.covariances_[0])
    standard_error = np.sqrt(np.diag(cond) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 4 * standard_error + 1e-9)
    np.testing.assert_allclose(np.cov(draws[:, 1:].T), cond[1:, 1:], rtol=0.05)
    rows = np.repeat(row, 5, axis=0)
    np.testing.assert_array_equal(one.impute(rows, draw=True, random_state=3),
                                  one.impute(rows, draw=True, random_state=3))
    assert not np.array_equal(one.impute(rows, draw=True, random_state=3),
                              one.impute(rows, draw=True, random_state=4))


def test_errors_name_the_problem():
    X = _with_gaps(_blobs(50, 3), 0.2, 16)
    with pytest.raises(ValueError, match="nan_policy='marginalize'"):
        GaussianMixture(2).fit(X)
    bad = X.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="row 7 has every coordinate missing"):
        GaussianMixture(2, nan_policy="marginalize").fit(bad)
    bad = X.copy()
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 has no observed value"):
        GaussianMixture(2, nan_policy="marginalize").fit(bad)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, nan_policy="marginalize").fit(bad)
    with pytest.raises(ValueError, match="nan_policy"):
        GaussianMixture(2, nan_policy="drop").fit(X)
    gm = GaussianMixture(2, random_state=0).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="NaN"):
        gm.predict(X)
    assert not np.isnan(gm.impute(X)).any()  # impute takes gaps whatever the policy


# ------------------------------------------------------------- the other faces
def test_select_with_gaps():
    X = _with_gaps(_blobs(150, 2, 8), 0.15, 17)
    clean = _blobs(150, 2, 8)
    a = gaussmix.select(clean, G=[1, 2, 3], models=["VVV", "EEE", "VII"])
    b = gaussmix.select(clean, G=[1, 2, 3], models=["VVV", "EEE", "VII"],
                        nan_policy="marginalize")
    np.testing.assert_array_equal(a.bic.to_numpy(), b.bic.to_numpy())
    r = gaussmix.select(X, G=[1, 2, 3], models=["VVV", "EEE"], nan_policy="marginalize",
                        tol=1e-13)
    # G = 1, VVV: the observed-data maximum likelihood of one normal (by SciPy).
    complete = X[~np.isnan(X).any(axis=1)]
    t0 = _pack(np.ones(1), complete.mean(axis=0)[None], np.cov(complete.T)[None])
    best = optimize.minimize(lambda t: -_observed_loglik(X, *_unpack(t, 1, 2)), t0,
                             method="BFGS", options={"gtol": 1e-9})
    n_params = 2 + 3
    assert r.bic.loc[1, "VVV"] == pytest.approx(-2 * best.fun - n_params * np.log(150),
                                                abs=1e-4)
    assert r.best.nan_policy == "marginalize"
    np.testing.assert_array_equal(r.best.predict(X), r.classification)
    with pytest.raises(ValueError, match="marginalize"):
        gaussmix.select(X)
    with pytest.raises(ValueError, match="prior"):
        gaussmix.select(X, prior=gaussmix.prior_control(), nan_policy="marginalize")


def test_mixture_object_model_with_gaps():
    X = _with_gaps(_blobs(200, 2, 9), 0.15, 18)
    starts = np.nan_to_num(X[[0, 60, 120]])
    mix = Mixture((Gauss(m, np.eye(2), 1 / 3) for m in starts), nan_policy="marginalize",
                  reg_covar=0.0)
    mix.fit(X, n_steps=8)
    weights, means, covs = _ref_em(X, np.ones(len(X)), np.full(3, 1 / 3), starts,
                                   np.repeat(np.eye(2)[None], 3, axis=0), "full", 8)
    np.testing.assert_allclose(mix.means, means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mix.covariances, covs, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="nan_policy='marginalize'"):
        Mixture([Gauss(np.zeros(2))]).fit(X)


def test_mixture_never_reseeds_at_a_row_with_gaps():
    # Every row has a gap, and the far component empties: no complete row to re-seed
    # it at, so it is not re-seeded (before, a NaN row became its mean).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    X[np.arange(200), np.arange(200) % 2] = np.nan
    mix = Mixture([Gauss([0.0, 0.0], np.eye(2), 0.5),
                   Gauss([50.0, 50.0], 0.01 * np.eye(2), 0.5)], nan_policy="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no re-seeding warning either
        mix.expectation(X)
        mix.maximization(X)
    assert np.all(np.isfinite(mix.means)) and np.all(np.isfinite(mix.covariances))


def test_file_and_dask_sources(tmp_path):
    pd = pytest.importorskip("pandas")
    X = _with_gaps(_blobs(300, 3, 10), 0.2, 19)
    path = tmp_path / "gaps.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).to_csv(path, index=False)
    settings_ = dict(random_state=0, nan_policy="marginalize", tol=1e-8)
    ref = GaussianMixture(3, **settings_).fit(X)
    with pytest.raises(ValueError, match="--nan-policy marginalize"):
        gaussmix.read_csv(path)
    src = gaussmix.read_csv(path, allow_missing=True)
    gm = GaussianMixture(3, **settings_).fit(src)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    da = pytest.importorskip("dask.array")
    import dask

    with dask.config.set(scheduler="threads"):
        dk = GaussianMixture(3, **settings_).fit(da.from_array(X, chunks=(70, 3)))
        lazy = dk.score_samples(da.from_array(X, chunks=(70, 3)))
        np.testing.assert_allclose(lazy.compute(), ref.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(dk.means_, ref.means_, rtol=1e-9)
    assert dk.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_start_takes_rows_with_gaps(init):
    X = _with_gaps(_blobs(200, 3, 11), 0.2, 20)
    gm = GaussianMixture(3, init_params=init, random_state=0, nan_policy="marginalize",
                         tol=1e-6, max_iter=500).fit(X)
    assert gm.converged_ and np.all(np.isfinite(gm.means_))
    ll = _observed_loglik(X, gm.weights_, gm.means_, gm.covariances_)
    assert gm.lower_bound_ == pytest.approx(ll / len(X), rel=1e-10)


def test_command_line(tmp_path, capsys):
    from gaussmix.cli import main

    X = _with_gaps(_blobs(200, 2, 12), 0.15, 21)
    data = tmp_path / "gaps.csv"
    pd = pytest.importorskip("pandas")
    pd.DataFrame(X, columns=["u", "v"]).to_csv(data, index=False)  # gaps: empty fields
    model = tmp_path / "m.gmm"
    assert main(["fit", str(data), "-k", "2", "--seed", "0"]) == 1
    assert "--nan-policy marginalize" in capsys.readouterr().err
    assert main(["fit", str(data), "-k", "2", "--seed", "0", "--nan-policy", "marginalize",
                 "--out", str(model)]) == 0
    capsys.readouterr()
    ref = GaussianMixture(2, random_state=0, tol=1e-5, max_iter=1000,
                          nan_policy="marginalize").fit(X)
    loaded = gaussmix.load(model)
    np.testing.assert_allclose(loaded.means_, ref.means_, rtol=1e-10)
    assert main(["score", str(model), str(data)]) == 0  # the model reads the gaps
    assert float(capsys.readouterr().out) == pytest.approx(ref.score(X), rel=1e-10)
    assert main(["select", str(data), "--nan-policy", "marginalize", "-G", "1-2",
                 "--models", "VVV", "--quiet"]) == 0
    assert "VVV," in capsys.readouterr().out


def test_partial_fit_takes_rows_with_gaps():
    X = _with_gaps(_blobs(300, 3, 13), 0.2, 22)
    settings_ = dict(random_state=0, nan_policy="marginalize")
    first = GaussianMixture(3, **settings_).partial_fit(X[:150])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration: not converged
        one = GaussianMixture(3, max_iter=1, **settings_).fit(X[:150])
    np.testing.assert_allclose(first.means_, one.means_, rtol=1e-12)  # as documented
    first.partial_fit(X[150:])
    assert np.all(np.isfinite(first.covariances_))
    with pytest.raises(ValueError, match="nan_policy='marginalize'"):
        GaussianMixture(3, random_state=0).partial_fit(X[:150])


def _dense_covariances(gm):
    """Each component's covariance as a (K, D, D) array, whatever the model."""
    k, d = gm.means_.shape
    cov = np.asarray(gm.covariances_)
    if gm.covariance_type == "tied":
        return np.repeat(cov[None], k, axis=0)
    if gm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    if gm.covariance_type == "spherical":
        return np.stack([np.eye(d) * c for c in cov])
    return cov


@pytest.mark.parametrize("cov", ["full", "diag", "tied", "spherical"])
def test_rows_with_gaps_beyond_the_models_range(cov):
    """A row with gaps whose observed coordinates lie beyond the model's range (their
    squares overflow): log-likelihood -inf, no NaN and no warning, and its whole
    responsibility to the component the complete-row kernel picks for the same row
    under the marginal model of its observed coordinates."""
    from gaussmix._engine.estep import estep_chunk, most_probable
    from gaussmix._engine.params import params_from_covariances
    from gaussmix._estimator import _as_params

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(300, 3)),
                   rng.normal(size=(300, 3)) * [6.0, 1.0, 0.5] + 2.0])
    gm = GaussianMixture(2, covariance_type=cov, random_state=0,
                         nan_policy="marginalize").fit(X)
    R = np.array([[1e200, np.nan, 0.0], [np.nan, -1e250, 3.0], [1e160, 1e160, np.nan],
                  [0.5, np.nan, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, proba, labels = gm.score_samples(R), gm.predict_proba(R), gm.predict(R)
    assert np.all(scores[:3] == -np.inf) and np.isfinite(scores[3])
    assert np.all(np.isin(proba[:3], [0.0, 1.0])) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    dense = _dense_covariances(gm)
    for row, label in zip(R[:3], labels[:3]):
        obs = ~np.isnan(row)
        marginal = params_from_covariances(gm.weights_, gm.means_[:, obs],
                                           dense[:, obs][:, :, obs], "full")
        assert label == most_probable(row[obs][None], marginal)[0]
    # The E-step's statistics: the rows counted, the log-likelihood -inf, no NaN weight.
    with np.errstate(over="ignore", invalid="ignore"):
        stats = estep_chunk(np.vstack([X[:50], R]), None, _as_params(gm),
                            {"spherical": "diag"}.get(cov, cov))
    assert stats.loglik == -np.inf and not np.isnan(stats.nk).any()
    assert stats.nk.sum() == pytest.approx(54)


@pytest.mark.parametrize("gap", [False, True])
def test_a_zero_weight_row_beyond_the_range_is_an_absent_row(gap):
    """A row of zero weight counts for nothing, even where its log-density is -inf."""
    from gaussmix._engine.estep import estep_chunk
    from gaussmix._estimator import _as_params

    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3))
    gm = GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(X)
    far = np.array([[1e200, np.nan if gap else 0.0, 0.0]])
    w = np.r_[np.ones(len(X)), 0.0]
    with np.errstate(over="ignore", invalid="ignore"):
        got = estep_chunk(np.vstack([X, far]), w, _as_params(gm), "full")
    ref = estep_chunk(X, np.ones(len(X)), _as_params(gm), "full")
    assert got.loglik == pytest.approx(ref.loglik, rel=1e-12)
    assert got.map_loglik == pytest.approx(ref.map_loglik, rel=1e-9, abs=1e-9)
