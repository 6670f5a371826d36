"""The compiled mclust EM (gaussmix._mclust.fast_em) against the NumPy reference mclust_em.

Every model, G = 2..9, from mclust's hierarchical starts on iris and faithful: the same
failed (NA) cells, the same iteration counts, the same log-likelihoods and BIC cells (to
rounding), the same parameters. The reference, mclust_em, is itself checked against R's
mclust in tests/test_mclust_models.py.
"""


import numpy as np
import pytest

from gaussmix._mclust import fast_em as _mclust_fast
from gaussmix._mclust.hc import starting_partitions
from gaussmix._mclust.em import mclust_em
from gaussmix._models.mclust import MCLUST_MODELS, MclustFitError, mclust_bic

from mclust_reference import reference_data

pytestmark = pytest.mark.skipif(not _mclust_fast.AVAILABLE, reason="numba not installed")

_data = reference_data


def _fit(fn, X, model, z):
    try:
        return fn(X, model, z)
    except MclustFitError:
        return None


@pytest.mark.parametrize("name", ["iris", "faithful"])
def test_compiled_em_equals_reference_on_every_cell(name):
    X = _data(name)
    n, d = X.shape
    parts = starting_partitions(X, range(2, 10))
    n_failed = 0
    for model in MCLUST_MODELS:
        for G in range(2, 10):
            z = np.eye(G)[parts[G]]
            ref = _fit(mclust_em, X, model, z)
            got = _fit(_mclust_fast.fast_mclust_em, X, model, z)
            assert (ref is None) == (got is None), (model, G)
            if ref is None:
                n_failed += 1
                continue
            assert got.n_iter == ref.n_iter, (model, G)
            # EVE / VVE: the compiled polar factors (Jacobi; a rank d - 1 F's null
            # column completed, not LAPACK's) differ from SciPy's dgesvd by rounding,
            # which their MM loops inside long EM runs carry further on faithful (d = 2,
            # up to 119 iterations): log-likelihoods 4e-12 apart, weights, covariances
            # and responsibilities 5e-9 (iris: 1e-15, 8e-14, 8e-12, 2e-13).
            loose = 10.0 if model in ("EVE", "VVE") else 1.0
            assert got.loglik == pytest.approx(ref.loglik, rel=loose * 1e-12, abs=0), \
                (model, G)
            assert mclust_bic(got.loglik, model, G, n, d) == pytest.approx(
                mclust_bic(ref.loglik, model, G, n, d), abs=loose * 1e-9)
            np.testing.assert_allclose(got.params.weights, ref.params.weights,
                                       rtol=loose * 1e-9, atol=1e-12)
            np.testing.assert_allclose(got.params.means, ref.params.means,
                                       rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(got.params.covariances, ref.params.covariances,
                                       rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(got.z, ref.z, rtol=0, atol=loose * 1e-9)
            # the compiled precision factors and ICL term against NumPy's
            np.testing.assert_allclose(got.params.precisions_cholesky,
                                       ref.params.precisions_cholesky, rtol=loose * 1e-8,
                                       atol=1e-10 * np.abs(ref.params.precisions_cholesky).max())
            np.testing.assert_allclose(got.params.log_det_cholesky,
                                       ref.params.log_det_cholesky, rtol=loose * 1e-8,
                                       atol=loose * 1e-9)
            assert got.map_loglik == pytest.approx(ref.map_loglik, rel=1e-8, abs=loose * 1e-9)
            assert got.params.family == ref.params.family
            if ref.params.state is not None:  # warm start of the summary's M-step
                for a, b in zip(got.params.state, ref.params.state):
                    np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-8,
                                               atol=1e-10)
    # mclust's NA cells on these grids: iris VEE 5, 7, 9 and EVV 5, 6
    assert n_failed == (5 if name == "iris" else 0)


def test_select_is_the_same_with_and_without_the_compiled_path(monkeypatch):
    from gaussmix._mclust.select import select

    X = _data("iris")
    fast = select(X, G=range(1, 6), backend="numba")
    slow = select(X, G=range(1, 6), backend="numpy")
    np.testing.assert_array_equal(fast.n_iter.to_numpy(), slow.n_iter.to_numpy())
    a, b = fast.bic.to_numpy(), slow.bic.to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.icl.to_numpy()[~np.isnan(a)],
                               slow.icl.to_numpy()[~np.isnan(b)], rtol=0, atol=1e-9)
    assert (fast.best_model, fast.best_G) == (slow.best_model, slow.best_G)
    np.testing.assert_array_equal(fast.classification, slow.classification)
    # the summary's extra M-step: from the compiled z's statistics, from an E-step's
    np.testing.assert_allclose(fast.params.covariances, slow.params.covariances,
                               rtol=1e-9)
    np.testing.assert_allclose(fast.params.weights, slow.params.weights, rtol=1e-9)


def _one_component_cases():
    from gaussmix._models.prior import prior_control

    X = _data("iris")
    rng = np.random.default_rng(5)
    constant = np.c_[X, np.full(len(X), 0.1)]  # mclust's mean misses 0.1 by ulps
    return [("iris", X, None, None), ("weighted", X, rng.uniform(0.2, 3.0, len(X)), None),
            ("constant column", constant, None, None), ("far", X + 1e6, None, None),
            ("prior", X, None, prior_control())]


@pytest.mark.parametrize("case", range(5))
def test_one_component_closed_form_equals_the_loops(case):
    """G = 1 on rows in memory (the compiled backend's): the loop's M-step and the
    log-likelihood from the statistics, against the loop's M-step and E-step over the
    rows, for every model: weights, a constant column, data far from the origin, a
    prior; the same failures."""
    from gaussmix._engine.sources import ArraySource
    from gaussmix._errors import FitError
    from gaussmix._mclust.em import fit_mclust
    from gaussmix._models.prior import resolve_prior

    label, X, w, control = _one_component_cases()[case]
    source = ArraySource(X, w, 64)  # several chunks for the loop's statistics
    start = np.zeros(len(X), dtype=np.intp)
    for model in MCLUST_MODELS:
        prior = None if control is None else resolve_prior(control, X, 1, model)
        fits = []
        for backend in ("numpy", "numba"):
            try:
                fits.append(fit_mclust(source, model, 1, start, prior=prior,
                                       backend=backend))
            except FitError as exc:
                fits.append(type(exc))
        ref, got = fits
        if not hasattr(ref, "loglik"):
            assert got is ref, (label, model)
            continue
        # far from the origin the loop's E-step loses digits the closed form keeps
        rel = 1e-10 if label == "far" else 1e-13
        assert got.loglik == pytest.approx(ref.loglik, rel=rel), (label, model)
        assert (got.n_iter, got.converged, got.map_loglik) == (ref.n_iter, ref.converged,
                                                                ref.map_loglik)
        np.testing.assert_allclose(got.params.covariances, ref.params.covariances,
                                   rtol=1e-12)
        np.testing.assert_allclose(got.params.means, ref.params.means, rtol=1e-14)
        np.testing.assert_array_equal(got.z, np.ones((len(X), 1)))


def test_failures_are_reported_as_mclust_fit_errors():
    # Two identical points in a component of their own: a singular covariance for the
    # unconstrained model, as in mclust (NA); the pooled EEE model still fits.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(40, 2)), [[5.0, 5.0], [5.0, 5.0]]])
    labels = np.r_[np.zeros(40, dtype=int), 1, 1]
    z = np.eye(2)[labels]
    with pytest.raises(MclustFitError):
        mclust_em(X, "VVV", z)
    with pytest.raises(MclustFitError):
        _mclust_fast.fast_mclust_em(X, "VVV", z)
    ref = mclust_em(X, "EEE", z)
    got = _mclust_fast.fast_mclust_em(X, "EEE", z)
    assert got.n_iter == ref.n_iter
    assert got.loglik == pytest.approx(ref.loglik, rel=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6, 7])
def test_polar_factor_equals_lapacks(d):
    """EVE / VVE's polar factors: one-sided Jacobi for small d, LAPACK's SVD above and
    for (nearly) singular matrices, the identity for zero; always orthogonal, and U V^T
    of NumPy's SVD to rounding."""
    rng = np.random.default_rng(d)
    work, v, out = np.empty((d, d)), np.empty((d, d)), np.empty((d, d))
    cases = [rng.normal(size=(d, d)) * 10.0 ** rng.integers(-3, 4) for _ in range(20)]
    cases.append(np.diag(np.arange(1.0, d + 1)))  # already orthogonal columns
    if d > 1:
        rank_deficient = rng.normal(size=(d, d))
        rank_deficient[:, -1] = rank_deficient[:, 0]  # singular: LAPACK's answer
        cases.append(rank_deficient)
    for f in cases:
        _mclust_fast._polar_into(f, out, work, v)
        u, _, vt = np.linalg.svd(f)
        if np.linalg.matrix_rank(f) == d:
            np.testing.assert_allclose(out, u @ vt, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out @ out.T, np.eye(d), rtol=0, atol=1e-12)
    _mclust_fast._polar_into(np.zeros((d, d)), out, work, v)
    assert np.array_equal(out, np.eye(d))


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_jacobi_rotations_where_their_squares_overflow(d):
    """Columns near 1e100 (squared norms near 1e200, their differences' squares past
    the largest double): the rotations fall back to Rutishauser's form, and the polar
    factor and eigenvalues are those of the matrix scaled back (the sweeps' own, not
    LAPACK's, which the callers fall back to where the sweeps fail)."""
    rng = np.random.default_rng(20 + d)
    work, v, out, plain = (np.empty((d, d)) for _ in range(4))
    for _ in range(5):
        f = rng.normal(size=(d, d))
        _mclust_fast._jacobi_rotate(f * 1e100, out, work, v, False)
        np.testing.assert_allclose(np.sort(np.linalg.norm(work, axis=1))[::-1] / 1e100,
                                   np.linalg.svd(f, compute_uv=False), rtol=1e-12)
        np.testing.assert_allclose(v @ v.T, np.eye(d), atol=1e-12)
        _mclust_fast._polar_into(f, plain, work, v)
        _mclust_fast._polar_into(f * 1e100, out, work, v)
        np.testing.assert_allclose(out, plain, rtol=0, atol=1e-12)
        w = f @ f.T
        vals, _ = _mclust_fast._eigh_desc(w * 1e100)
        ref = np.linalg.eigvalsh(w)[::-1]
        np.testing.assert_allclose(vals / 1e100, ref, rtol=1e-12, atol=1e-13 * ref[0])


@pytest.mark.parametrize("d", [2, 3, 4, 6])
@pytest.mark.parametrize("warm", [False, True])
def test_polar_factor_of_rank_deficient_f(d, warm):
    """F of rank d - 1 (MM-2's F with a zero column, or a repeated column): a polar
    factor Q (orthogonal, Q^T F symmetric positive semi-definite) that is LAPACK's
    U V^T on F's range; from a cold start and from another F's rotations."""
    rng = np.random.default_rng(10 + d)
    work, v, out = np.empty((d, d)), np.empty((d, d)), np.empty((d, d))
    for case in range(10):
        f = rng.normal(size=(d, d)) * 10.0 ** rng.integers(-2, 3)
        if case % 2:
            f[:, rng.integers(d)] = 0.0
        else:
            f[:, -1] = f[:, 0] * rng.normal()
        if warm:  # v: the rotations of a nearby full-rank F
            _mclust_fast._polar_into(f + 0.1 * rng.normal(size=(d, d)), out, work, v)
        _mclust_fast._polar_into(f, out, work, v, warm)
        scale = np.abs(f).max()
        np.testing.assert_allclose(out @ out.T, np.eye(d), rtol=0, atol=1e-12)
        h = out.T @ f
        np.testing.assert_allclose(h, h.T, rtol=0, atol=1e-11 * scale)
        assert np.linalg.eigvalsh((h + h.T) / 2).min() >= -1e-11 * scale
        u, _, vt = np.linalg.svd(f)
        rng_basis = vt[: d - 1].T  # F's row space: Q v = u there
        np.testing.assert_allclose(out @ rng_basis, u[:, : d - 1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("d", [1, 3, 6, 9])
@pytest.mark.parametrize("family", ["full", "diag"])
def test_estep_along_rows_equals_the_definition(d, family):
    """The compiled E-steps (rows feature-major, the responsibilities component-major,
    sums reassociated) against SciPy's densities and the statistics' definitions,
    about the current means; with one component's densities far below the others'
    (their exps taken as 0: below exp(-708))."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(d)
    n, K = 97, 4
    X = rng.normal(size=(n, d)) * 3.0 + 100.0
    weights = rng.dirichlet(np.ones(K))
    means = X[rng.choice(n, K, replace=False)]
    means[-1] += 400.0  # every row's density under it is below 1e-308 of its best
    a = rng.normal(size=(K, d, d))
    cov = a @ a.transpose(0, 2, 1) + np.eye(d)
    var = np.einsum("kii->ki", cov).copy()
    if family == "diag":
        cov = np.stack([np.diag(v) for v in var])
    zt, nk, sums, S = np.empty((K, n)), np.empty(K), np.empty((K, d)), np.empty((K, d, d))
    Xt = np.ascontiguousarray(X.T)
    if family == "full":
        loglik, ok = _mclust_fast._estep_along_rows(Xt, weights, means, cov, zt, nk, sums, S)
    else:
        loglik, ok = _mclust_fast._estep(Xt, weights, means, var, zt, nk, sums, S)
    assert ok
    logp = np.column_stack([np.log(w) + multivariate_normal(m, c).logpdf(X)
                            for w, m, c in zip(weights, means, cov)])
    assert loglik == pytest.approx(logsumexp(logp, axis=1).sum(), rel=1e-12)
    resp = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
    assert resp[:, -1].max() < 1e-308 and np.all(zt[-1] == 0.0)
    np.testing.assert_allclose(zt.T, resp, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-12)
    for k in range(K):
        dev = X - means[k]
        np.testing.assert_allclose(sums[k], resp[:, k] @ dev, rtol=1e-9, atol=1e-9)
        want = (dev * resp[:, k, None]).T @ dev
        if family == "diag":  # the diagonals: all the diagonal models' M-steps read
            np.testing.assert_allclose(np.diag(S[k]), np.diag(want), rtol=1e-10, atol=1e-10)
        else:
            np.testing.assert_allclose(np.tril(S[k]), np.tril(want), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6, 7])
def test_eigh_equals_lapacks(d):
    """EEV/VEV's eigendecomposition of a scatter (Jacobi up to d = 6) against LAPACK's:
    the eigenvalues descending, the eigenvectors the same up to sign; a near-singular
    scatter or two close eigenvalues (whose vectors are a basis choice) are LAPACK's
    own result."""
    rng = np.random.default_rng(d)
    for trial in range(20):
        a = rng.normal(size=(d, d)) * 10.0 ** rng.integers(-3, 4)
        w = a @ a.T
        if trial == 1 and d > 1:  # a repeated eigenvalue: LAPACK's basis
            q = np.linalg.qr(rng.normal(size=(d, d)))[0]
            w = q @ np.diag(np.r_[2.0, 2.0, np.arange(3.0, d + 1)]) @ q.T
        if trial == 2 and d > 1:  # rank d - 1
            w = a[:, : d - 1] @ a[:, : d - 1].T
        vals, vecs = _mclust_fast._eigh_desc(w)
        ref_vals, ref_vecs = np.linalg.eigh(w)
        ref_vals, ref_vecs = ref_vals[::-1], ref_vecs[:, ::-1]
        scale = ref_vals[0]
        np.testing.assert_allclose(vals, ref_vals, rtol=1e-12, atol=1e-13 * scale)
        np.testing.assert_allclose(vecs @ vecs.T, np.eye(d), atol=1e-12)
        np.testing.assert_allclose(vecs * vals @ vecs.T, w, atol=1e-12 * scale)
        gaps = -np.diff(ref_vals)
        if ref_vals[-1] > 1e-6 * scale and np.all(gaps > 1e-3 * scale):
            signs = np.sign(np.sum(vecs * ref_vecs, axis=0))
            np.testing.assert_allclose(vecs * signs, ref_vecs, atol=1e-10)
        if trial in (1, 2) and d > 1:  # LAPACK's own
            np.testing.assert_array_equal(vecs, ref_vecs)
        if d <= 6:  # the sweeps themselves: (w V)^T's row norms, V^T's rows
            work, v, scratch = (np.empty((d, d)) for _ in range(3))
            _mclust_fast._jacobi_rotate(w, scratch, work, v, False)
            np.testing.assert_allclose(np.sort(np.linalg.norm(work, axis=1))[::-1],
                                       ref_vals, rtol=1e-10, atol=1e-13 * scale)
            np.testing.assert_allclose(v @ v.T, np.eye(d), atol=1e-12)


def test_precision_factors_equal_numpys():
    """The compiled precision factors (the transposed inverse Cholesky factor) against
    NumPy's batched path; a covariance that is not positive definite is refused."""
    from gaussmix._engine.params import _precision_cholesky

    rng = np.random.default_rng(3)
    for d in (1, 2, 4, 7):
        a = rng.normal(size=(3, d, d)) * 10.0 ** rng.integers(-3, 4, size=(3, 1, 1))
        covs = a @ a.transpose(0, 2, 1) + 1e-3 * np.eye(d)
        got = np.empty_like(covs)
        assert _mclust_fast._precision_factors(covs, got)
        np.testing.assert_allclose(got, _precision_cholesky(covs, "full"), rtol=1e-10,
                                   atol=1e-13 * np.abs(got).max())
        covs[1] = -covs[1]
        assert not _mclust_fast._precision_factors(covs, got)
