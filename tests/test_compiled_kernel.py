"""The compiled E-step (gaussmix._engine.compiled) against the NumPy kernel and NumPy.

The NumPy kernel is held to the textbook definition in test_kernels.py (where the
tests of what the E-step computes also run on the compiled kernel); here the compiled
one must give the same statistics in every case it takes, hand back the cases it does
not, and be chosen only when it should be.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from gaussmix import GaussianMixture, _first_run  # noqa: E402
from gaussmix._engine import _compiled_kernels, compiled  # noqa: E402
from gaussmix._engine.estep import estep_chunk  # noqa: E402
from gaussmix._engine.params import full_covariances, params_from_covariances  # noqa: E402

FAMILIES = ["full", "tied", "diag", "spherical"]
KIND = {"full": "full", "tied": "tied", "diag": "diag", "spherical": "diag"}


def _problem(family, n=2500, d=3, k=4, seed=0, shift=50.0, spread=3.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(k, d)) + shift
    X = means[rng.integers(k, size=n)] + rng.normal(size=(n, d)) * rng.uniform(0.5, 2, d)
    a = rng.normal(size=(k, d, d)) * 0.3 + np.eye(d)
    cov = {"full": a @ a.transpose(0, 2, 1), "tied": a[0] @ a[0].T,
           "diag": rng.uniform(0.5, 3, (k, d)), "spherical": rng.uniform(0.5, 3, k)}[family]
    params = params_from_covariances(rng.dirichlet(np.ones(k) * 2), means + 0.2, cov, family)
    return X, params


def _both(monkeypatch, *args, **kwargs):
    out = []
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        out.append(estep_chunk(*args, **kwargs))
    return out


def _assert_same(a, b, rtol=1e-12):
    np.testing.assert_allclose(a.nk, b.nk, rtol=rtol)
    np.testing.assert_allclose(a.means, b.means, rtol=rtol, atol=rtol * np.abs(b.means).max())
    np.testing.assert_allclose(a.scatter, b.scatter, rtol=1e3 * rtol,
                               atol=1e3 * rtol * np.abs(b.scatter).max())
    assert a.loglik == pytest.approx(b.loglik, rel=rtol)
    assert a.map_loglik == pytest.approx(b.map_loglik, rel=1e3 * rtol, abs=1e-9)
    assert (a.weight, a.n_rows, a.kind) == (b.weight, b.n_rows, b.kind)
    assert a.worst_loglik == pytest.approx(b.worst_loglik, rel=1e3 * rtol)
    np.testing.assert_array_equal(a.worst_row, b.worst_row)


def test_exponential_matches_numpy():
    x = np.concatenate([-np.geomspace(1e-300, 745.0, 20_000), [0.0, -0.0, -np.inf, -708.5]])
    out = np.empty_like(x)
    _compiled_kernels._exp_nonpositive(x, out, np.empty(x.size, dtype=np.int64), x.size)
    ref = np.exp(x)
    normal = x >= -708.0
    np.testing.assert_allclose(out[normal], ref[normal], rtol=4 * np.finfo(float).eps, atol=0)
    assert np.all(out[~normal] == 0.0)  # subnormal results are taken as 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", ["plain", "weighted", "labelled"])
def test_same_statistics_as_the_numpy_kernel(family, dtype, rows, monkeypatch):
    X, params = _problem(family, seed=1)
    rng = np.random.default_rng(2)
    w = labels = None
    if rows != "plain":
        w = rng.uniform(0, 3, len(X))
        w[::7] = 0.0
    if rows == "labelled":
        labels = rng.integers(-1, params.n_components, len(X))
        labels[labels < 2] = -1
    a, b = _both(monkeypatch, X.astype(dtype), w, params, KIND[family], labels)
    # The compiled kernel works in float64 from float32 rows; NumPy's in float32.
    _assert_same(a, b, rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("layout", ["fortran", "strided", "read-only"])
def test_any_memory_layout(layout, monkeypatch):
    X, params = _problem("full", seed=3)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    plain = estep_chunk(X, None, params, "full")
    Y = {"fortran": np.asfortranarray(X), "strided": np.repeat(X, 2, axis=0)[::2]}.get(
        layout, X.copy())
    if layout == "read-only":
        Y.flags.writeable = False
    other = estep_chunk(Y, None, params, "full")
    np.testing.assert_array_equal(other.scatter, plain.scatter)
    assert other.loglik == plain.loglik


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the row's squares overflow
def test_row_beyond_the_models_range_is_handed_back(monkeypatch):
    """A row whose every log-density overflows: the NumPy kernel's nearest component."""
    X, params = _problem("diag", seed=4)
    X[17] = 1e200
    a, b = _both(monkeypatch, X, None, params, "diag")
    _assert_same(a, b)
    assert a.worst_loglik == -np.inf


def test_nearly_empty_component_scatter_is_dense(monkeypatch):
    """Pairs below SPARSE_TAU are skipped only when what they hold is below rounding; a
    component made of such pairs alone is summed again, densely."""
    X, params = _problem("full", seed=5, k=3)
    means = params.means.copy()
    means[2] = X.mean(axis=0) + 25.0  # away from every row: responsibilities < 1e-40
    params = params_from_covariances(params.weights, means,
                                     np.repeat(np.eye(3)[None] * 3.0, 3, axis=0), "full")
    calls = []
    kernel = _compiled_kernels.full_block
    monkeypatch.setattr(_compiled_kernels, "full_block",
                        lambda *a: calls.append(a[8]) or kernel(*a))
    a, b = _both(monkeypatch, X, None, params, "full")
    assert 0.0 in calls  # the dense pass ran
    assert 0 < b.nk[2] < 1e-20
    np.testing.assert_allclose(a.scatter[2], b.scatter[2], rtol=1e-9)
    _assert_same(a, b)


def test_cases_it_does_not_take_go_to_numpy():
    X, params = _problem("full", seed=6)
    assert compiled.applies(params, "full", 3, None, np.array([], dtype=int))
    assert not compiled.applies(params, "tied", 3, None, np.array([], dtype=int))
    assert not compiled.applies(params, "full", 3, -5.0, np.array([], dtype=int))
    assert not compiled.applies(params, "full", 3, None, np.array([1]))
    wide = params_from_covariances(np.ones(1), np.zeros((1, 64)), np.eye(64)[None], "full")
    assert not compiled.applies(wide, "full", 64, None, np.array([], dtype=int))


def test_choice_of_kernel(monkeypatch):
    X, params = _problem("diag", seed=7)
    ran = []
    kernel = _compiled_kernels.diag_block
    monkeypatch.setattr(_compiled_kernels, "diag_block", lambda *a: ran.append(1) or kernel(*a))
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    estep_chunk(X, None, params, "diag")  # n K D = 30,000 < MIN_WORK
    assert not ran
    monkeypatch.setattr(compiled, "MIN_WORK", 0)
    monkeypatch.setattr(_first_run, "will_compile", lambda dispatcher: True)
    started = []
    monkeypatch.setattr(_first_run, "compile_in_background", lambda: started.append(1) or True)
    estep_chunk(X, None, params, "diag")  # a cold cache: NumPy now, compiled in background
    assert started and not ran
    monkeypatch.setattr(_first_run, "compile_in_background", lambda: False)
    estep_chunk(X, None, params, "diag")  # background compiling off: compile in the call
    assert ran
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numpy")
    estep_chunk(X, None, params, "diag")
    assert len(ran) == 1
    monkeypatch.setenv("GAUSSMIX_KERNEL", "fast")
    with pytest.raises(ValueError, match="GAUSSMIX_KERNEL='fast'"):
        estep_chunk(X, None, params, "diag")
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    monkeypatch.setattr(compiled, "_kernels", False)  # as without Numba
    with pytest.raises(ValueError, match="pip install 'gaussmix\\[fast\\]'"):
        estep_chunk(X, None, params, "diag")


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_fit_is_the_numpy_kernels_fit(cov, monkeypatch):
    X, _ = _problem("full", n=6000, d=4, k=3, seed=8, spread=2.0)
    fits = []
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        fits.append(GaussianMixture(3, covariance_type=cov, random_state=0, tol=1e-8,
                                    max_iter=200).fit(X))
    a, b = fits
    assert a.n_iter_ == b.n_iter_ and a.converged_
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("kind", ["full", "tied", "diag"])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_statistics_match_the_definition(kind, weighted, monkeypatch):
    """The start's pass over hard labels (-1: no component) against the textbook
    statistics of their weighted one-hot responsibilities."""
    from reference_em import direct_stats

    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, params = _problem("full", n=5000, seed=9)
    rng = np.random.default_rng(10)
    labels = rng.integers(-1, 4, len(X))
    w = rng.uniform(0, 2, len(X)) if weighted else None
    got = compiled.label_stats(X, labels, w, kind, 5)  # component 4 stays empty
    resp = (labels[:, None] == np.arange(4)) * (1.0 if w is None else w[:, None])
    nk, means, scatter = direct_stats(X, resp, kind)
    assert got.nk[4] == 0
    np.testing.assert_allclose(got.nk[:4], nk, rtol=1e-13)
    np.testing.assert_allclose(got.means[:4], means, rtol=1e-13)
    np.testing.assert_allclose(got.scatter if kind == "tied" else got.scatter[:4],
                               scatter, rtol=1e-10, atol=1e-12 * np.abs(scatter).max())


def test_label_statistics_hand_back_a_far_component(monkeypatch):
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, _ = _problem("full", n=5000, seed=11)
    X[:10] += 1e9  # ten rows far from the rest, in their own component
    labels = np.where(np.arange(len(X)) < 10, 1, 0)
    assert compiled.label_stats(X, labels, None, "full", 2) is None


def test_labels_out_of_range_are_not_read_by_the_kernel(monkeypatch):
    """The compiled kernels index by label unchecked: such labels go to NumPy's path,
    which refuses them."""
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, params = _problem("diag", seed=12)
    labels = np.full(len(X), -1)
    labels[5] = params.n_components  # the noise component's label, without one
    with pytest.raises(IndexError):
        estep_chunk(X, None, params, "diag", labels)
    assert compiled.label_stats(X, labels, None, "diag", params.n_components) is None


@pytest.mark.parametrize("cov", ["full", "spherical"])
def test_variational_fit_is_the_numpy_kernels_fit(cov, monkeypatch):
    """BayesianGaussianMixture's E-step (expected log-weights in Params.log_weights)."""
    from gaussmix import BayesianGaussianMixture

    X, _ = _problem("full", n=6000, d=4, k=3, seed=13, spread=2.0)
    fits = []
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        fits.append(BayesianGaussianMixture(n_components=5, covariance_type=cov,
                                            random_state=0, max_iter=60).fit(X))
    a, b = fits
    assert a.n_iter_ == b.n_iter_
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["full", "tied", "diag"])
def test_nearest_centre_statistics_are_those_of_kmeans_predictions(dtype, kind,
                                                                  monkeypatch):
    """The start's pass beyond the k-means sample (each row to its nearest centre, its
    statistics in the same pass) against the textbook statistics of the nearest
    centres by direct differences, on data far from the origin (where KMeans.predict's
    float32 |x|^2 - 2 x.c + |c|^2 loses every digit)."""
    from reference_em import direct_stats
    from sklearn.cluster import KMeans

    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, _ = _problem("full", n=20000, d=3, k=5, seed=14)
    X = (X + 1e4).astype(dtype)
    w = np.random.default_rng(15).uniform(0, 2, len(X))
    km = KMeans(5, n_init=1, random_state=0).fit(X[:2000])
    got = compiled.label_stats(X, None, w, kind, 5, centres=km.cluster_centers_)
    centres = km.cluster_centers_.astype(np.float64)
    nearest = np.argmin(((X.astype(np.float64)[:, None] - centres) ** 2).sum(-1), axis=1)
    if dtype == np.float64:
        np.testing.assert_array_equal(nearest, km.predict(X))
    resp = (nearest[:, None] == np.arange(5)) * w[:, None]
    nk, means, scatter = direct_stats(X, resp, kind)
    np.testing.assert_allclose(got.nk, nk, rtol=1e-13)
    np.testing.assert_allclose(got.means, means, rtol=1e-13)
    np.testing.assert_allclose(got.scatter, scatter, rtol=1e-9,
                               atol=1e-12 * np.abs(scatter).max())


def test_nearest_centres_leave_rows_with_gaps_to_the_caller(monkeypatch):
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, _ = _problem("full", n=3000, d=3, k=5, seed=15)
    assert compiled.label_stats(X, None, None, "full", 5, centres=X[:5]) is not None
    X[[4, 9], 1] = np.nan
    assert compiled.label_stats(X, None, None, "full", 5, centres=X[10:15]) is None


@pytest.mark.parametrize("kind", ["full", "tied", "diag"])
def test_start_beyond_the_sample_is_the_numpy_start(kind, monkeypatch):
    """k-means on a sample (two runs, weighted rows), every row to its nearest centre
    (rows with gaps filled: in the first chunk only, the others go through the
    compiled pass), hard labels summed: the same starting statistics with the compiled
    k-means and pass as with scikit-learn's KMeans and NumPy's."""
    from sklearn.utils import check_random_state

    from gaussmix._engine import init as _init
    from gaussmix._engine.sources import ArraySource

    X, _ = _problem("full", n=4000, d=3, k=4, seed=16)
    X[:1500:50, 2] = np.nan
    w = np.random.default_rng(16).uniform(0.5, 2.0, len(X))
    monkeypatch.setattr(_init, "KMEANS_SUBSET", 3000)  # a 1,200-row sample, two runs
    monkeypatch.setattr(_init, "KMEANS_MIN_SAMPLE", 500)
    assert _init.kmeans_plan(len(X), 4) == (1200, 2)
    starts = []
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        source = ArraySource(X, w, 1500)
        starts.append(_init.initial_stats(source, 4, kind, "kmeans", check_random_state(0)))
    a, b = starts
    np.testing.assert_allclose(a.nk, b.nk, rtol=1e-13)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-12)
    np.testing.assert_allclose(a.scatter, b.scatter, rtol=1e-10)


def _scipy_log_densities(X, params):
    """log pi_k + log N(x | mu_k, Sigma_k) by SciPy, (n, K), in float64."""
    from scipy.stats import multivariate_normal

    k, d = params.means.shape
    covs = full_covariances(params.covariances, params.family, k, d)
    X = np.asarray(X, dtype=np.float64)
    return np.column_stack([np.log(params.weights[j]) + multivariate_normal(
        params.means[j], covs[j]).logpdf(X) for j in range(k)])


@pytest.mark.parametrize("family", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_row_results_match_scipy(family, dtype, monkeypatch):
    """predict / score_samples / predict_proba's compiled pass against SciPy's
    densities, far from the origin, in the input's dtype."""
    from scipy.special import logsumexp, softmax

    from gaussmix._engine.estep import (most_probable, responsibilities,
                                        row_log_likelihoods)

    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    X, params = _problem(family, n=6000, seed=21)
    X = X.astype(dtype)
    calls = []
    per_row = compiled.per_row
    monkeypatch.setattr(compiled, "per_row",
                        lambda *a, **k: calls.append(a[3]) or per_row(*a, **k))
    wlp = _scipy_log_densities(X, params)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    score, proba, labels = (row_log_likelihoods(X, params), responsibilities(X, params),
                            most_probable(X, params))
    assert calls == ["score", "proba", "labels"]  # the compiled pass ran
    assert score.dtype == proba.dtype == dtype
    np.testing.assert_allclose(score, logsumexp(wlp, axis=1), rtol=tol)
    np.testing.assert_allclose(proba, softmax(wlp, axis=1), atol=tol)
    clear = np.sort(wlp, axis=1)[:, -1] - np.sort(wlp, axis=1)[:, -2] > 1e-3
    np.testing.assert_array_equal(labels[clear], np.argmax(wlp, axis=1)[clear])


def test_per_row_results_hand_back_rows_beyond_range_and_gaps(monkeypatch):
    """A row whose every density underflows, or with a NaN: the NumPy kernel settles
    the chunk (nearest component, -inf score; gaps marginalised), as it would alone."""
    from gaussmix._engine.estep import (most_probable, responsibilities,
                                        row_log_likelihoods)

    X, params = _problem("full", n=3000, seed=22)
    X[7] = 1e200
    X[9, 1] = np.nan
    results = []
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        results.append((row_log_likelihoods(X, params), responsibilities(X, params),
                        most_probable(X, params)))
        assert compiled.per_row(X, params, params.means.mean(axis=0), "score") is None
    (s1, p1, l1), (s2, p2, l2) = results
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(l1, l2)
    assert s1[7] == -np.inf and np.isfinite(np.delete(s1, 7)).all()
    # Independently: the row with a gap scores its observed coordinates' marginal
    # density (SciPy), the other rows their full density.
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    covs = full_covariances(params.covariances, "full", *params.means.shape)
    seen = ~np.isnan(X[9])
    marginal = [np.log(params.weights[j]) + multivariate_normal(
        params.means[j][seen], covs[j][np.ix_(seen, seen)]).logpdf(X[9][seen])
        for j in range(params.n_components)]
    assert s1[9] == pytest.approx(logsumexp(marginal), rel=1e-10)
    rest = np.setdiff1d(np.arange(len(X)), [7, 9])
    np.testing.assert_allclose(
        s1[rest], logsumexp(_scipy_log_densities(X[rest], params), axis=1), rtol=1e-10)


@pytest.mark.parametrize("family", ["full", "tied", "diag"])
def test_a_chunk_with_gaps_goes_to_the_missing_data_estep(family, monkeypatch):
    """The compiled kernel runs before anyone looks for NaN: it hands such a chunk back,
    and the E-step's statistics are those of the NumPy path (complete rows through the
    kernel, rows with gaps through the missing-data E-step)."""
    X, params = _problem(family, n=4000, seed=23)
    X[[3, 500, 3999], [0, 2, 1]] = np.nan
    monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
    assert compiled.estep(X, None, params, params.means.mean(axis=0), family, None,
                          None) is None
    a, b = _both(monkeypatch, X, None, params, family)
    _assert_same(a, b)
    assert a.n_rows == 4000 and np.isfinite(a.loglik)


@pytest.mark.parametrize("case", ["wide", "noise"])
def test_numpy_kernel_with_the_compiled_log_sum_exp(case, monkeypatch):
    """Where the compiled E-step does not apply (K x D beyond MAX_WORK, a noise
    component), the NumPy kernel's column log-sum-exp runs compiled: the same
    statistics as NumPy's own, and as the textbook definition."""
    import dataclasses

    from reference_em import direct_stats

    from gaussmix._engine.estep import _Prepared, weighted_log_prob

    k, d = (40, 30) if case == "wide" else (4, 3)
    X, params = _problem("diag", n=3000, d=d, k=k, seed=24)
    if case == "noise":
        params = dataclasses.replace(params, weights=params.weights * 0.9,
                                     noise_log_density=-9.0, noise_proportion=0.1)
    used = []
    kernel = compiled.responsibilities_kernel
    monkeypatch.setattr(compiled, "responsibilities_kernel",
                        lambda work: used.append(kernel(work)) or used[-1])
    a, b = _both(monkeypatch, X, None, params, "diag")
    assert used[0] is not None and used[-1] is None  # numba, then numpy
    _assert_same(a, b)
    wlp = weighted_log_prob(X, params)  # (n, K), then the noise's weighted density
    if case == "noise":
        wlp = np.column_stack([wlp, np.full(len(X), np.log(0.1) - 9.0)])
        assert a.noise_nk > 0.01 * len(X)
    resp = np.exp(wlp - np.logaddexp.reduce(wlp, axis=1, keepdims=True))[:, :k]
    nk, means, scatter = direct_stats(X, resp, "diag")
    np.testing.assert_allclose(a.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(a.means, means, rtol=1e-10)


# ---------------------------------------------------------------- sparse scatter staging
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_staging_compiled_is_numpys(dtype, monkeypatch):
    """The NumPy kernel's sparse whitened scatter with its staging compiled: the same
    statistics to the bit as with NumPy's staging, and the definition's."""
    from reference_em import direct_stats
    from test_kernels import _reference_resp, _separated

    from gaussmix._engine import estep as _estep, stats as _stats

    monkeypatch.setattr(_stats, "SPARSE_BREAK_EVEN", 0.0)  # sparse at D = 6 too
    # NumPy's log-sum-exp in both runs: only the staging differs
    monkeypatch.setattr(compiled, "responsibilities_kernel", lambda work: None)
    X, params, dense = _separated(seed=12, shift=1e3)
    w = np.random.default_rng(13).uniform(0, 2, len(X))
    w[::5] = 0.0
    X = X.astype(dtype)
    out = {}
    for name in ("numba", "numpy"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", name)
        # the NumPy kernel itself (not the compiled E-step), staging by ``name``
        out[name] = _estep._estep_chunk(X, w, params, "full", compiled_tried=True)
    got, ref = out["numba"], out["numpy"]
    np.testing.assert_array_equal(got.scatter, ref.scatter)
    np.testing.assert_array_equal(got.nk, ref.nk)
    if dtype == np.float64:
        resp = _reference_resp(X, params, dense) * w[:, None]
        _, _, scat = direct_stats(X, resp, "full")
        np.testing.assert_allclose(got.scatter, scat, rtol=1e-8,
                                   atol=1e-9 * np.abs(scat).max())
