"""Array-API inputs and the device producer (gaussmix._engine.device).

The reference is gaussmix's NumPy path: the same fit, statistics and per-row results
from NumPy rows (itself held to scikit-learn's numbers by test_sklearn_suite). Results
must agree to 1e-10 in float64 and 1e-4 in float32. array-api-strict (CPU, and its
virtual second device) always runs; PyTorch runs where it is installed (CPU, and CUDA
when present); scikit-learn's own ``test_gaussian_mixture_array_api_compliance`` runs
against gaussmix.GaussianMixture at the end.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st

xps = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

from gaussmix import DeviceSource, GaussianMixture, Mixture, get_model, select  # noqa: E402
from gaussmix._engine.device import device_stats  # noqa: E402
from gaussmix._engine.producers import thread_pass  # noqa: E402
from gaussmix._engine.sources import ArraySource  # noqa: E402
from gaussmix._engine.namespaces import to_numpy  # noqa: E402
from gaussmix._estimator import _as_params  # noqa: E402


@pytest.fixture(autouse=True)
def _scipy_array_api(monkeypatch):
    # scikit-learn refuses array_api_dispatch unless SciPy's array API is switched on.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")


def _torch(device):
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


NAMESPACES = [("array_api_strict", "CPU_DEVICE"), ("array_api_strict", "device1"),
              ("torch", "cpu"), ("torch", "cuda")]


def _put(namespace, device, a):
    """NumPy ``a`` as an array of ``namespace`` on ``device``."""
    if namespace == "torch":
        return _torch(device).asarray(a, device=device)
    return xps.asarray(a, device=xps.Device(device))


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4,
                                                                          atol=1e-4)


def _data(dtype=np.float64, n=600, seed=0):
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.randn(n // 2, 3) + 4,
                        rng.randn(n // 3, 3) @ rng.randn(3, 3) - 3,
                        0.5 * rng.randn(n - n // 2 - n // 3, 3) + [5, -5, 0]])
    return X.astype(dtype)


def _same_fit(gm_np, gm_xp, dtype):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "precisions_"):
        np.testing.assert_allclose(to_numpy(getattr(gm_xp, name)),
                                   getattr(gm_np, name), **_tol(dtype), err_msg=name)
    assert gm_xp.n_iter_ == gm_np.n_iter_
    assert gm_xp.converged_ == gm_np.converged_
    np.testing.assert_allclose(gm_xp.lower_bound_, gm_np.lower_bound_, **_tol(dtype))


# ------------------------------------------------------------------ the estimator
@pytest.mark.parametrize("namespace, device", NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_fit_and_methods_equal_the_numpy_path(namespace, device, dtype, covariance_type):
    X = _data(dtype)
    X_xp = _put(namespace, device, X)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    with sklearn.config_context(array_api_dispatch=True):
        gm_xp = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                                chunk_size=150).fit(X_xp)  # four chunks
        proba, score = gm_xp.predict_proba(X_xp), gm_xp.score_samples(X_xp)
        labels, fit_labels = gm_xp.predict(X_xp), gm_xp.fit_predict(X_xp)
        drawn, drawn_labels = gm_xp.sample(7)
        bic, aic, mean = gm_xp.bic(X_xp), gm_xp.aic(X_xp), gm_xp.score(X_xp)
    _same_fit(gm, gm_xp, dtype)
    xp_type = type(X_xp)
    for result in (gm_xp.means_, gm_xp.covariances_, proba, score, labels, drawn,
                   drawn_labels):
        assert type(result) is xp_type
        assert result.device == X_xp.device
    assert gm_xp.means_.dtype == X_xp.dtype
    np.testing.assert_allclose(to_numpy(proba), gm.predict_proba(X), **_tol(dtype))
    np.testing.assert_allclose(to_numpy(score), gm.score_samples(X), **_tol(dtype))
    np.testing.assert_array_equal(to_numpy(labels), gm.predict(X))
    np.testing.assert_array_equal(to_numpy(fit_labels), gm.predict(X))
    rel = 1e-10 if dtype == np.float64 else 1e-5
    assert bic == pytest.approx(gm.bic(X), rel=rel)
    assert aic == pytest.approx(gm.aic(X), rel=rel)
    assert mean == pytest.approx(gm.score(X), rel=rel)
    X_s, y_s = gm.sample(7)
    np.testing.assert_allclose(to_numpy(drawn), X_s, **_tol(dtype))
    np.testing.assert_array_equal(to_numpy(drawn_labels), y_s)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_every_init_weights_and_warm_start_on_the_device(init_params):
    X = _data()
    w = np.random.RandomState(1).uniform(0, 2, X.shape[0])
    w[::10] = 0.0  # zero weight: as if the row were absent
    X_xp, w_xp = _put("array_api_strict", "device1", X), _put("array_api_strict",
                                                             "device1", w)
    kwargs = dict(n_components=3, init_params=init_params, random_state=0,
                  warm_start=True, max_iter=2)
    gm = GaussianMixture(**kwargs)
    gm_xp = GaussianMixture(**kwargs)
    for _ in range(2):  # the second fit continues from the first
        gm.fit(X, sample_weight=w)
        with sklearn.config_context(array_api_dispatch=True):
            gm_xp.fit(X_xp, sample_weight=w_xp)
        _same_fit(gm, gm_xp, np.float64)


def test_kmeans_on_a_sample_of_large_device_data(monkeypatch):
    # Beyond KMEANS_SUBSET rows k-means runs on a sample and every row goes to its
    # nearest centre: the sample is drawn (and gathered on the device) alike.
    monkeypatch.setattr("gaussmix._engine.init.KMEANS_SUBSET", 100)
    X = _data()
    gm = GaussianMixture(3, random_state=0).fit(X)
    with sklearn.config_context(array_api_dispatch=True):
        gm_xp = GaussianMixture(3, random_state=0).fit(_put("array_api_strict",
                                                            "device1", X))
    _same_fit(gm, gm_xp, np.float64)


def test_constructor_arrays_of_the_data_namespace():
    X = _data()
    ref = GaussianMixture(3, random_state=0).fit(X)
    init = dict(weights_init=ref.weights_ * 0 + 1 / 3, means_init=ref.means_ + 0.5,
                precisions_init=ref.precisions_)
    gm = GaussianMixture(3, random_state=0, **init).fit(X)
    put = lambda a: _put("array_api_strict", "device1", a)  # noqa: E731
    with sklearn.config_context(array_api_dispatch=True):
        gm_xp = GaussianMixture(3, random_state=0,
                                **{k: put(v) for k, v in init.items()}).fit(put(X))
    _same_fit(gm, gm_xp, np.float64)


def test_without_dispatch_arrays_are_not_fitted_on_their_device():
    # scikit-learn's rule: without array_api_dispatch the input is converted to NumPy.
    torch = _torch("cpu")
    gm = GaussianMixture(2, random_state=0).fit(torch.asarray(_data()))
    assert isinstance(gm.means_, np.ndarray)


def test_partial_fit_and_sources_run_on_the_host_side_of_the_face():
    # partial_fit copies array-API batches to the host: the stepwise numbers of NumPy
    # batches, NumPy attributes; a DeviceSource (any Source) gives NumPy attributes.
    X = _data()
    put = lambda a: _put("array_api_strict", "device1", a)  # noqa: E731
    ref = GaussianMixture(3, random_state=0).partial_fit(X[:300]).partial_fit(X[300:])
    with sklearn.config_context(array_api_dispatch=True):
        gm = GaussianMixture(3, random_state=0).partial_fit(put(X[:300]))
        gm.partial_fit(put(X[300:]))
        assert isinstance(gm.sample(3)[0], np.ndarray)
    _same_fit(ref, gm, np.float64)
    from_source = GaussianMixture(3, random_state=0).fit(DeviceSource(put(X)))
    assert isinstance(from_source.means_, np.ndarray)
    _same_fit(GaussianMixture(3, random_state=0).fit(X), from_source, np.float64)


def test_device_input_errors_name_the_problem():
    X = _data()
    X[3, 1] = np.nan
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="NaN or infinity.*impute"):
            GaussianMixture(2).fit(_put("array_api_strict", "device1", X))
        with pytest.raises(ValueError, match="Expected 2D array.*reshape"):
            GaussianMixture(2).fit(_put("array_api_strict", "device1", X[:, 0]))
    with pytest.raises(ValueError, match="namespace='torch'"):
        DeviceSource(_data())


# ------------------------------------------------------------------ the producer
def _stats_close(a, b, dtype=np.float64):
    tol = _tol(dtype)
    for name in ("nk", "means", "scatter"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), **tol,
                                   err_msg=name)
    for name in ("loglik", "map_loglik", "noise_nk", "weight"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=tol["rtol"],
                                                 abs=tol["atol"]), name
    assert a.n_rows == b.n_rows
    assert a.worst_loglik == pytest.approx(b.worst_loglik, rel=tol["rtol"])
    np.testing.assert_array_equal(a.worst_row, b.worst_row)


def _fitted_params(X, name):
    return _as_params(GaussianMixture(3, covariance_type=name, random_state=0,
                                      max_iter=3).fit(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["EII", "VII", "EEI", "VVI", "EEE", "VEV", "VVV"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_device_statistics_equal_the_thread_producer(name, dtype):
    X = _data(dtype)
    w = np.random.RandomState(2).uniform(0, 3, X.shape[0])
    w[5::7] = 0.0
    w /= 2.0 ** np.frexp(w.max())[1] / 2  # as the sources scale them: max in [1, 2)
    labels = np.full(X.shape[0], -1)
    labels[:40] = np.arange(40) % 3  # semi-supervised rows keep their component
    params = _fitted_params(X, name)
    kind = get_model(name).stats_kind
    for weights, fixed in [(None, None), (w, None), (w, labels)]:
        host = ArraySource(X, weights, 128)
        on_device = DeviceSource(_put("array_api_strict", "device1", X), weights,
                                 chunk_rows=100)
        _stats_close(thread_pass(on_device, kind, labels=fixed)(params),
                     thread_pass(host, kind, labels=fixed)(params), dtype)


@pytest.mark.parametrize("offset, expanded", [(0.0, True), (1e4, False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diagonal_models_expand_squares_unless_a_component_is_far(offset, expanded, dtype):
    # The expanded form (matrix products about one shift) must not lose the digits of
    # a component far from the mixture's mean: such a pass takes the residual form.
    from gaussmix._engine.device import _DeviceParams

    X = _data(np.float64)
    X[:100] += offset  # one cluster far from the others
    X = X.astype(dtype)
    params = _fitted_params(X, "VVI")
    assert _DeviceParams(params, xps, xps.Device("device1"), dtype).expanded is expanded
    for name in ("VVI", "VII"):
        params = _fitted_params(X, name)
        _stats_close(thread_pass(DeviceSource(_put("array_api_strict", "device1", X),
                                              chunk_rows=100), "diag")(params),
                     thread_pass(ArraySource(X, None, 128), "diag")(params), dtype)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 120), d=st.integers(1, 4), k=st.integers(1, 3),
       family=st.sampled_from(["full", "tied", "diag", "spherical"]),
       chunk=st.integers(1, 130), weighted=st.booleans(), seed=st.integers(0, 10_000))
def test_any_chunking_gives_the_thread_producers_statistics(n, d, k, family, chunk,
                                                             weighted, seed):
    # The invariant every producer keeps: the in-memory producer's statistics, for any
    # rows, weights (zeros included), chunking and parameters.
    from gaussmix._engine.params import params_from_covariances

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3) + rng.normal(size=d) * 3
    w = rng.uniform(0, 2, n) * (rng.uniform(size=n) > 0.2) if weighted else None
    if w is not None and not np.any(w > 0):
        w[0] = 1.0
    if w is not None:
        w /= 2.0 ** np.frexp(w.max())[1] / 2  # as the sources scale them
    a = rng.normal(size=(k, d, d))
    full = a @ np.swapaxes(a, 1, 2) + np.eye(d)
    covariances = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2, (k, d)),
                   "spherical": rng.uniform(0.5, 2, k)}[family]
    params = params_from_covariances(rng.dirichlet(np.ones(k)),
                                     rng.normal(size=(k, d)) * 2, covariances, family)
    kind = {"full": "full", "tied": "tied"}.get(family, "diag")
    on_device = DeviceSource(_put("array_api_strict", "device1", X), w, chunk_rows=chunk)
    _stats_close(thread_pass(on_device, kind)(params),
                 thread_pass(ArraySource(X, w, 64), kind)(params))


@pytest.mark.parametrize("kind", ["full", "diag", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_starting_label_statistics_on_the_device_equal_the_hosts(kind, dtype):
    from gaussmix._engine.init import given_stats, one_hot

    X = _data(dtype)
    w = np.random.RandomState(4).uniform(0, 1.9, X.shape[0])
    w[::9] = 0.0
    labels = np.random.RandomState(5).randint(-1, 3, X.shape[0])  # -1: no component

    def labels_of(start, chunk):
        return labels[start : start + chunk.shape[0]]

    on_device = DeviceSource(_put("array_api_strict", "device1", X), w, chunk_rows=100)
    got = on_device.label_stats(3, kind, labels_of)
    want = given_stats(ArraySource(X, w, 128), 3, kind,
                       lambda a, c: one_hot(labels_of(a, c), 3, c.dtype))
    for name in ("nk", "means", "scatter"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name),
                                   **_tol(dtype), err_msg=name)
    assert (got.weight, got.n_rows) == pytest.approx((want.weight, want.n_rows))


def test_device_statistics_with_a_noise_component():
    from dataclasses import replace

    X = _data()
    params = replace(_fitted_params(X, "VVV"), noise_log_density=-8.0,
                     noise_proportion=0.1)
    host = thread_pass(ArraySource(X, None, 128), "full")(params)
    on_device = device_stats(DeviceSource(_put("array_api_strict", "CPU_DEVICE", X),
                                          chunk_rows=64), params, "full")
    assert host.noise_nk > 1.0  # the noise component takes a real share
    _stats_close(on_device, host)


@pytest.mark.parametrize("namespace, device", [("array_api_strict", "device1"),
                                               ("torch", "cpu")])
def test_host_rows_streamed_to_the_device_equal_resident_rows(namespace, device):
    X = _data()
    w = np.random.RandomState(3).uniform(0.5, 1.9, X.shape[0])  # max in [1, 2)
    params = _fitted_params(X, "VVV")
    if namespace == "torch":
        xp, where = _torch(device), device
    else:
        xp, where = xps, xps.Device(device)
    streamed = DeviceSource(ArraySource(X, w, 250), namespace=xp, device=where,
                            chunk_rows=100)
    assert not streamed.resident
    _stats_close(thread_pass(streamed, "full")(params),
                 thread_pass(ArraySource(X, w, 600), "full")(params))
    by_name = DeviceSource(X, w, namespace=namespace, device=where)
    _stats_close(thread_pass(by_name, "full")(params),
                 thread_pass(ArraySource(X, w, 600), "full")(params))
    gap = X.copy()
    gap[7, 1] = np.nan  # refused as rows on the device are, not found degenerate later
    with pytest.raises(ValueError, match="NaN or infinity"):
        DeviceSource(gap, namespace=namespace, device=where)


def test_a_file_streamed_to_the_device_fits_as_the_array(tmp_path):
    from gaussmix import read_npy

    X = _data()
    np.save(tmp_path / "rows.npy", X)
    source = DeviceSource(read_npy(tmp_path / "rows.npy"), namespace=xps,
                          device=xps.Device("device1"), chunk_rows=128)
    gm = GaussianMixture(3, random_state=0).fit(source)
    _same_fit(GaussianMixture(3, random_state=0).fit(X), gm, np.float64)


# ------------------------------------------------------------------ other faces
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_select_and_mixture_fit_on_a_device_source():
    X = _data(n=300)
    X_xp = _put("array_api_strict", "device1", X)
    grid = dict(G=range(1, 4), models=["EII", "VEI", "VVV"], backend="numpy")
    ref = select(ArraySource(X, None, 64), **grid)
    got = select(DeviceSource(X_xp, chunk_rows=64), **grid)
    raw = select(X_xp, **grid)  # a device array becomes a DeviceSource
    for result in (got, raw):
        np.testing.assert_allclose(np.asarray(result.bic, dtype=float),
                                   np.asarray(ref.bic, dtype=float), rtol=1e-10)
    start = GaussianMixture(3, random_state=0, max_iter=1).fit(X)
    fitted = Mixture.from_estimator(start).fit(DeviceSource(X_xp, chunk_rows=64),
                                               n_steps=20)
    reference = Mixture.from_estimator(start).fit(X, n_steps=20)
    raw = Mixture.from_estimator(start).fit(X_xp, n_steps=20)
    np.testing.assert_allclose(raw.log_likelihoods_, reference.log_likelihoods_,
                               rtol=1e-10)
    np.testing.assert_allclose(fitted.log_likelihoods_, reference.log_likelihoods_,
                               rtol=1e-10)


def test_scikit_learns_vendored_array_api_compat_serves_without_the_extra():
    code = ("import os, sys\nos.environ['SCIPY_ARRAY_API'] = '1'\n"
            "sys.modules['array_api_compat'] = None  # not installed\n"
            "import numpy as np, sklearn, array_api_strict as xps\n"
            "from gaussmix import GaussianMixture\n"
            "X = xps.asarray(np.random.RandomState(0).rand(60, 2), "
            "device=xps.Device('device1'))\n"
            "with sklearn.config_context(array_api_dispatch=True):\n"
            "    gm = GaussianMixture(2, random_state=0).fit(X)\n"
            "print(type(gm.means_).__module__, gm.means_.device)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "array_api_strict" in out.stdout and "device1" in out.stdout


def test_numpy_fits_import_no_array_api_library():
    code = ("import numpy as np, sys\nfrom gaussmix import GaussianMixture\n"
            "GaussianMixture(2, random_state=0).fit(np.random.rand(50, 2))\n"
            "print(sorted(m for m in ('array_api_compat', 'array_api_strict', 'torch',"
            " 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------- scikit-learn's own compliance test
sk_tests = pytest.importorskip("sklearn.mixture.tests.test_gaussian_mixture")
sk_tests.GaussianMixture = GaussianMixture  # the test finds the estimator here
test_gaussian_mixture_array_api_compliance = (
    sk_tests.test_gaussian_mixture_array_api_compliance)


@pytest.mark.parametrize("namespace, device", NAMESPACES)
def test_a_device_fit_saves_and_converts(namespace, device, tmp_path):
    # array-api-strict's device1 refuses __array__, as a CUDA tensor does: the model
    # file and the object model must copy the attributes to the host themselves.
    import gaussmix

    X = _data()
    X_xp = _put(namespace, device, X)
    with sklearn.config_context(array_api_dispatch=True):
        gm_xp = GaussianMixture(3, random_state=0).fit(X_xp)
    gaussmix.save(gm_xp, tmp_path / "m.gmm")
    loaded = gaussmix.load(tmp_path / "m.gmm")
    np.testing.assert_array_equal(loaded.means_, to_numpy(gm_xp.means_))
    np.testing.assert_allclose(loaded.score_samples(X),
                               GaussianMixture(3, random_state=0).fit(X).score_samples(X),
                               rtol=1e-10)
    mixture = Mixture.from_estimator(gm_xp)
    np.testing.assert_array_equal(mixture.means, to_numpy(gm_xp.means_))
