"""gaussmix.GaussianMixture against scikit-learn, and what scikit-learn cannot do."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from gaussmix import EmptyComponentWarning, GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _data(n=400, d=3, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6, size=(k, d))
    labels = rng.integers(k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.6 + np.eye(d)
    X = centers[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))
    return X.astype(dtype)


def _start(X, cov, k=3, seed=1):
    """A shared starting point in scikit-learn's init-parameter form."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    means = X[rng.choice(len(X), k, replace=False)]
    prec = {"full": np.stack([np.eye(d) * 0.3] * k), "tied": np.eye(d) * 0.3,
            "diag": np.full((k, d), 0.3), "spherical": np.full(k, 0.3)}[cov]
    return dict(weights_init=np.full(k, 1 / k), means_init=means, precisions_init=prec)


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_same_numbers_as_sklearn_from_same_start(cov, tol):
    X = _data()
    kw = dict(n_components=3, covariance_type=cov, max_iter=40, tol=tol, **_start(X, cov))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SKGaussianMixture(**kw).fit(X)
        gm = GaussianMixture(**kw).fit(X)
    assert gm.n_iter_ == sk.n_iter_ and gm.converged_ == sk.converged_
    for attr in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert _rel(getattr(gm, attr), getattr(sk, attr)) < 1e-8, attr
    np.testing.assert_array_equal(gm.predict(X), sk.predict(X))
    np.testing.assert_allclose(gm.predict_proba(X), sk.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(gm.score_samples(X), sk.score_samples(X), rtol=1e-8)
    assert gm.bic(X) == pytest.approx(sk.bic(X), rel=1e-8)
    assert gm.aic(X) == pytest.approx(sk.aic(X), rel=1e-8)
    # scikit-learn's lower bound lags one M-step behind; ours is of the returned model.
    assert gm.lower_bound_ == pytest.approx(gm.score(X), rel=1e-12)
    assert gm.lower_bounds_[-1] == gm.lower_bound_
    np.testing.assert_allclose(gm.lower_bounds_[:-1], sk.lower_bounds_[1:], rtol=1e-9)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_same_initialisation_as_sklearn(init_params):
    X = _data(seed=2)
    kw = dict(n_components=3, init_params=init_params, random_state=7, max_iter=0)
    sk = SKGaussianMixture(**kw).fit(X)
    gm = GaussianMixture(**kw).fit(X)
    np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-8, atol=1e-12)


def test_fit_predict_equals_fit_then_predict():
    X = _data(seed=3)
    for cov in COV_TYPES:
        a = GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=5, tol=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = a.fit_predict(X)
            b = GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=5, tol=0)
            np.testing.assert_array_equal(labels, b.fit(X).predict(X))


def test_passes_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(GaussianMixture(), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def test_pipeline_and_grid_search():
    X = _data(n=300, seed=4) * 100
    pipe = make_pipeline(StandardScaler(), GaussianMixture(random_state=0))
    search = GridSearchCV(pipe, {"gaussianmixture__n_components": [1, 3]}, cv=3).fit(X)
    assert search.best_params_["gaussianmixture__n_components"] == 3
    gm = search.best_estimator_[-1]
    Xs = search.best_estimator_[0].transform(X)
    assert search.best_estimator_.score(X) == pytest.approx(gm.score_samples(Xs).mean())


def test_float32_in_float32_out_and_close_to_float64():
    X = _data(n=500)
    for cov in COV_TYPES:
        kw = dict(n_components=3, covariance_type=cov, max_iter=20, tol=0, **_start(X, cov))
        g32 = GaussianMixture(**kw).fit(X.astype(np.float32))
        g64 = GaussianMixture(**kw).fit(X)
        for attr in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
            assert getattr(g32, attr).dtype == np.float32
        assert _rel(g32.covariances_, g64.covariances_) < 1e-3
        assert g32.lower_bound_ == pytest.approx(g64.lower_bound_, rel=1e-5)


# ----------------------------------------------------------------- sample weights
@pytest.mark.parametrize("cov", COV_TYPES)
def test_integer_weights_equal_repeated_rows(cov):
    X = _data(n=200, seed=5)
    w = np.random.default_rng(0).integers(0, 4, size=len(X))
    kw = dict(n_components=3, covariance_type=cov, max_iter=15, tol=0, **_start(X, cov))
    weighted = GaussianMixture(**kw).fit(X, sample_weight=w)
    repeated = GaussianMixture(**kw).fit(np.repeat(X, w, axis=0))
    for attr in ["weights_", "means_", "covariances_"]:
        assert _rel(getattr(weighted, attr), getattr(repeated, attr)) < 1e-10, attr
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_zero_weight_equals_absent_row_including_initialisation():
    X = _data(n=300, seed=6)
    X[:20] += 1000.0  # outliers that would drag the fit if counted
    w = np.ones(len(X))
    w[:20] = 0
    for init in ["kmeans", "k-means++", "random_from_data"]:
        a = GaussianMixture(3, init_params=init, random_state=0).fit(X, sample_weight=w)
        b = GaussianMixture(3, init_params=init, random_state=0).fit(X[20:])
        order_a, order_b = np.argsort(a.means_[:, 0]), np.argsort(b.means_[:, 0])
        np.testing.assert_allclose(a.means_[order_a], b.means_[order_b], rtol=1e-6)
        assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-8)


def test_weights_change_the_fit_like_sklearn_would_with_repeats():
    X = _data(n=300, seed=7)
    w = np.where(np.arange(len(X)) % 2 == 0, 3.0, 1.0)
    kw = dict(n_components=3, covariance_type="full", max_iter=30, tol=0, **_start(X, "full"))
    ours = GaussianMixture(**kw).fit(X, sample_weight=w)
    ref = SKGaussianMixture(**kw).fit(np.repeat(X, w.astype(int), axis=0))
    assert _rel(ours.covariances_, ref.covariances_) < 1e-8


# --------------------------------------------------------------------- numerics
@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("dtype,shift,tol", [(np.float64, 1e8, 1e-6), (np.float32, 1e4, 1e-3)])
def test_far_from_origin_gives_same_covariances(cov, dtype, shift, tol):
    X = _data(n=600, seed=8)
    start = _start(X, cov)
    kw = dict(n_components=3, covariance_type=cov, max_iter=10, tol=0)
    near = GaussianMixture(**kw, **start).fit(X.astype(dtype))
    far_start = dict(start, means_init=start["means_init"] + shift)
    far = GaussianMixture(**kw, **far_start).fit((X + shift).astype(dtype))
    assert _rel(far.covariances_.astype(np.float64), near.covariances_) < tol
    np.testing.assert_allclose(far.means_ - shift, near.means_, atol=50 * tol * (1 + shift * np.finfo(dtype).eps))


def test_component_far_from_data_is_reseeded_not_nan():
    X = _data(n=300, seed=9)
    start = _start(X, "full")
    start["means_init"] = start["means_init"].copy()
    start["means_init"][0] = 1e6
    with pytest.warns(EmptyComponentWarning, match="re-seeded"):
        gm = GaussianMixture(3, max_iter=50, **start).fit(X)
    for attr in ["weights_", "means_", "covariances_", "precisions_"]:
        assert np.all(np.isfinite(getattr(gm, attr)))
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert gm.weights_.min() > 0.05  # the re-seeded component took real data


def test_collapsing_component_stays_finite():
    rng = np.random.default_rng(10)
    X = np.vstack([np.zeros((30, 2)), rng.normal(size=(100, 2)) + 5])  # 30 identical rows
    for cov in COV_TYPES:
        gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X)
        assert np.all(np.isfinite(gm.covariances_)) and np.all(np.isfinite(gm.score_samples(X)))


def test_collapse_without_regularisation_is_a_clear_error():
    X = np.vstack([np.zeros((30, 2)), np.random.default_rng(0).normal(size=(100, 2)) + 5])
    with pytest.raises(ValueError, match="increase reg_covar"):
        GaussianMixture(2, reg_covar=0, random_state=0).fit(X)


def test_underflow_free_for_very_distant_clusters():
    X = np.vstack([np.zeros((50, 2)), np.full((50, 2), 1e5)])
    X += np.random.default_rng(0).normal(size=X.shape)
    gm = GaussianMixture(2, random_state=0).fit(X)
    proba = gm.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1)
    assert np.all(np.isfinite(gm.score_samples(X + 1e4)))


def test_warm_start_continues_the_same_run():
    X = _data(seed=11)
    kw = dict(n_components=3, tol=0, **_start(X, "full"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = GaussianMixture(max_iter=8, **kw).fit(X)
        twice = GaussianMixture(max_iter=4, warm_start=True, **kw).fit(X).fit(X)
    assert _rel(twice.covariances_, once.covariances_) < 1e-10


def test_n_init_keeps_the_best_run():
    X = _data(n=300, k=4, seed=12)
    kw = dict(n_components=4, init_params="random", max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        best = GaussianMixture(n_init=4, random_state=np.random.RandomState(0), **kw).fit(X)
        # The same four starts, one fit each, drawing from one shared random stream.
        stream = np.random.RandomState(0)
        singles = [GaussianMixture(random_state=stream, **kw).fit(X) for _ in range(4)]
    lls = [s.lower_bound_ for s in singles]
    assert len(set(lls)) > 1  # the starts really differ
    winner = singles[int(np.argmax(lls))]
    assert best.lower_bound_ == max(lls)
    np.testing.assert_array_equal(best.means_, winner.means_)


def test_sample_matches_sklearn_for_same_parameters():
    X = _data(seed=13)
    for cov in COV_TYPES:
        kw = dict(n_components=3, covariance_type=cov, random_state=3, max_iter=5, tol=0,
                  **_start(X, cov))
        sk = SKGaussianMixture(**kw).fit(X)
        gm = GaussianMixture(**kw).fit(X)
        xs, ys = sk.sample(50)
        xg, yg = gm.sample(50)
        np.testing.assert_array_equal(yg, ys)
        np.testing.assert_allclose(xg, xs, rtol=1e-7)


def test_chunk_size_does_not_change_the_result():
    X = _data(n=500, seed=14)
    for cov in COV_TYPES:
        kw = dict(n_components=3, covariance_type=cov, max_iter=10, tol=0, **_start(X, cov))
        a = GaussianMixture(chunk_size=7, **kw).fit(X)
        b = GaussianMixture(chunk_size=100_000, **kw).fit(X)
        assert _rel(a.covariances_, b.covariances_) < 1e-10
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(_data(n=100), columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).fit(df)
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    assert gm.n_features_in_ == 3


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("X,match", [
    (np.array([[1.0, np.nan], [2.0, 3.0], [3.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [2.0, 3.0], [3.0, 1.0]]), "infinity"),
    (np.arange(10.0), "Expected 2D array"),
    (np.zeros((4, 2, 2)), "dim 3"),
    (np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object), "convert"),
])
def test_bad_X_is_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(np.random.default_rng(0).normal(size=(3, 2)))
    with pytest.raises(ValueError, match="positive weight"):
        GaussianMixture(3).fit(np.random.default_rng(0).normal(size=(10, 2)),
                               sample_weight=[1, 1] + [0] * 8)


def test_wrong_feature_count_at_predict():
    gm = GaussianMixture(2, random_state=0).fit(_data(n=50))
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.zeros((3, 2)))


@pytest.mark.parametrize("w,match", [
    (-np.ones(50), "Negative"),
    (np.r_[np.nan, np.ones(49)], "NaN or infinity"),
    (np.r_[np.inf, np.ones(49)], "NaN or infinity"),
    (np.zeros(50), "at least one positive"),
    (np.ones(49), r"expected \(50,\)"),
    (np.ones((50, 2)), "1D"),
    (np.array(["a"] * 50), "numeric"),
])
def test_bad_sample_weight_is_a_clear_error(w, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(_data(n=50), sample_weight=w)


@pytest.mark.parametrize("param,value", [
    ("n_components", 0), ("covariance_type", "fancy"), ("tol", -1.0), ("reg_covar", -1.0),
    ("max_iter", -1), ("n_init", 0), ("init_params", "best"), ("chunk_size", 0),
])
def test_invalid_parameters(param, value):
    with pytest.raises(ValueError, match=param):
        GaussianMixture(**{param: value}).fit(_data(n=50))


def test_user_arrays_are_never_modified():
    X = _data(n=100)
    w = np.linspace(0.5, 2, 100)
    start = _start(X, "full")
    copies = [X.copy(), w.copy()] + [v.copy() for v in start.values()]
    gm = GaussianMixture(3, **start).fit(X, sample_weight=w)
    gm.predict(X), gm.score_samples(X), gm.predict_proba(X)
    for original, copy in zip([X, w] + list(start.values()), copies):
        np.testing.assert_array_equal(original, copy)


def test_em_memory_is_bounded_by_the_chunk():
    import tracemalloc

    rng = np.random.default_rng(15)
    n, d, k, chunk = 200_000, 4, 8, 2_000
    X = rng.normal(size=(n, d))
    start = _start(X, "full", k=k)
    gm = GaussianMixture(k, max_iter=2, tol=0, chunk_size=chunk, **start)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # One (n, K) responsibility matrix alone would be n * k * 8 = 12.8 MB.
    assert peak < 40 * chunk * max(k, d) * 8, peak


def test_kmeans_start_on_large_data_uses_a_subset(monkeypatch):
    from sklearn.cluster import KMeans

    from gaussmix._engine import init as _init

    X = _data(n=3000, k=3, seed=16)
    full = GaussianMixture(3, random_state=0, max_iter=0).fit(X)
    monkeypatch.setattr(_init, "KMEANS_SUBSET", 300)
    fitted = []
    monkeypatch.setattr(KMeans, "fit", _recording(KMeans.fit, fitted))
    sub = GaussianMixture(3, random_state=0, max_iter=0).fit(X)
    assert fitted == [300]  # k-means saw only the subset
    # every row starts in the component of its nearest subset centre: same clusters
    order_f, order_s = np.argsort(full.means_[:, 0]), np.argsort(sub.means_[:, 0])
    np.testing.assert_allclose(sub.means_[order_s], full.means_[order_f], atol=0.1)
    w = np.ones(len(X))
    w[::2] = 0  # zero-weight rows are never drawn into the subset
    fitted.clear()
    GaussianMixture(3, random_state=0, max_iter=0).fit(X, sample_weight=w)
    assert fitted == [300]


def test_kmeans_sample_and_runs_follow_the_plan(monkeypatch):
    """Beyond KMEANS_SUBSET rows: a sample of KMEANS_ROWS_PER_COMPONENT rows per component
    (at least KMEANS_MIN_SAMPLE), the best of as many k-means runs as the budget pays."""
    from sklearn.cluster import KMeans

    from gaussmix._engine import init as _init

    assert _init.kmeans_plan(100_000, 3) == (100_000, 1)  # every row: scikit-learn's start
    assert _init.kmeans_plan(10**6, 3) == (3_000, 3)
    assert _init.kmeans_plan(10**6, 16) == (4_800, 3)
    assert _init.kmeans_plan(10**6, 120) == (36_000, 2)
    assert _init.kmeans_plan(10**6, 200) == (60_000, 1)
    assert _init.kmeans_plan(10**7, 500) == (100_000, 1)
    X = _data(n=3000, k=3, seed=17)
    every_row = GaussianMixture(3, random_state=0).fit(X)
    monkeypatch.setattr(_init, "KMEANS_SUBSET", 1000)
    monkeypatch.setattr(_init, "KMEANS_MIN_SAMPLE", 200)
    monkeypatch.setattr(_init, "KMEANS_ROWS_PER_COMPONENT", 50)
    fitted, runs = [], []
    record = _recording(KMeans.fit, fitted)
    monkeypatch.setattr(KMeans, "fit", lambda self, *a, **k: runs.append(self.n_init)
                        or record(self, *a, **k))
    gm = GaussianMixture(3, random_state=0).fit(X)
    assert fitted == [200] and runs == [3]
    assert gm.lower_bound_ == pytest.approx(every_row.lower_bound_, abs=1e-3)


def test_drawn_positions_are_uniform():
    """Every row is as likely to be drawn, by permutation and by rejection alike."""
    from gaussmix._engine.sources import draw_positions

    rng = np.random.RandomState(0)
    for size, n in ((40, 10), (1000, 10)):  # choice (size <= 16 n), rejection (beyond)
        counts = np.zeros(size)
        trials = 4000
        for _ in range(trials):
            picked = draw_positions(size, n, rng)
            assert picked.size == n and np.all(np.diff(picked) > 0)
            counts[picked] += 1
        expected = trials * n / size
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < size + 4 * np.sqrt(2 * size)  # mean size - 1, sd sqrt(2 (size - 1))


def _recording(fit, seen):
    def wrapper(self, X, *args, **kwargs):
        weights = kwargs.get("sample_weight")
        assert weights is None or np.all(weights > 0)
        seen.append(len(X))
        return fit(self, X, *args, **kwargs)
    return wrapper


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_precision_factors_are_exactly_upper_triangular(cov):
    # Strongly correlated features: LU with pivoting would leave residue below the diagonal.
    rng = np.random.default_rng(17)
    t = rng.normal(size=(400, 1))
    X = np.hstack([t, 3 * t + 0.1 * rng.normal(size=(400, 1)), rng.normal(size=(400, 1))])
    gm = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    pc = gm.precisions_cholesky_.reshape(-1, 3, 3)
    assert np.all(np.tril(pc, -1) == 0) and np.all(np.diagonal(pc, axis1=1, axis2=2) > 0)
    ref = np.linalg.cholesky(np.linalg.inv(gm.covariances_.reshape(-1, 3, 3)[..., ::-1, ::-1]))
    np.testing.assert_allclose(pc, ref[..., ::-1, ::-1], rtol=1e-8, atol=1e-10)
