"""The engine against first principles: additive statistics, a slow reference EM."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaussmix import GaussianMixture
from gaussmix._models.registry import get_model
from gaussmix._engine.loop import run_em, sklearn_policy
from gaussmix._engine.mstep import MStep
from gaussmix._engine.producers import sum_stats
from gaussmix._engine.sources import ArraySource
from gaussmix._engine.estep import estep_chunk
from gaussmix._engine.mstep import mstep
from gaussmix._engine.params import params_from_covariances
from gaussmix._engine.stats import empty_stats, stats_from_labels, stats_from_resp

from reference_em import direct_stats, reference_em

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n=300, d=3, k=3, seed=0, shift=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5, size=(k, d))
    labels = rng.integers(k, size=n)
    X = centers[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 2, size=d)
    return (X + shift).astype(dtype)


@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
def test_stats_match_definition(kind):
    X = _blobs()
    resp = np.random.default_rng(1).dirichlet(np.ones(3), size=len(X))
    s = stats_from_resp(X, resp, kind)
    nk, means, scat = direct_stats(X, resp, kind)
    np.testing.assert_allclose(s.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(s.means, means, rtol=1e-10)
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hard_label_stats_match_the_definition(kind, weighted, dtype):
    # Hard labels (-1: no component; component 3 of 5 empty, 4 a single row) summed
    # directly equal the one-hot responsibilities' statistics, far from the origin too.
    X = _blobs(n=400, shift=1e5, dtype=dtype)
    rng = np.random.default_rng(2)
    labels = rng.choice([-1, 0, 1, 2], size=len(X))
    labels[7] = 4
    w = rng.uniform(0.1, 3.0, len(X)) if weighted else None
    resp = np.zeros((len(X), 5))
    rows = np.flatnonzero(labels >= 0)
    resp[rows, labels[rows]] = 1.0 if w is None else w[rows]
    got = stats_from_labels(X, labels, w, kind, 5)
    used = [0, 1, 2, 4]
    nk, means, scat = direct_stats(X.astype(np.float64), resp[:, used], kind, np.longdouble)
    np.testing.assert_allclose(got.nk[used], nk, rtol=1e-13)
    np.testing.assert_allclose(got.means[used], means, rtol=1e-13)
    assert got.nk[3] == 0 and np.all(got.means[3] == 0)
    if kind == "tied":
        np.testing.assert_allclose(got.scatter, scat, rtol=1e-9)
    else:
        np.testing.assert_allclose(got.scatter[used], scat, rtol=1e-9, atol=1e-9)
        assert np.all(got.scatter[3] == 0)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["full", "diag", "tied"]),
    split=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
    shift=st.sampled_from([0.0, 1e6]),
)
def test_stats_of_split_equal_stats_of_whole(kind, split, seed, shift):
    X = _blobs(n=120, seed=seed, shift=shift)
    resp = np.random.default_rng(seed).dirichlet(np.ones(3), size=len(X))
    cut = int(split * len(X))
    whole = stats_from_resp(X, resp, kind)
    parts = empty_stats(3, X.shape[1], kind) + stats_from_resp(X[:cut], resp[:cut], kind)
    parts = parts + stats_from_resp(X[cut:], resp[cut:], kind)
    np.testing.assert_allclose(parts.nk, whole.nk, rtol=1e-12)
    np.testing.assert_allclose(parts.means, whole.means, rtol=1e-12, atol=1e-9)
    scale = np.abs(whole.scatter).max()
    np.testing.assert_allclose(parts.scatter, whole.scatter, rtol=1e-9, atol=1e-9 * scale)


@settings(max_examples=15, deadline=None)
@given(cov=st.sampled_from(COV_TYPES), seed=st.integers(0, 10_000))
def test_estep_is_permutation_invariant_and_chunk_independent(cov, seed):
    X = _blobs(n=200, seed=seed)
    gm = GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=2).fit(X)
    from gaussmix._estimator import _as_params
    params = _as_params(gm)
    kind = get_model(cov).stats_kind
    whole = estep_chunk(X, None, params, kind)
    perm = np.random.default_rng(seed).permutation(len(X))
    chunked = sum_stats(ArraySource(X[perm], None, chunk_rows=37), params, kind)
    np.testing.assert_allclose(chunked.loglik, whole.loglik, rtol=1e-12)
    np.testing.assert_allclose(chunked.nk, whole.nk, rtol=1e-11)
    np.testing.assert_allclose(chunked.scatter, whole.scatter, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_em_matches_slow_reference(cov):
    X = _blobs(n=250, d=3)
    rng = np.random.default_rng(3)
    k, d = 3, X.shape[1]
    weights0 = np.full(k, 1 / k)
    means0 = X[rng.choice(len(X), k, replace=False)]
    full0 = np.stack([np.eye(d) * 4.0] * k)
    prec0 = {"full": np.linalg.inv(full0), "tied": np.linalg.inv(full0[0]),
             "diag": np.full((k, d), 0.25), "spherical": np.full(k, 0.25)}[cov]
    n_steps = 7
    ref_w, ref_m, ref_c, ref_ll = reference_em(
        X, weights0, means0, full0, cov, n_steps
    )
    gm = GaussianMixture(k, covariance_type=cov, weights_init=weights0, means_init=means0,
                         precisions_init=prec0, max_iter=n_steps, tol=0).fit(X)
    np.testing.assert_allclose(gm.weights_, ref_w, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref_m, rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref_c, rtol=1e-10)
    # lower_bound_ is the log-likelihood of the returned parameters.
    assert gm.lower_bound_ == pytest.approx(ref_ll[-1], rel=1e-12)
    np.testing.assert_allclose(gm.lower_bounds_, ref_ll[1:], rtol=1e-12)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_em_never_lowers_the_likelihood(cov):
    X = _blobs(n=400, d=2, k=4, seed=5)
    gm = GaussianMixture(4, covariance_type=cov, init_params="random", random_state=1,
                         max_iter=60, tol=0, reg_covar=0).fit(X)
    ll = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(ll) >= -1e-10 * np.abs(ll[1:]))


def test_run_em_from_params_reports_final_loglik():
    X = _blobs()
    model = get_model("full")
    src = ArraySource(X, None, 64)
    start = params_from_covariances(np.full(3, 1 / 3), X[:3], np.stack([np.eye(3)] * 3),
                                    "full")
    res = run_em(lambda p: sum_stats(src, p, "full"), MStep(model, reg_covar=1e-6), start,
                 sklearn_policy(tol=0), max_iter=5)
    direct = estep_chunk(X, None, res.params, "full").mean_loglik
    assert res.log_likelihood == pytest.approx(direct, rel=1e-13)
    assert res.n_iter == 5 and not res.converged
    # and the M-step of the final statistics is the next EM iterate
    nxt = mstep(res.stats, model, 1e-6)
    assert np.all(np.isfinite(nxt.covariances))
