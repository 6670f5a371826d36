"""GaussianMixture.partial_fit (stepwise EM) against independent references."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import ArraySource, GaussianMixture


def _data(n=600, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5, size=(k, d))
    labels = rng.integers(k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.5 + np.eye(d)
    return centers[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))


def _start(X, cov, k=3, seed=1):
    """A given start in scikit-learn's init-parameter form."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    prec = {"full": np.stack([np.eye(d) * 0.3] * k), "tied": np.eye(d) * 0.3,
            "diag": np.full((k, d), 0.3), "spherical": np.full(k, 0.3)}[cov]
    return dict(weights_init=np.full(k, 1 / k),
                means_init=X[rng.choice(len(X), k, replace=False)], precisions_init=prec)


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


PARAMS = ["weights_", "means_", "covariances_", "precisions_cholesky_"]


# ---------------------------------------------------------- the first call is fit's
@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical", "EEI"])
@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_first_call_is_one_iteration_of_fit(cov, init):
    X = _data()
    kw = dict(n_components=3, covariance_type=cov, init_params=init, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = GaussianMixture(max_iter=1, tol=0, **kw).fit(X)
    online = GaussianMixture(**kw).partial_fit(X)
    for attr in PARAMS:
        assert _rel(getattr(online, attr), getattr(fitted, attr)) < 1e-12, attr
    assert online.n_iter_ == 1 and not online.converged_
    # lower_bound_: the batch under the parameters before the update (the start's).
    start = GaussianMixture(max_iter=0, **kw).fit(X)
    assert online.lower_bound_ == pytest.approx(start.score(X), rel=1e-12)
    assert online.lower_bounds_ == [online.lower_bound_]


# ------------------------------------------------- a slow reference, the obvious way
def _moments(X, w, weights, means, covs):
    """Raw moments E[1], E[x], E[xx^T] per unit of row weight, SciPy densities."""
    dens = np.column_stack([weights[k] * multivariate_normal(means[k], covs[k]).pdf(X)
                            for k in range(len(weights))])
    r = dens / dens.sum(axis=1, keepdims=True) * w[:, None] / w.sum()
    return r.sum(axis=0), r.T @ X, np.einsum("ik,id,ie->kde", r, X, X)


def _reference(batches, start, cov, alpha, t0, reg_covar=1e-6, moments=None):
    """Stepwise EM: SciPy densities, blended raw moments E[1], E[x], E[xx^T];
    ``moments`` given count as a first update."""
    weights = start["weights_init"]
    means = start["means_init"]
    prec = start["precisions_init"]
    covs = np.linalg.inv(prec) if cov == "full" else np.stack([np.diag(1 / p) for p in prec])
    first = 0 if moments is None else 1
    for t, (X, w) in enumerate(batches, start=first):
        batch = _moments(X, w, weights, means, covs)
        eta = 1.0 if t == 0 else (t + t0) ** -alpha
        moments = batch if moments is None else tuple(
            (1 - eta) * s + eta * b for s, b in zip(moments, batch))
        m0, m1, m2 = moments
        weights = m0 / m0.sum()
        means = m1 / m0[:, None]
        covs = m2 / m0[:, None, None] - np.einsum("kd,ke->kde", means, means)
        if cov == "diag":
            covs = np.stack([np.diag(np.diag(c)) for c in covs])
        covs = covs + reg_covar * np.eye(X.shape[1])
    return weights, means, covs


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_agrees_with_a_slow_reference(cov):
    X = _data(n=900, seed=2)
    w = np.random.default_rng(3).uniform(0.2, 3.0, size=len(X))
    cuts = [0, 400, 550, 900]  # batches of different sizes and weights
    batches = [(X[a:b], w[a:b]) for a, b in zip(cuts, cuts[1:])]
    start = _start(X, cov)
    alpha, t0 = 0.7, 1.5
    gm = GaussianMixture(3, covariance_type=cov, step_exponent=alpha, step_offset=t0,
                         **start)
    for Xb, wb in batches:
        gm.partial_fit(Xb, sample_weight=wb)
    weights, means, covs = _reference(batches, start, cov, alpha, t0)
    assert gm.n_iter_ == 3
    assert _rel(gm.weights_, weights) < 1e-10
    assert _rel(gm.means_, means) < 1e-10
    got = gm.covariances_ if cov == "full" else np.stack([np.diag(c) for c in gm.covariances_])
    assert _rel(got, covs) < 1e-10


# ------------------------------------------------------------------ the engine's blend
@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
def test_blend_is_the_statistics_of_reweighted_rows(kind):
    # (1 - eta) A / W_A + eta B / W_B: the statistics of A's and B's rows with their
    # weights scaled so, taken directly from the rows.
    from dataclasses import replace

    from gaussmix._engine.stats import stats_from_resp
    from gaussmix._engine.stepwise import blend, step_size

    rng = np.random.default_rng(20)
    XA, XB = _data(n=200, seed=21), _data(n=120, seed=22) + 2.0
    rA, rB = rng.dirichlet(np.ones(3), size=200), rng.dirichlet(np.ones(3), size=120)
    wA, wB = rng.uniform(0.5, 2, size=200), rng.uniform(0.5, 2, size=120)

    def stats(X, r, w):
        return replace(stats_from_resp(X, r * w[:, None], kind), weight=w.sum(),
                       n_rows=len(X))

    eta = step_size(1, 0.7, 2.0)
    assert step_size(0, 0.7, 2.0) == 1.0 and eta == 3.0**-0.7
    got = blend(blend(None, stats(XA, rA, wA), 1.0), stats(XB, rB, wB), eta)
    v = np.r_[(1 - eta) * wA / wA.sum(), eta * wB / wB.sum()]
    want = stats_from_resp(np.vstack([XA, XB]), np.vstack([rA, rB]) * v[:, None], kind)
    np.testing.assert_allclose(got.nk, want.nk, rtol=1e-12)
    np.testing.assert_allclose(got.means, want.means, rtol=1e-12)
    np.testing.assert_allclose(got.scatter, want.scatter, rtol=1e-10,
                               atol=1e-12 * np.abs(want.scatter).max())
    assert got.weight == pytest.approx(1.0, rel=1e-15) and got.n_rows == 120


# ------------------------------------------------------------------ sample weights
def _three_batches(gm, X, w):
    for rows in (slice(0, 200), slice(200, 350), slice(350, None)):
        if w is None:
            gm.partial_fit(X[rows])
        else:
            gm.partial_fit(X[rows], sample_weight=w[rows])
    return gm


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_integer_weights_equal_repeated_rows(cov):
    X = _data(n=500, seed=4)
    w = np.random.default_rng(5).integers(0, 4, size=len(X))
    w[[0, 200, 350]] = 1  # every batch keeps a row
    kw = dict(n_components=3, covariance_type=cov, **_start(X, cov))
    weighted = _three_batches(GaussianMixture(**kw), X, w)
    repeated = GaussianMixture(**kw)
    for rows in (slice(0, 200), slice(200, 350), slice(350, None)):
        repeated.partial_fit(np.repeat(X[rows], w[rows], axis=0))
    for attr in PARAMS:
        assert _rel(getattr(weighted, attr), getattr(repeated, attr)) < 1e-10, attr
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_zero_weight_equals_absent_row_including_initialisation():
    X = _data(n=500, seed=6)
    X[::25] += 1000.0  # outliers that would drag the fit if counted
    w = np.ones(len(X))
    w[::25] = 0
    a = _three_batches(GaussianMixture(3, random_state=0), X, w)
    b = GaussianMixture(3, random_state=0)
    for rows in (slice(0, 200), slice(200, 350), slice(350, None)):
        b.partial_fit(X[rows][w[rows] > 0])
    for attr in PARAMS:
        assert _rel(getattr(a, attr), getattr(b, attr)) < 1e-10, attr


def test_a_common_scale_of_the_weights_changes_nothing():
    X = _data(n=500, seed=7)
    w = np.random.default_rng(8).uniform(0.5, 2, size=len(X))
    a = _three_batches(GaussianMixture(3, random_state=0), X, w)
    b = _three_batches(GaussianMixture(3, random_state=0), X, w * 1e-3)
    for attr in PARAMS:
        assert _rel(getattr(a, attr), getattr(b, attr)) < 1e-10, attr


# ------------------------------------------------------------ scikit-learn's rules
def test_later_calls_check_the_features():
    X = _data(n=100)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is "
                                         "expecting 3 features"):
        gm.partial_fit(X[:, :2])
    with pytest.raises(ValueError, match="expecting 3 features"):
        gm.partial_fit(ArraySource(X[:, :2]))
    gm.partial_fit(X[:1])  # one row is a batch
    assert gm.n_iter_ == 2


def test_feature_names_are_set_then_checked():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(_data(n=100), columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).partial_fit(df)
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        gm.partial_fit(df[["c", "b", "a"]])


def test_first_batch_needs_a_row_per_component():
    X = _data(n=10)
    with pytest.raises(ValueError, match="first batch"):
        GaussianMixture(5).partial_fit(X[:4])
    with pytest.raises(ValueError, match="positive weight"):
        GaussianMixture(3).partial_fit(X, sample_weight=[1, 1] + [0] * 8)
    with pytest.raises(ValueError, match="first batch"):
        GaussianMixture(3).partial_fit(ArraySource(X, chunk_rows=2))


@pytest.mark.parametrize("param,value", [("step_exponent", 0.5), ("step_exponent", 1.1),
                                         ("step_offset", -1.0)])
def test_invalid_step_parameters(param, value):
    with pytest.raises(ValueError, match=param):
        GaussianMixture(**{param: value}).partial_fit(_data(n=50))


# ---------------------------------------------------------------- streams, fit, more
def test_a_source_is_a_stream_of_batches():
    X = _data(n=700, seed=9)
    w = np.random.default_rng(10).uniform(0, 2, size=len(X))
    batch = 150
    streamed = GaussianMixture(3, random_state=0).partial_fit(ArraySource(X, w, batch))
    sliced = GaussianMixture(3, random_state=0)
    for start in range(0, len(X), batch):
        sliced.partial_fit(X[start:start + batch], sample_weight=w[start:start + batch])
    assert streamed.n_iter_ == sliced.n_iter_ == 5
    for attr in PARAMS:
        assert _rel(getattr(streamed, attr), getattr(sliced, attr)) < 1e-12, attr
    # lower_bounds_: one per batch of the call; the last is lower_bound_.
    assert len(streamed.lower_bounds_) == 5
    assert streamed.lower_bounds_[-1] == streamed.lower_bound_
    assert streamed.lower_bound_ == pytest.approx(sliced.lower_bound_, rel=1e-12)
    with pytest.raises(ValueError, match="Source"):
        streamed.partial_fit(ArraySource(X), sample_weight=w)


def test_after_fit_it_continues_from_the_fitted_statistics():
    # fit's last E-step gives the statistics of the fitted parameters; the next batch
    # blends into them by eta_1, as into a first update.
    rows = _data(n=900, seed=11)
    X, new = rows[:600], rows[600:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = GaussianMixture(3, random_state=0, max_iter=5).fit(X)
    start = dict(weights_init=fitted.weights_, means_init=fitted.means_,
                 precisions_init=fitted.precisions_)
    ones = np.ones(len(X))
    moments = _moments(X, ones, fitted.weights_, fitted.means_, fitted.covariances_)
    weights, means, covs = _reference([(new, np.ones(len(new)))], start, "full",
                                      fitted.step_exponent, fitted.step_offset,
                                      moments=moments)
    fitted.partial_fit(new)
    assert _rel(fitted.weights_, weights) < 1e-10
    assert _rel(fitted.means_, means) < 1e-10
    assert _rel(fitted.covariances_, covs) < 1e-10
    assert fitted.n_iter_ == 2  # fit's statistics count as the first update
    # ... and fit starts afresh: the running statistics go with the parameters.
    fitted.partial_fit(X[:100])
    assert fitted.n_iter_ == 3
    fitted.fit(X)
    fitted.partial_fit(new)
    assert fitted.n_iter_ == 2


def test_after_select_it_starts_the_schedule_again():
    # A model fitted elsewhere (select's best model, a model file) has no statistics:
    # the next update is one EM iteration on the batch (warm start, one iteration).
    from gaussmix import select

    rows = _data(n=600, seed=14)
    X, new = rows[:400], rows[400:]
    best = select(X, G=[3], models=["VVV"], random_state=0).best
    expected = GaussianMixture(3, max_iter=1, tol=0, weights_init=best.weights_,
                               means_init=best.means_, precisions_init=best.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected.fit(new)
    best.partial_fit(new)
    for attr in PARAMS:
        assert _rel(getattr(best, attr), getattr(expected, attr)) < 1e-10, attr
    assert best.n_iter_ == 1


def test_step_sizes_follow_the_schedule():
    # Two identical batches: the second update must blend by eta_1 = (1 + t0)^-alpha;
    # with t0 = 0, eta_1 = 1 and the second update is a plain EM iteration on batch 2.
    X = _data(n=400, seed=13)
    kw = dict(n_components=3, **_start(X, "full"))
    a = GaussianMixture(step_offset=0.0, **kw).partial_fit(X[:200]).partial_fit(X[200:])
    b = GaussianMixture(**kw).partial_fit(X[:200])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c = GaussianMixture(max_iter=1, tol=0, weights_init=b.weights_, means_init=b.means_,
                            precisions_init=b.precisions_, n_components=3).fit(X[200:])
    for attr in PARAMS:
        assert _rel(getattr(a, attr), getattr(c, attr)) < 1e-12, attr


def test_an_emptied_component_is_reseeded_as_in_fit():
    from gaussmix import EmptyComponentWarning

    X = _data(n=300, seed=15)
    start = _start(X, "full")
    start["means_init"][0] += 1e3  # explains no row
    gm = GaussianMixture(3, **start)
    with pytest.warns(EmptyComponentWarning, match="update 1 of this partial_fit"):
        gm.partial_fit(X[:150])
    gm.partial_fit(X[150:])
    assert np.all(np.isfinite(gm.covariances_))
    # Back among the rows, with rows of its own.
    assert np.abs(gm.means_[0]).max() < 100 and gm.weights_[0] > 1e-4


def test_float32_stays_float32():
    X = _data(n=300).astype(np.float32)
    gm = GaussianMixture(2, random_state=0).partial_fit(X[:150]).partial_fit(X[150:])
    assert gm.means_.dtype == np.float32 and gm.covariances_.dtype == np.float32


# --------------------------------------------------- the acceptance, scaled down
def _mixture_rows(n, d, k, seed):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, k)
    weights /= weights.sum()
    means = rng.normal(size=(k, d)) * 1.3
    q = np.linalg.qr(rng.standard_normal((k, d, d)))[0]
    factors = q * rng.uniform(0.7, 1.4, size=(k, 1, d))
    labels = rng.choice(k, size=n, p=weights)
    return means[labels] + np.einsum("nij,nj->ni", factors[labels],
                                     rng.standard_normal((n, d)))


def test_one_pass_comes_close_to_full_em():
    X = _mixture_rows(200_000, 8, 8, seed=14)
    batch = 5000
    online = GaussianMixture(8, random_state=0)
    for start in range(0, len(X), batch):
        online.partial_fit(X[start:start + batch])
    first = GaussianMixture(8, random_state=0, max_iter=0).fit(X[:batch])
    full = GaussianMixture(8, tol=1e-4, max_iter=300, weights_init=first.weights_,
                           means_init=first.means_, precisions_init=first.precisions_)
    full.fit(X)
    assert online.n_iter_ == 40
    gap = full.score(X) - online.score(X)
    assert gap < 0.01, gap
