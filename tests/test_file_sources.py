"""File sources (read_npy, read_parquet, read_csv): what they read, that every face fits
and predicts on them exactly as on the array in memory, and how they refuse bad files.

References: NumPy's ``np.load``, pandas' readers, and the same estimator on the array.
"""

from __future__ import annotations

import gc
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

import gaussmix
from gaussmix import DataError, GaussianMixture, Gauss, Mixture, select
from gaussmix._engine import init as _init
from gaussmix._files.read_ahead import read_ahead
from gaussmix._mclust import select as _select


def _data(n=3000, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, d))
    scales = np.array([0.5, 1.0, 1.5, 2.0])
    labels = rng.integers(0, 4, size=n)
    return centres[labels] + rng.normal(size=(n, d)) * scales[labels, None]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same data as .npy, Parquet (small row groups), CSV and gzipped TSV."""
    root = tmp_path_factory.mktemp("files")
    X = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    paths = {"npy": root / "x.npy", "parquet": root / "x.parquet",
             "csv": root / "x.csv", "tsv.gz": root / "x.tsv.gz"}
    np.save(paths["npy"], X)
    frame.to_parquet(paths["parquet"], row_group_size=700)
    # repr-exact decimals, so the CSV holds the same float64 values
    frame.to_csv(paths["csv"], index=False, float_format="%.17g")
    frame.to_csv(paths["tsv.gz"], index=False, sep="\t", float_format="%.17g")
    return X, {k: str(v) for k, v in paths.items()}


def _open(kind, path, **kw):
    if kind == "npy":
        return gaussmix.read_npy(path, **kw)
    if kind == "parquet":
        return gaussmix.read_parquet(path, **kw)
    return gaussmix.read_csv(path, **kw)


# ---------------------------------------------------------------------- reading
@pytest.mark.parametrize("kind", ["npy", "parquet", "csv", "tsv.gz"])
def test_a_source_reads_the_file_in_bounded_chunks(files, kind):
    X, paths = files
    source = _open(kind, paths[kind], chunk_rows=500)
    assert (source.n_rows, source.n_features, source.dtype) == (3000, 3, np.float64)
    chunks = [c for c, w in source.chunks()]
    assert all(w is None for _, w in source.chunks())
    if kind in ("npy", "parquet"):  # CSV chunks follow the parser's blocks
        assert max(c.shape[0] for c in chunks) <= 500 and len(chunks) >= 6
    np.testing.assert_array_equal(np.concatenate(chunks), X)
    # a second pass reads the same rows
    np.testing.assert_array_equal(source.to_numpy(), X)
    expected = None if kind == "npy" else ["a", "b", "c"]
    assert source.feature_names == expected


@pytest.mark.parametrize("kind", ["npy", "parquet", "csv"])
def test_columns_by_name_or_position_and_float32(files, kind):
    X, paths = files
    columns = [2, 0] if kind == "npy" else ["c", "a"]
    source = _open(kind, paths[kind], columns=columns, dtype=np.float32)
    assert source.dtype == np.float32 and source.n_features == 2
    np.testing.assert_array_equal(source.to_numpy(), X[:, [2, 0]].astype(np.float32))
    if kind != "npy":
        assert source.feature_names == ["c", "a"]
        by_position = _open(kind, paths[kind], columns=[1])
        assert by_position.feature_names == ["b"]


def test_headerless_and_zipped_csv(tmp_path, files):
    X, _ = files
    plain = tmp_path / "plain.csv"
    pd.DataFrame(X).to_csv(plain, index=False, header=False, float_format="%.17g")
    source = gaussmix.read_csv(plain)
    assert source.feature_names is None and source.n_rows == 3000  # no row lost
    np.testing.assert_array_equal(source.to_numpy(), X)
    zipped = tmp_path / "plain.csv.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(plain, "plain.csv")
    np.testing.assert_array_equal(gaussmix.read_csv(zipped, columns=["1"]).to_numpy(),
                                  X[:, [1]])


def test_a_one_column_csv(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("value\n1.5\n2.5\n4\n")
    source = gaussmix.read_csv(path)
    assert source.feature_names == ["value"]
    np.testing.assert_array_equal(source.to_numpy(), [[1.5], [2.5], [4.0]])


def test_a_sample_is_the_rows_it_names(files):
    X, paths = files
    source = gaussmix.read_parquet(paths["parquet"], chunk_rows=400)
    sample = source.sample(50, np.random.RandomState(3))
    assert not sample.complete and sample.rows.size == 50
    assert np.all(np.diff(sample.rows) > 0)
    np.testing.assert_array_equal(sample.X, X[sample.rows])
    # the same draw as the array's source
    from gaussmix import ArraySource

    same = ArraySource(X).sample(50, np.random.RandomState(3))
    np.testing.assert_array_equal(same.rows, sample.rows)


# ------------------------------------------------------------------- the faces
def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) /
                 max(np.max(np.abs(np.asarray(a))), 1e-300))


@pytest.mark.parametrize("covariance_type",
                         ["full", "tied", "diag", "spherical", "VEV", "EEI"])
@pytest.mark.parametrize("kind", ["npy", "parquet", "csv"])
def test_a_streaming_fit_equals_the_in_memory_fit(files, kind, covariance_type):
    X, paths = files
    kw = dict(n_components=4, covariance_type=covariance_type, random_state=0,
              tol=1e-8, max_iter=200)
    memory = GaussianMixture(**kw).fit(X)
    stream = GaussianMixture(**kw).fit(_open(kind, paths[kind], chunk_rows=450))
    assert stream.n_iter_ == memory.n_iter_ and stream.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert _rel(getattr(stream, name), getattr(memory, name)) < 1e-10, name
    assert abs(stream.lower_bound_ - memory.lower_bound_) < 1e-10 * abs(memory.lower_bound_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data",
                                         "random"])
def test_every_init_on_a_sample_then_an_assignment_pass(files, init_params, monkeypatch):
    # Fewer rows in the starting sample than in the file: the init draws a random
    # subset through the source; the array and the file must draw the same one.
    monkeypatch.setattr(_init, "KMEANS_SUBSET", 800)
    X, paths = files
    kw = dict(n_components=4, random_state=1, init_params=init_params, max_iter=5)
    memory = GaussianMixture(**kw).fit(X)
    stream = GaussianMixture(**kw).fit(gaussmix.read_npy(paths["npy"], chunk_rows=333))
    assert stream.n_iter_ == memory.n_iter_
    assert _rel(stream.means_, memory.means_) < 1e-10
    assert _rel(stream.covariances_, memory.covariances_) < 1e-10


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_predictions_on_a_source_equal_those_on_the_array(files, kind):
    X, paths = files
    gm = GaussianMixture(4, random_state=0).fit(X)
    source = _open(kind, paths[kind], chunk_rows=256)
    np.testing.assert_array_equal(gm.predict(source), gm.predict(X))
    np.testing.assert_allclose(gm.predict_proba(source), gm.predict_proba(X),
                               rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(gm.score_samples(source), gm.score_samples(X), rtol=1e-12)
    assert gm.score(source) == pytest.approx(gm.score(X), rel=1e-12)
    assert gm.bic(source) == pytest.approx(gm.bic(X), rel=1e-12)
    assert gm.aic(source) == pytest.approx(gm.aic(X), rel=1e-12)


def test_a_source_names_the_features_and_is_checked_when_predicting(files):
    X, paths = files
    gm = GaussianMixture(2, random_state=0).fit(gaussmix.read_parquet(paths["parquet"]))
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(gm.predict(pd.DataFrame(X, columns=["a", "b", "c"])),
                                  gm.predict(gaussmix.read_csv(paths["csv"])))
    with pytest.raises(ValueError, match="not the ones the model was fitted on"):
        gm.predict(gaussmix.read_parquet(paths["parquet"], columns=["b", "a", "c"]))
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(gaussmix.read_parquet(paths["parquet"], columns=["a", "b"]))


def test_select_on_a_file_equals_select_in_memory(files, monkeypatch):
    # More rows than mclust's hierarchical subset (made small here for speed): the
    # subset is drawn through the source, EM runs over the whole file.
    monkeypatch.setattr(_select, "HC_SUBSET", 500)
    X, paths = files
    kw = dict(G=[1, 2, 3, 4], models=["EII", "VVI", "EEE", "VEV", "VVV"],
              random_state=0)
    memory = select(X, **kw)
    stream = select(gaussmix.read_csv(paths["csv"], chunk_rows=300), **kw)
    a, b = memory.bic.to_numpy(), stream.bic.to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=1e-10)
    np.testing.assert_array_equal(stream.n_iter.to_numpy(), memory.n_iter.to_numpy())
    assert (stream.best_model, stream.best_G) == (memory.best_model, memory.best_G)
    np.testing.assert_array_equal(stream.classification, memory.classification)
    assert list(stream.best.feature_names_in_) == ["a", "b", "c"]


def test_mixture_fits_and_predicts_on_a_source(files):
    X, paths = files
    starts = X[[0, 900, 1800, 2700]]
    in_memory = Mixture([Gauss(m) for m in starts]).fit(X, n_steps=15)
    streamed = Mixture([Gauss(m) for m in starts]).fit(
        gaussmix.read_npy(paths["npy"], chunk_rows=700), n_steps=15)
    assert _rel(streamed.means, in_memory.means) < 1e-10
    source = gaussmix.read_parquet(paths["parquet"])
    np.testing.assert_array_equal(streamed.predict(source), in_memory.predict(X))
    np.testing.assert_allclose(streamed.log_p(source), in_memory.log_p(X), rtol=1e-12)


# ------------------------------------------------------------------- bad input
def test_a_missing_file_or_column(tmp_path, files):
    _, paths = files
    with pytest.raises(DataError, match="no such file"):
        gaussmix.read_parquet(tmp_path / "nope.parquet")
    with pytest.raises(DataError, match=r"unknown column 'z'; the columns are 'a', 'b'"):
        gaussmix.read_parquet(paths["parquet"], columns=["z"])
    with pytest.raises(DataError, match="unknown column 'z'"):
        gaussmix.read_csv(paths["csv"], columns=["a", "z"])
    with pytest.raises(DataError, match="column position 7 is out of range"):
        gaussmix.read_npy(paths["npy"], columns=[7])


def test_non_numeric_columns_are_named(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "name": ["p", "q", "r"]})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="column 'name' is not numeric"):
        gaussmix.read_parquet(tmp_path / "t.parquet")
    assert gaussmix.read_parquet(tmp_path / "t.parquet", columns=["x"]).n_rows == 3
    lines = ["x,y"] + [f"{i},{i * 2}" for i in range(5000)] + ["7,oops"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    # the row is found although the parser does not say it (5000 rows, chunks of 100)
    with pytest.raises(DataError, match=r"column 'y' is not numeric: row 5001 has 'oops'"):
        gaussmix.read_csv(tmp_path / "t.csv", chunk_rows=100)
    np.save(tmp_path / "t.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="not numeric"):
        gaussmix.read_npy(tmp_path / "t.npy")


def test_a_missing_value_in_the_middle_names_its_row(tmp_path, files):
    X, _ = files
    bad = X.copy()
    bad[2345, 1] = np.nan
    pd.DataFrame(bad, columns=["a", "b", "c"]).to_parquet(tmp_path / "nan.parquet",
                                                          row_group_size=500)
    source = gaussmix.read_parquet(tmp_path / "nan.parquet", chunk_rows=500)
    with pytest.raises(DataError, match=r"nan.parquet: 1 row has missing or non-finite "
                                        r"values among data rows 2001-2500 \(first: data "
                                        r"row 2346\)"):
        GaussianMixture(2, random_state=0).fit(source)
    lines = ["a,b"] + [f"{i},{i}" for i in range(3000)]
    lines[1201] = "5,"
    (tmp_path / "gap.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"first: data row 1201\)"):
        gaussmix.read_csv(tmp_path / "gap.csv", chunk_rows=256)


def test_a_file_that_changes_between_passes_is_refused(tmp_path, files):
    X, _ = files
    path = tmp_path / "moving.npy"
    np.save(path, X)
    source = gaussmix.read_npy(path, chunk_rows=1000)
    gm = GaussianMixture(2, random_state=0, max_iter=3).fit(source)
    np.save(path, X[:2000])  # rewritten between two fits (or two passes of one)
    with pytest.raises(DataError, match="changed since it was opened"):
        gm.fit(source)
    # A change the file's size and time do not show: the pass counts the rows.
    source = gaussmix.read_parquet(_write_parquet(tmp_path / "p.parquet", X),
                                   chunk_rows=900)
    source.n_rows = 2500  # as if the file had grown since it was opened
    with pytest.raises(DataError, match="has more rows now, 2500 when it was opened"):
        list(source.chunks())
    source.n_rows = 3500
    with pytest.raises(DataError, match="has 3000 rows now, 3500 when it was opened"):
        list(source.chunks())


def _write_parquet(path, X):
    pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet(path)
    return path


def test_bad_options(files):
    _, paths = files
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        gaussmix.read_npy(paths["npy"], dtype=np.int32)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        gaussmix.read_parquet(paths["parquet"], chunk_rows=0)


# ---------------------------------------------------------------- read ahead
def test_read_ahead_keeps_order_and_raises_where_the_reader_failed():
    def items():
        yield from range(5)
        raise DataError("row 6 is bad")

    seen = []
    with pytest.raises(DataError, match="row 6 is bad"):
        for item in read_ahead(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_stops_the_reader_when_the_caller_stops():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    iterator = read_ahead(items(), depth=1)
    assert next(iterator) == 0
    iterator.close()  # the caller stopped (a break, an error)
    assert closed.is_set()  # the reader closed its file before close() returned
    assert len(produced) <= 3
    gc.collect()
    assert not any(t.name == "gaussmix-read-ahead" for t in threading.enumerate())


def test_npy_pages_are_released_as_they_are_read(tmp_path):
    # Resident memory stays bounded by the chunks, not the file: after a pass over a
    # 64 MB file the process holds few of its pages (VmRSS, Linux's /proc).
    status = "/proc/self/status"
    X = np.random.default_rng(0).normal(size=(1_000_000, 8))
    np.save(tmp_path / "big.npy", X)
    del X
    gc.collect()

    def rss():
        with open(status) as f:
            line = next(line for line in f if line.startswith("VmRSS"))
        return int(line.split()[1]) * 1024

    before = rss()
    source = gaussmix.read_npy(tmp_path / "big.npy", chunk_rows=50_000)
    for chunk, _ in source.chunks():
        pass
    assert rss() - before < 32 << 20


def test_partial_fit_streams_a_file_once_per_call(files):
    # Each chunk is one batch: one pass over the file, the same updates as the slices.
    X, paths = files
    streamed = GaussianMixture(3, random_state=0).partial_fit(
        gaussmix.read_npy(paths["npy"], chunk_rows=1000))
    sliced = GaussianMixture(3, random_state=0)
    for start in range(0, len(X), 1000):
        sliced.partial_fit(X[start:start + 1000])
    assert streamed.n_iter_ == sliced.n_iter_ == 3
    assert _rel(streamed.means_, sliced.means_) < 1e-12
    # The batches are the chunks: a Parquet file's also end at its row groups (700).
    named = GaussianMixture(3, random_state=0).partial_fit(
        gaussmix.read_parquet(paths["parquet"], chunk_rows=1000))
    assert named.n_iter_ == 5
    assert list(named.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not the ones the model was fitted on"):
        named.partial_fit(gaussmix.read_parquet(paths["parquet"], columns=["c", "b", "a"]))


def test_parquet_memory_follows_the_chunk_not_the_file(tmp_path):
    # PyArrow's iter_batches over a whole file keeps every decoded row group until it
    # is closed; the source reads group by group, so Arrow holds about one at a time.
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = np.random.default_rng(0).normal(size=(1_000_000, 8))  # 64 MB
    table = pa.table({f"x{j}": X[:, j] for j in range(8)})
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=125_000)
    del table
    source = gaussmix.read_parquet(tmp_path / "groups.parquet", chunk_rows=50_000)
    held, rows = 0, 0
    for chunk, _ in source.chunks():
        held = max(held, pa.total_allocated_bytes())
        rows += chunk.shape[0]
    assert rows == 1_000_000
    assert held < 40 << 20, held
