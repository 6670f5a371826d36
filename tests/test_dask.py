"""Dask: fits on a LocalCluster of two worker processes equal the in-memory fits.

One cluster for the module (2 processes x 1 thread). The data are small and cut into a
few blocks: the point is the contract (same start, same numbers to 1e-10, same n_iter_),
not speed. The test that kills a worker runs last.
"""

import os
import signal

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

import gaussmix  # noqa: E402
from gaussmix import GaussianMixture, Mixture, select  # noqa: E402
from gaussmix._engine import dask_source, init  # noqa: E402

RTOL = 1e-10


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, 0.0], [1.0, 5.0, 3.0]])
    X = np.concatenate([rng.normal(c, [1.0, 0.7, 1.3], (n // 3, 3)) for c in centres])
    X = X[rng.permutation(X.shape[0])]
    w = rng.uniform(0.2, 3.0, X.shape[0])
    w[::11] = 0.0
    return X, w


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        _close(getattr(a, name), getattr(b, name))
    _close(a.lower_bound_, b.lower_bound_)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_fit_equals_in_memory(client, covariance_type, weighted):
    X, w = _data()
    sw = w if weighted else None
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=1e-6)
    memory = GaussianMixture(**kw).fit(X, sample_weight=sw)
    Xd = da.from_array(X, chunks=(500, 3))
    wd = None if sw is None else da.from_array(sw, chunks=500)
    on_dask = GaussianMixture(**kw).fit(Xd, sample_weight=wd)
    _same_fit(memory, on_dask)


def test_sampled_start_and_mclust_model(client, monkeypatch):
    # A start from a random subset (k-means on it, then an assignment pass on the
    # workers): the same rows are drawn, among those with a positive weight.
    monkeypatch.setattr(init, "KMEANS_SUBSET", 400)
    assigned = []
    label_stats = dask_source.DaskSource.label_stats
    monkeypatch.setattr(dask_source.DaskSource, "label_stats",
                        lambda self, *a: assigned.append(a) or label_stats(self, *a))
    X, w = _data()
    kw = dict(n_components=3, covariance_type="VEV", random_state=1, tol=1e-6)
    memory = GaussianMixture(**kw).fit(X, sample_weight=w)
    on_dask = GaussianMixture(**kw).fit(da.from_array(X, chunks=(700, 3)),
                                        sample_weight=da.from_array(w, chunks=400))
    _same_fit(memory, on_dask)
    assert assigned  # the assignment pass ran on the workers
    for init_params in ("k-means++", "random_from_data"):
        kw = dict(n_components=3, init_params=init_params, random_state=2)
        _same_fit(GaussianMixture(**kw).fit(X),
                  GaussianMixture(**kw).fit(da.from_array(X, chunks=(500, 3))))


def test_predictions_are_lazy_and_equal(client):
    X, _ = _data()
    Xd = da.from_array(X, chunks=(500, 3))
    gm = GaussianMixture(3, random_state=0).fit(X)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(gm, method)(Xd)
        assert isinstance(lazy, da.Array), method
        expected = getattr(gm, method)(X)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        _close(lazy.compute(), expected)
    for method in ("score", "bic", "aic"):
        value = getattr(gm, method)(Xd)
        assert isinstance(value, float), method
        _close(value, getattr(gm, method)(X))


def test_dataframe_names_and_local_scheduler(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, _ = _data(600)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).fit(dd.from_pandas(frame, npartitions=2))
    expected = GaussianMixture(2, random_state=0).fit(frame)
    _same_fit(expected, gm)
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    # Without a distributed client: Dask's threaded scheduler, the same numbers.
    with dask.config.set(scheduler="threads"):
        assert dask_source._current_client() is None
        _same_fit(expected, GaussianMixture(2, random_state=0).fit(
            da.from_array(X, chunks=(200, 3))))


def test_mixture_fit_on_dask(client):
    X, _ = _data(900)
    start = [gaussmix.Gauss(X[0]), gaussmix.Gauss(X[1]), gaussmix.Gauss(X[2])]
    memory = Mixture([gaussmix.Gauss(g.mu, g.cov) for g in start]).fit(X, n_steps=20)
    on_dask = Mixture([gaussmix.Gauss(g.mu, g.cov) for g in start]).fit(
        da.from_array(X, chunks=(300, 3)), n_steps=20)
    assert on_dask.n_iter_ == memory.n_iter_
    _close(on_dask.weights, memory.weights)
    _close(on_dask.means, memory.means)
    _close(on_dask.covariances, memory.covariances)
    assert isinstance(on_dask[0].r, da.Array)  # the responsibilities stay lazy
    _close(on_dask[0].r.compute(), memory[0].r)
    assert isinstance(on_dask.log_p(da.from_array(X, chunks=(300, 3))), da.Array)


def test_select_same_bic_table(client, monkeypatch):
    # More rows than the hierarchical stage takes (2000): hc on a random subset drawn
    # alike, every EM fit of the grid through the Dask producer.
    X, _ = _data(2400, seed=3)
    kw = dict(G=[1, 2, 3], models=["EII", "VVI", "VVV"], random_state=5, backend="numpy")
    memory = select(X, **kw)
    passes = []
    producer = dask_source.DaskSource.producer
    monkeypatch.setattr(dask_source.DaskSource, "producer",
                        lambda self, kind, labels=None: passes.append(kind)
                        or producer(self, kind, labels))
    on_dask = select(da.from_array(X, chunks=(800, 3)), **kw)
    assert len(passes) >= 6  # each G > 1 fit of the grid, on the workers
    np.testing.assert_array_equal(np.isnan(memory.bic.to_numpy()),
                                  np.isnan(on_dask.bic.to_numpy()))
    ok = np.isfinite(memory.bic.to_numpy())
    _close(on_dask.bic.to_numpy()[ok], memory.bic.to_numpy()[ok])
    assert (on_dask.best_model, on_dask.best_G) == (memory.best_model, memory.best_G)
    _close(np.asarray(on_dask.classification), memory.classification, rtol=0)


# ------------------------------------------------------------------------- errors
def test_unknown_chunk_sizes(client):
    X, _ = _data(300)
    Xd = da.from_array(X, chunks=(100, 3))
    masked = Xd[Xd[:, 0] > -100]  # boolean indexing: row counts unknown
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        GaussianMixture(2).fit(masked)


def test_blocks_chunked_along_features(client):
    X, _ = _data(300)
    with pytest.raises(ValueError, match=r"chunked along its features.*rechunk\(\{1: -1\}\)"):
        GaussianMixture(2).fit(da.from_array(X, chunks=(100, 2)))


def test_non_numeric_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": np.arange(10.0), "kind": list("xyxyxyxyxy")})
    with pytest.raises(ValueError, match="non-numeric column.*kind"):
        GaussianMixture(2).fit(dd.from_pandas(frame, npartitions=2))
    with pytest.raises(ValueError, match="must hold numbers"):
        GaussianMixture(2).fit(da.from_array(np.array([["a", "b"], ["c", "d"]])))


def test_non_finite_values_and_bad_weights(client):
    X, _ = _data(300)
    X[17, 1] = np.nan
    Xd = da.from_array(X, chunks=(100, 3))
    with pytest.raises(ValueError, match="NaN or infinity"):
        GaussianMixture(2).fit(Xd)
    X, w = _data(300)
    w[5] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        GaussianMixture(2).fit(da.from_array(X, chunks=(100, 3)), sample_weight=w)
    with pytest.raises(ValueError, match="expected \\(300,\\)"):
        GaussianMixture(2).fit(da.from_array(X, chunks=(100, 3)), sample_weight=w[:10])


def test_lost_scheduler_is_a_clear_error(client):
    X, _ = _data(300)
    Xd = da.from_array(X, chunks=(100, 3))
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None, silence_logs=50)
    other = distributed.Client(cluster, set_as_default=False)
    try:
        with other.as_current():
            cluster.close()
            with pytest.raises(ConnectionError, match="Dask scheduler"):
                GaussianMixture(2, random_state=0).fit(Xd)
    finally:
        other.close()


def test_command_line_fit_on_the_cluster(client, tmp_path, capsys, monkeypatch):
    pd = pytest.importorskip("pandas")
    from gaussmix.cli import main

    X, _ = _data(600)
    path = tmp_path / "rows.parquet"
    pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet(path)
    address = client.scheduler.address
    out = tmp_path / "model.gmm"
    assert main(["fit", str(path), "-k", "2", "--seed", "0", "--dask", address,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "600 row(s)" in printed and "model written" in printed
    expected = GaussianMixture(2, random_state=0, tol=1e-5, max_iter=1000).fit(
        pd.DataFrame(X, columns=list("abc")))  # the command's defaults
    _same_fit(expected, gaussmix.load(out))
    # The scheduler from the environment; a CSV path.
    pd.DataFrame(X, columns=["a", "b", "c"]).to_csv(tmp_path / "rows.csv", index=False)
    monkeypatch.setenv("GAUSSMIX_DASK_SCHEDULER", address)
    assert main(["fit", str(tmp_path / "rows.csv"), "-k", "2", "--seed", "0"]) == 0
    assert "600 row(s)" in capsys.readouterr().out


# --------------------------------------------------------------- fault tolerance
def test_a_killed_worker_changes_nothing(client, monkeypatch):
    X, w = _data(1500, seed=4)
    kw = dict(n_components=3, covariance_type="full", random_state=0, tol=1e-8)
    Xd = da.from_array(X, chunks=(300, 3))
    wd = da.from_array(w, chunks=300)
    undisturbed = GaussianMixture(**kw).fit(Xd, sample_weight=wd)
    assert undisturbed.n_iter_ >= 3

    compute = dask_source._compute
    calls = {"n": 0, "killed": None}

    def killing(*collections):
        calls["n"] += 1
        if calls["n"] == 6:  # a few EM passes in: the persisted blocks are spread out
            pids = client.run(os.getpid)
            address, pid = sorted(pids.items())[0]
            calls["killed"] = address
            os.kill(pid, signal.SIGKILL)
        return compute(*collections)

    monkeypatch.setattr(dask_source, "_compute", killing)
    disturbed = GaussianMixture(**kw).fit(Xd, sample_weight=wd)
    assert calls["killed"] is not None and calls["n"] > 6
    _same_fit(undisturbed, disturbed)

