"""The blocked, threaded E-step kernels against slow references written the obvious way.

Small block sizes are forced so every test crosses block, sub-block and thread
boundaries (the fast paths only differ from the obvious code in how they cut the rows).
"""

import numpy as np
import pytest
from scipy import stats as sps

from gaussmix import GaussianMixture
from gaussmix._engine import compiled as _compiled, estep as _estep, stats as _stats
from gaussmix._engine.estep import estep_chunk, log_gaussian_prob, log_resp_and_norm
from gaussmix._engine.params import params_from_covariances
from gaussmix._engine.stats import stats_from_resp

from reference_em import direct_stats

FAMILIES = ["full", "tied", "diag", "spherical"]
KIND = {"full": "full", "tied": "tied", "diag": "diag", "spherical": "diag"}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """512-row blocks, 16-column sub-blocks, full residuals in bands of 2, two threads."""
    monkeypatch.setattr(_stats, "BLOCK_ELEMENTS", 1 << 8)
    monkeypatch.setattr(_estep, "FULL_RESIDUAL_ELEMENTS", 1 << 6)
    monkeypatch.setattr(_estep, "FULL_BAND_WIDTH", 2)
    monkeypatch.setenv("GAUSSMIX_NUM_THREADS", "2")
    # The sparse whitened scatter at every D (by default only where it pays, D > 18).
    monkeypatch.setattr(_stats, "SPARSE_BREAK_EVEN", 0.0)
    # The compiled kernel: 300-row blocks (its sub-blocks of 256 rows cut inside them).
    monkeypatch.setattr(_compiled, "BLOCK_ROWS", 300)
    yield


@pytest.fixture(autouse=True)
def kernel(request, monkeypatch):
    """The E-step kernel under test: NumPy's unless a test asks for both (BOTH)."""
    name = getattr(request, "param", "numpy")
    if name == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("GAUSSMIX_KERNEL", name)
    return name


# The tests of what the E-step computes run on both kernels; those of the NumPy
# kernel's inner workings (bands, the sparse scatter) on NumPy's.
BOTH = pytest.mark.parametrize("kernel", ["numpy", "numba"], indirect=True)


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


@BOTH
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_estep_stats_match_definition(family, weighted, kernel):
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
    nk, means, scat = direct_stats(X, resp * ww[:, None], kind)
    np.testing.assert_allclose(s.nk, nk, rtol=1e-11)
    np.testing.assert_allclose(s.means, means, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-9, atol=1e-9 * np.abs(scat).max())
    assert s.loglik == pytest.approx(float(norm @ ww), rel=1e-12)
    assert s.weight == pytest.approx(ww.sum(), rel=1e-14)
    assert s.n_rows == np.count_nonzero(ww)
    worst = np.argmin(np.where(ww > 0, norm, np.inf))
    assert s.worst_loglik == pytest.approx(norm[worst], rel=1e-12)
    np.testing.assert_array_equal(s.worst_row, X[worst])


@BOTH
@pytest.mark.parametrize("family", FAMILIES)
def test_threads_and_blocks_do_not_change_results(family, monkeypatch, kernel):
    X, params, _ = _problem(family, n=3000, seed=3)
    kind = KIND[family]
    many = estep_chunk(X, None, params, kind)
    monkeypatch.setenv("GAUSSMIX_NUM_THREADS", "1")
    monkeypatch.setattr(_stats, "BLOCK_ELEMENTS", 1 << 20)
    monkeypatch.setattr(_estep, "FULL_RESIDUAL_ELEMENTS", 1 << 20)
    monkeypatch.setattr(_estep, "FULL_BAND_WIDTH", 1 << 20)
    monkeypatch.setattr(_compiled, "BLOCK_ROWS", 1 << 20)
    one = estep_chunk(X, None, params, kind)
    np.testing.assert_allclose(many.nk, one.nk, rtol=1e-12)
    np.testing.assert_allclose(many.scatter, one.scatter, rtol=1e-10, atol=1e-10)
    assert many.loglik == pytest.approx(one.loglik, rel=1e-13)


@BOTH
@pytest.mark.parametrize("family", FAMILIES)
def test_far_from_origin_float64(family, kernel):
    """Data and parameters shifted by 1e8 give the statistics of the unshifted ones."""
    X, params, _ = _problem(family, seed=4)
    Xs, params_s, _ = _problem(family, seed=4, shift=1e8)
    kind = KIND[family]
    a, b = estep_chunk(X, None, params, kind), estep_chunk(Xs, None, params_s, kind)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-7)
    np.testing.assert_allclose(b.nk, a.nk, rtol=1e-6)
    np.testing.assert_allclose(b.means - 1e8, a.means, atol=1e-6)
    np.testing.assert_allclose(b.scatter, a.scatter, rtol=1e-6, atol=1e-6 * a.scatter.max())


@BOTH
@pytest.mark.parametrize("family", FAMILIES)
def test_float32_far_from_origin_agrees_with_float64(family, kernel):
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


@BOTH
def test_full_scatter_with_ill_conditioned_covariances(kernel):
    """The whitened scatter maps back exactly enough when covariances are near-singular."""
    X, params, dense = _problem("full", seed=6, cond=1e6)
    wlp = _reference_log_prob(X, params, dense) + np.log(params.weights)
    resp = np.exp(wlp - np.logaddexp.reduce(wlp, axis=1)[:, None])
    s = estep_chunk(X, None, params, "full")
    nk, means, scat = direct_stats(X, resp, "full")
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
    nk, means, scat = direct_stats(X, resp, kind)
    np.testing.assert_allclose(s.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(s.means, means, rtol=1e-12)
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-8, atol=1e-8 * np.abs(scat).max())


def test_integer_rows_are_accepted():
    X, params, dense = _problem("full", n=600, seed=9)
    Xi = np.round(X).astype(np.int64)
    np.testing.assert_allclose(log_gaussian_prob(Xi, params),
                               _reference_log_prob(Xi.astype(float), params, dense),
                               rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------- sparse whitened scatter
def _separated(n=2400, d=6, k=4, seed=11, sep=30.0, shift=0.0, bridge=60):
    """Well-separated clusters (most responsibilities underflow far below 2**-100),
    plus ``bridge`` rows half-way between two clusters (two components share them)
    and five at the centre, where every component keeps a share.

    The means sit on a regular simplex in the whitened coordinates of a common
    covariance; each component's covariance is that one scaled by 1.0-1.1.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    common = (q * rng.uniform(0.5, 2.0, d)) @ q.T
    chol = np.linalg.cholesky(common)
    means = sep * np.eye(k, d) @ chol.T
    covs = np.stack([common * c for c in np.linspace(1.0, 1.1, k)])
    labels = rng.integers(k, size=n)
    X = means[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[labels],
                                  rng.normal(size=(n, d)))
    pairs = np.stack([np.arange(bridge) % k, (np.arange(bridge) + 1) % k], axis=1)
    X[:bridge] = 0.5 * (means[pairs[:, 0]] + means[pairs[:, 1]])
    X[bridge : bridge + 5] = means.mean(axis=0)
    X = X[rng.permutation(n)]
    params = params_from_covariances(np.full(k, 1.0 / k), means + shift, covs * 1.5, "full")
    return X + shift, params, covs * 1.5


def _reference_resp(X, params, dense):
    wlp = _reference_log_prob(X, params, dense) + np.log(params.weights)
    return np.exp(wlp - np.logaddexp.reduce(wlp, axis=1)[:, None])


@pytest.mark.parametrize("max_fraction", [0.5, 1.0])
def test_sparse_scatter_matches_dense_and_definition(max_fraction, monkeypatch):
    """Skipping negligible responsibilities gives the dense scatter, with rows that
    keep one, a few and all of their components."""
    monkeypatch.setattr(_stats, "SPARSE_MAX_FRACTION", max_fraction)
    X, params, dense = _separated()
    resp = _reference_resp(X, params, dense)
    kept = (resp >= _stats.SPARSE_TAU).sum(axis=1)
    assert (kept == 1).mean() > 0.8 and (kept > 1).any() and (kept == resp.shape[1]).any()
    sparse = estep_chunk(X, None, params, "full")
    full = _estep._estep_chunk(X, None, params, "full", sparse=False)
    nk, means, scat = direct_stats(X, resp, "full")
    np.testing.assert_allclose(sparse.nk, nk, rtol=1e-11)
    np.testing.assert_allclose(sparse.scatter, scat, rtol=1e-9, atol=1e-10 * np.abs(scat).max())
    np.testing.assert_allclose(sparse.scatter, full.scatter, rtol=1e-11,
                               atol=1e-12 * np.abs(scat).max())
    assert sparse.loglik == pytest.approx(full.loglik, rel=1e-13)


def test_sparse_scatter_weighted_and_float32():
    X, params, dense = _separated(seed=12, shift=1e3)
    w = np.random.default_rng(13).uniform(0, 2, len(X))
    w[::5] = 0.0
    resp = _reference_resp(X, params, dense) * w[:, None]
    s = estep_chunk(X, w, params, "full")
    nk, _, scat = direct_stats(X, resp, "full")
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-8, atol=1e-9 * np.abs(scat).max())
    s32 = estep_chunk(X.astype(np.float32), w, params, "full")
    s64 = estep_chunk(X.astype(np.float32).astype(np.float64), w, params, "full")
    np.testing.assert_allclose(s32.scatter, s64.scatter, rtol=1e-3, atol=1e-3 * scat.max())
    np.testing.assert_allclose(s32.nk, s64.nk, rtol=1e-4)


@pytest.mark.parametrize("staging", ["numpy", "compiled"])
def test_sparse_tally_is_the_skipped_trace(staging, monkeypatch):
    """Moments.add_whitened's tally against the definition, on hand-made residuals,
    with NumPy's staging of the kept pairs and the compiled one."""
    rng = np.random.default_rng(14)
    k, d, m = 3, 5, 40
    resid = rng.normal(size=(k, d, m))
    half_maha = np.einsum("kdj,kdj->kj", resid, resid)
    resp = rng.uniform(0.1, 1.0, (k, m))
    resp[:, ::2] = 1e-40  # below SPARSE_TAU: skipped
    resp[1, 5] = 0.0
    feat = np.vstack([np.ones(m), rng.normal(size=(d, m))])
    acc = _stats.Moments(k, d, "full")
    if staging == "compiled":
        pytest.importorskip("numba")
        monkeypatch.setenv("GAUSSMIX_KERNEL", "numba")
        acc.sparse_kernels = _compiled.sparse_kernels(np.inf)
        assert acc.sparse_kernels is not None
    bands = [(0, 2, resid[:, :2].copy()), (2, d, resid[:, 2:].copy())]
    acc.add_whitened(feat, resp, bands, half_maha)
    skip = resp < _stats.SPARSE_TAU
    np.testing.assert_allclose(acc.dropped_trace, (resp * half_maha * skip).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(acc.kept_trace, (resp * half_maha * ~skip).sum(axis=1), rtol=1e-13)
    assert acc.certified()
    acc._flush()
    keep = np.where(skip, 0.0, resp)
    want = np.einsum("kdj,kj,kej->kde", resid, keep, resid)
    np.testing.assert_allclose(acc.second, want, rtol=1e-12)
    np.testing.assert_allclose(acc.nk, resp.sum(axis=1), rtol=1e-13)


@pytest.mark.parametrize("d, sparse_runs", [(6, False), (24, True)])
def test_sparse_scatter_only_where_it_pays(d, sparse_runs, monkeypatch):
    """With the measured break-even, D = 6 takes the dense scatter and D = 24 the sparse
    one; both give the other path's statistics."""
    monkeypatch.setattr(_stats, "SPARSE_BREAK_EVEN", 18.0)
    X, params, dense = _separated(d=d, k=8, seed=16)
    kept = []
    inner = _stats.Moments._add_sparse
    monkeypatch.setattr(_stats.Moments, "_add_sparse",
                        lambda *a: kept.append(inner(*a)) or kept[-1])
    chosen = estep_chunk(X, None, params, "full")
    assert any(kept) == sparse_runs
    monkeypatch.setattr(_stats, "SPARSE_BREAK_EVEN", 0.0 if not sparse_runs else 1e9)
    other = estep_chunk(X, None, params, "full")
    np.testing.assert_allclose(chosen.nk, other.nk, rtol=1e-12)
    np.testing.assert_allclose(chosen.scatter, other.scatter, rtol=1e-10,
                               atol=1e-12 * np.abs(other.scatter).max())


def test_nearly_empty_component_falls_back_to_dense(monkeypatch):
    """A component whose rows all sit below the threshold fails the certificate, and the
    chunk is redone densely: its scatter is still the definition's."""
    X, params, dense = _separated(seed=15, bridge=0)
    # component 0: a copy of component 1 with weight 1e-40, so responsibilities ~1e-40
    means, covs = params.means.copy(), dense.copy()
    means[0], covs[0] = means[1], covs[1]
    weights = np.array([1e-40, 1.0, 1.0, 1.0]) / 3.0
    params = params_from_covariances(weights, means, covs, "full")
    dense = covs
    resp = _reference_resp(X, params, dense)
    assert resp[:, 0].max() < _stats.SPARSE_TAU and resp[:, 0].max() > 0
    calls = []
    inner = _estep._estep_chunk

    def spy(*args, **kwargs):
        calls.append(kwargs.get("sparse", True))
        return inner(*args, **kwargs)

    monkeypatch.setattr(_estep, "_estep_chunk", spy)
    s = estep_chunk(X, None, params, "full")
    assert calls == [True, False]
    nk, means_ref, scat = direct_stats(X, resp, "full")
    np.testing.assert_allclose(s.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(s.scatter[0], scat[0], rtol=1e-8, atol=1e-8 * np.abs(scat[0]).max())


@pytest.mark.parametrize("width", [1, 2, 3, 100])
def test_band_cuts_do_not_change_results(width, monkeypatch):
    """The full kernel's product cut into row bands (the factors' zeros skipped)."""
    monkeypatch.setattr(_estep, "FULL_BAND_WIDTH", width)
    X, params, dense = _problem("full", d=7, seed=16)
    resp = _reference_resp(X, params, dense)
    np.testing.assert_allclose(log_gaussian_prob(X, params), _reference_log_prob(X, params, dense),
                               rtol=1e-11, atol=1e-11)
    s = _estep._estep_chunk(X, None, params, "full", sparse=False)
    nk, means, scat = direct_stats(X, resp, "full")
    np.testing.assert_allclose(s.scatter, scat, rtol=1e-9, atol=1e-9 * np.abs(scat).max())
    np.testing.assert_allclose(s.means, means, rtol=1e-10, atol=1e-10)


@BOTH
@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
def test_threaded_pass_is_reproducible_bit_for_bit(kind, kernel):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 3)) + rng.integers(0, 3, size=(3000, 1)) * 4
    gm = GaussianMixture(3, covariance_type=kind, random_state=0, max_iter=3).fit(X)
    from gaussmix._estimator import _as_params

    params = _as_params(gm)
    runs = [estep_chunk(X, None, params, kind) for _ in range(6)]
    for other in runs[1:]:
        assert other.loglik == runs[0].loglik
        np.testing.assert_array_equal(other.scatter, runs[0].scatter)
        np.testing.assert_array_equal(other.nk, runs[0].nk)


# ---------------------------------------------------------------- no allocation per block
_PAGE_FAULTS = """
import resource, sys
import numpy as np
from gaussmix._engine.estep import estep_chunk
from gaussmix._engine.params import params_from_covariances
kind = sys.argv[1]
rng = np.random.default_rng(0)
k, d = 8, 24  # D > SPARSE_BREAK_EVEN: the sparse scatter for "full"
means = rng.normal(0, 10.0, (k, d))  # separated: most pairs skipped
X = means[rng.integers(0, k, 200_000)] + rng.normal(size=(200_000, d))
covariances = {"full": np.repeat(np.eye(d)[None], k, axis=0) * 1.5,
               "diag": np.full((k, d), 1.5), "tied": np.eye(d) * 1.5}[kind]
params = params_from_covariances(np.full(k, 1 / k), means + 0.3, covariances, kind)
from gaussmix._engine import stats
calls = []
add_sparse = stats.Moments._add_sparse
stats.Moments._add_sparse = lambda *a: calls.append(add_sparse(*a)) or calls[-1]
estep_chunk(X, None, params, kind, n_threads=1)
numpy_kernel = __import__("os").environ["GAUSSMIX_KERNEL"] == "numpy"
assert kind != "full" or any(calls) or not numpy_kernel, "the sparse scatter did not run"
faults = []
for rows in (X[:100_000], X):  # the difference: what 100,000 more rows cost
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    estep_chunk(rows, None, params, kind, n_threads=1)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[1] - faults[0], X[:100_000].nbytes // 4096)
"""


@BOTH
@pytest.mark.parametrize("family", ["full", "diag", "tied"])
def test_kernel_does_not_allocate_per_block(family, kernel):
    """Dask's workers run with glibc's MALLOC_TRIM_THRESHOLD_ set, which turns off the
    dynamic mmap threshold: every temporary above 128 KB is then a fresh mapping and its
    page faults (they made the kernel 1.6x slower there). 100,000 more rows (~50
    blocks) must fault far fewer pages than they hold: the work arrays are made once
    per call and kept from block to block."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the glibc allocator setting under test is Linux's")
    env = dict(__import__("os").environ, MALLOC_TRIM_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", _PAGE_FAULTS, KIND[family]], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    faults, data_pages = int(out[0]), int(out[1])
    assert faults < data_pages / 8, (faults, data_pages)
