"""The command's streaming mode: ``--streaming`` gives what ``--in-memory`` gives, the
automatic switch by the memory budget, chunked outputs, bad files, progress bars."""

from __future__ import annotations

import gzip
import io
import os
import zipfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import gaussmix
from gaussmix import GaussianMixture, load
from gaussmix._cli_stream import BudgetError, data_bytes, parse_size
from gaussmix._files import sources
from gaussmix.cli import main

N_ROWS = 2500  # above the smallest chunk (1024 rows): several chunks when asked for


def _blobs(n=N_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    X = np.vstack([rng.normal(c, [1.0, 0.6], (n // 3 + 1, 2)) for c in centers])[:n]
    return X[rng.permutation(n)]


@pytest.fixture(scope="module")
def X():
    return _blobs()


def _write(path, X, names=("u", "v")):
    """X saved in the format of path's extension (.csv, .parquet, .npy)."""
    path = str(path)
    if path.endswith(".npy"):
        np.save(path, X)
    elif path.endswith(".parquet"):
        pd.DataFrame(X, columns=list(names)).to_parquet(path, index=False)
    else:
        pd.DataFrame(X, columns=list(names)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, X):
    """The data as CSV, Parquet and .npy, and a model fitted on it."""
    root = tmp_path_factory.mktemp("stream")
    paths = {ext: _write(root / f"data.{ext}", X) for ext in ("csv", "parquet", "npy")}
    paths["model"] = str(root / "model.gmm")
    gaussmix.save(GaussianMixture(3, random_state=0).fit(pd.DataFrame(X, columns=["u", "v"])),
                  paths["model"])
    return paths


@pytest.fixture
def small_chunks(monkeypatch):
    """File sources read 1024-row chunks (Parquet and .npy; a CSV's chunks follow its
    parser's blocks)."""
    monkeypatch.setattr(sources, "CHUNK_BYTES", 1)


def _run(capsys, argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gaussmix: error: "), err
    return lines[0]


def _both(capsys, argv):
    """The command's (status, stdout, stderr) --in-memory and --streaming."""
    return (_run(capsys, argv + ["--in-memory"]), _run(capsys, argv + ["--streaming"]))


# ------------------------------------------------------------------ same results
@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_fit_streaming_equals_in_memory(files, ext, tmp_path, capsys):
    argv = ["fit", files[ext], "-k", "3", "--seed", "1", "--covariance", "VEV",
            "--tol", "1e-6"]
    memory = _run(capsys, argv + ["--in-memory", "--out", tmp_path / "a.gmm"])
    streamed = _run(capsys, argv + ["--streaming", "--out", tmp_path / "b.gmm"])
    assert memory[0] == streamed[0] == 0
    assert memory[2] == streamed[2] == ""
    assert "row(s) streamed from" in streamed[1]
    assert streamed[1].replace("streamed from", "from").replace("b.gmm", "a.gmm") \
        == memory[1]
    a, b = load(tmp_path / "a.gmm"), load(tmp_path / "b.gmm")
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-10)
    names = getattr(a, "feature_names_in_", None)
    assert (names is None) == (ext == "npy")
    if names is not None:
        assert list(b.feature_names_in_) == list(names) == ["u", "v"]


def test_fit_in_several_chunks_equals_in_memory(files, tmp_path, capsys, small_chunks):
    argv = ["fit", files["npy"], "-k", "3", "--seed", "0", "--n-init", "2",
            "--init", "k-means++"]
    _, memory, _ = _run(capsys, argv + ["--in-memory", "--out", tmp_path / "a.gmm"])
    _, streamed, _ = _run(capsys, argv + ["--streaming", "--out", tmp_path / "b.gmm"])
    a, b = load(tmp_path / "a.gmm"), load(tmp_path / "b.gmm")
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-10)

    def numbers(text):
        line = next(l for l in text.splitlines() if l.startswith("log-likelihood"))
        return float(line.split()[1])

    np.testing.assert_allclose(numbers(streamed), numbers(memory), rtol=1e-10)


# Every output format for the probabilities; the main ones for labels and log-likelihoods.
CASES = [("predict --proba", out) for out in (
    None, "out.csv", "out.tsv", "out.csv.gz", "out.csv.bz2", "out.csv.xz", "out.csv.zip",
    "out.parquet", "out.npy", "out.txt", "out")] + [
    (command, out) for command in ("predict", "score --per-row")
    for out in (None, "out.csv.gz", "out.parquet", "out.npy")]


def _output(path, out):
    """What a command wrote: stdout's text, or the file's bytes (a .zip: its member's)."""
    if path is None:
        return out
    data = open(path, "rb").read()
    if str(path).endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.namelist() == [path.name[:-len(".zip")]]
            return archive.read(archive.namelist()[0])
    return data


@pytest.mark.parametrize("command, output", CASES)
def test_outputs_streaming_equal_in_memory(files, tmp_path, capsys, command, output):
    results = []
    for mode in ("--in-memory", "--streaming"):
        path = None if output is None else tmp_path / mode.strip("-") / output
        if path is not None:
            path.parent.mkdir()
        argv = command.split() + [files["model"], files["parquet"], mode]
        status, out, err = _run(capsys, argv + ([] if path is None else ["--out", path]))
        assert (status, err) == (0, ""), err
        results.append(_output(path, out))
    assert results[0] == results[1]
    if output == "out.npy":
        assert np.load(io.BytesIO(results[0])).shape[0] == N_ROWS
    elif output == "out.csv.gz":
        text = gzip.decompress(results[0]).decode()
        assert len(text.splitlines()) == N_ROWS + 1


@pytest.mark.parametrize("output", [None, "out.csv", "out.npy", "out.parquet"])
def test_outputs_in_several_chunks(files, tmp_path, capsys, small_chunks, output):
    """Chunk by chunk: CSV and .npy the same bytes, Parquet the same table."""
    got = []
    for mode in ("--in-memory", "--streaming"):
        path = None if output is None else tmp_path / f"{mode.strip('-')}-{output}"
        argv = ["predict", files["model"], files["npy"], "--proba", mode]
        status, out, err = _run(capsys, argv + ([] if path is None else ["--out", path]))
        assert (status, err) == (0, "")
        got.append(out if path is None else path)
    if output == "out.parquet":
        streamed = pq.ParquetFile(got[1])
        assert streamed.metadata.num_row_groups == 3  # one per chunk
        pd.testing.assert_frame_equal(pd.read_parquet(got[1]), pd.read_parquet(got[0]))
        np.testing.assert_allclose(pd.read_parquet(got[1]).to_numpy().sum(axis=1), 1.0)
    elif output is None:
        assert got[0] == got[1]
        assert len(got[1].splitlines()) == N_ROWS + 1
    else:
        assert got[0].read_bytes() == got[1].read_bytes()


def test_score_mean_streaming_equals_in_memory(files, capsys):
    memory, streamed = _both(capsys, ["score", files["model"], files["csv"]])
    assert memory == streamed
    X = pd.read_csv(files["csv"])
    assert float(memory[1]) == pytest.approx(load(files["model"]).score(X), rel=1e-12)


def test_select_streaming_equals_in_memory(files, capsys):
    # More rows than the hierarchical stage takes: the seed draws the same subset.
    argv = ["select", files["csv"], "-G", "1:3", "-m", "EII,VVV", "--icl", "--digits", "6",
            "--seed", "0"]
    (s1, memory, e1), (s2, streamed, e2) = _both(capsys, argv)
    assert (s1, s2, e1, e2) == (0, 0, "", "")
    assert streamed == memory


def test_select_streaming_reads_through_the_source(files, monkeypatch):
    """select gets the stream itself, not an array."""
    import gaussmix._mclust.select as select_module

    seen = {}
    real = select_module.select

    def spy(X, **kwargs):
        seen["X"] = X
        return real(X, **kwargs)

    monkeypatch.setattr(select_module, "select", spy)
    assert main(["select", files["npy"], "-G", "2", "-m", "EII", "-q", "--streaming"]) == 0
    assert isinstance(seen["X"], gaussmix.Source) and not isinstance(seen["X"], np.ndarray)
    assert seen["X"].n_rows == N_ROWS


# ------------------------------------------------------------------ the automatic switch
def test_parse_size():
    assert parse_size("500M") == 500 << 20
    assert parse_size("4G") == parse_size("4GiB") == parse_size("4gb") == 4 << 30
    assert parse_size("1.5k") == 1536
    assert parse_size("1000") == 1000
    assert parse_size("0") == 0
    for bad in ("", "-1G", "G", "4X", "1e9", "lots"):
        with pytest.raises(BudgetError, match="GAUSSMIX_MEMORY_BUDGET"):
            parse_size(bad)


def test_data_size_from_headers_and_metadata(files, tmp_path):
    assert data_bytes(files["npy"]) == N_ROWS * 2 * 8
    assert data_bytes(files["parquet"]) == N_ROWS * 2 * 8
    assert data_bytes(files["parquet"], n_columns=1) == N_ROWS * 8
    assert data_bytes(files["csv"]) == os.path.getsize(files["csv"])
    assert data_bytes(tmp_path / "missing.npy") is None  # reading it will say why


@pytest.fixture
def opened(monkeypatch):
    """How many files were opened as streamed sources (a file read into memory is
    opened by the same reader, with keep=True, and read whole)."""
    calls = []
    real = sources.open_source

    def spy(*args, **kwargs):
        if not kwargs.get("keep"):
            calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(sources, "open_source", spy)
    return calls


@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_small_budget_streams(files, capsys, monkeypatch, opened, ext):
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "1K")
    status, out, _ = _run(capsys, ["fit", files[ext], "-k", "2", "--seed", "0"])
    assert status == 0 and f"row(s) streamed from {files[ext]}" in out
    assert opened == [files[ext]]
    # Forced into memory, the budget is not even read.
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "nonsense")
    status, out, _ = _run(capsys, ["fit", files[ext], "-k", "2", "--in-memory"])
    assert status == 0 and "row(s) from" in out and len(opened) == 1


def test_small_budget_streams_every_command(files, capsys, monkeypatch, opened):
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "39K")  # the data: 2500 x 2 x 8 bytes
    for argv in (["predict", files["model"], files["npy"]],
                 ["score", files["model"], files["npy"]],
                 ["select", files["npy"], "-G", "2", "-m", "EII", "-q"]):
        assert _run(capsys, argv)[0] == 0
    assert len(opened) == 3


def test_large_budget_reads_into_memory(files, capsys, monkeypatch, opened):
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "1G")
    status, out, _ = _run(capsys, ["fit", files["npy"], "-k", "2", "--seed", "0"])
    assert status == 0 and "row(s) from" in out
    assert _run(capsys, ["predict", files["model"], files["npy"]])[0] == 0
    assert opened == []
    # The budget is on the columns used: 2500 rows x 1 column = 20000 bytes.
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "30000")
    assert _run(capsys, ["fit", files["parquet"], "-k", "2", "--columns", "u"])[0] == 0
    assert opened == []
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "30000")
    assert _run(capsys, ["fit", files["parquet"], "-k", "2"])[0] == 0
    assert opened == [files["parquet"]]


def test_bad_budget_is_a_user_error(files, capsys, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_MEMORY_BUDGET", "4 apples")
    for argv in (["fit", files["csv"], "-k", "2"], ["score", files["model"], files["csv"]],
                 ["select", files["csv"], "-G", "2", "-m", "EII"]):
        status, out, err = _run(capsys, argv)
        assert status == 1 and out == ""
        assert "GAUSSMIX_MEMORY_BUDGET='4 apples' is not a size" in _one_error_line(err)


def test_streaming_and_in_memory_do_not_go_together(files, capsys):
    status, _, err = _run(capsys, ["fit", files["csv"], "-k", "2", "--streaming",
                                   "--in-memory"])
    assert status == 2 and "not allowed with" in _one_error_line(err)


# ------------------------------------------------------------------ bad input
def _fit_fails(capsys, tmp_path, argv):
    """Run a streamed fit that must fail: one error line, and no file written."""
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "model.gmm"
    status, stdout, err = _run(capsys, ["fit"] + argv + ["--streaming", "--out", out])
    assert status == 1 and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no model, no temporary
    return _one_error_line(err)


def test_missing_file(tmp_path, capsys):
    line = _fit_fails(capsys, tmp_path, [tmp_path / "nope.csv", "-k", "2"])
    assert f"{tmp_path / 'nope.csv'}: no such file" in line


@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_unknown_column(tmp_path, X, capsys, ext):
    path = _write(tmp_path / f"d.{ext}", X)
    line = _fit_fails(capsys, tmp_path, [path, "-k", "2", "--columns", "u,height"])
    assert path in line
    assert ("0-based indices below 2" if ext == "npy" else
            "unknown column 'height'; the columns are 'u', 'v'") in line


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_non_numeric_column(tmp_path, X, capsys, ext):
    frame = pd.DataFrame(X, columns=["u", "v"])
    frame["species"] = "setosa"
    path = str(tmp_path / f"d.{ext}")
    frame.to_parquet(path) if ext == "parquet" else frame.to_csv(path, index=False)
    line = _fit_fails(capsys, tmp_path, [path, "-k", "2"])
    assert f"{path}: column 'species' is not numeric" in line
    assert "pick numeric columns" in line
    # The numeric columns alone are fine.
    assert _run(capsys, ["fit", path, "-k", "2", "--columns", "u,v", "--streaming"])[0] == 0


@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_missing_value_in_the_middle(tmp_path, X, capsys, small_chunks, ext):
    bad = X.copy()
    bad[1500, 1] = np.nan
    path = _write(tmp_path / f"d.{ext}", bad)
    line = _fit_fails(capsys, tmp_path, [path, "-k", "2"])
    assert path in line and "(first: data row 1501)" in line and "Remove or impute" in line


@pytest.mark.parametrize("command", ["predict", "score", "select"])
def test_other_commands_name_the_bad_file(files, tmp_path, X, capsys, small_chunks,
                                          command):
    bad = X.copy()
    bad[1500, 0] = np.inf
    bad_path = _write(tmp_path / "bad.npy", bad)
    missing = str(tmp_path / "nope.parquet")
    for path, message in ((missing, f"{missing}: no such file"),
                          (bad_path, f"{bad_path}: 1 row has missing or non-finite values "
                                     "among data rows 1025-2048 (first: data row 1501)")):
        argv = {"predict": ["predict", files["model"], path, "--out", tmp_path / "o.csv"],
                "score": ["score", files["model"], path, "--per-row", "--out",
                          tmp_path / "o.csv"],
                "select": ["select", path, "-G", "2", "-m", "EII"]}[command]
        status, out, err = _run(capsys, argv + ["--streaming"])
        assert status == 1 and out == "" and message in _one_error_line(err)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy"]


def _rewrite_during_fit(monkeypatch, path, X, hook):
    """Rewrite ``path`` (two more rows) the first time the fit calls ``hook``."""
    real = getattr(GaussianMixture, hook)
    done = []

    def rewrite(self, *args):
        if not done:
            done.append(True)
            _write(path, np.vstack([X, X[:2]]))
        return real(self, *args)

    monkeypatch.setattr(GaussianMixture, hook, rewrite)
    return done


@pytest.mark.parametrize("ext", ["csv", "npy"])
def test_file_changed_between_passes(tmp_path, X, capsys, monkeypatch, ext):
    path = _write(tmp_path / f"d.{ext}", X)
    # After the first EM iteration: the next pass finds another file.
    done = _rewrite_during_fit(monkeypatch, path, X, "_print_verbose_msg_iter_end")
    line = _fit_fails(capsys, tmp_path, [path, "-k", "2", "--tol", "0", "--no-progress"])
    assert done and f"{path}: the file changed since it was opened" in line


def test_predict_errors_leave_no_output(files, tmp_path, X, capsys, small_chunks):
    far = X.copy()
    far[2000] = 1e200
    path = _write(tmp_path / "far.npy", far)
    for out in ("labels.csv", "labels.parquet", "labels.npy", "labels.csv.gz"):
        status, _, err = _run(capsys, ["predict", files["model"], path, "--streaming",
                                       "--out", tmp_path / out])
        assert status == 1
        line = _one_error_line(err)
        # Found in the second chunk, numbered in the file.
        assert f"{path}: data row 2001 is out of the model's range" in line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["far.npy"]
    status, _, err = _run(capsys, ["score", files["model"], path, "--streaming"])
    assert status == 1 and "data row 2001 is out" in _one_error_line(err)


@pytest.mark.parametrize("make", ["missing column", "more columns", "other names"])
def test_model_columns_messages_as_in_memory(files, tmp_path, X, capsys, make):
    if make == "missing column":
        path = _write(tmp_path / "d.csv", X, names=("u", "w"))
        argv = []
    elif make == "more columns":
        path = _write(tmp_path / "d.npy", np.hstack([X, X]))
        argv = []
    else:  # --columns: matched to the model's features by position
        path = _write(tmp_path / "d.parquet", X, names=("a", "b"))
        argv = ["--columns", "b,a"]
    memory, streamed = _both(capsys, ["predict", files["model"], path] + argv)
    assert memory == streamed
    if make == "other names":
        assert memory[0] == 0
    else:
        assert memory[0] == 1 and _one_error_line(memory[2])


# ------------------------------------------------------------------ progress
def test_progress_bars(files, tmp_path, capsys):
    status, _, err = _run(capsys, ["fit", files["csv"], "-k", "2", "--streaming",
                                   "--progress", "--max-iter", "3", "--tol", "0"])
    assert status == 0
    for text in ("fit pass 1", "rows/s", "log-lik", "after iteration 2"):
        assert text in err
    status, _, err = _run(capsys, ["predict", files["model"], files["npy"], "--streaming",
                                   "--progress", "--out", tmp_path / "l.csv"])
    assert status == 0 and "predict pass 1" in err and "100%" in err
    status, _, err = _run(capsys, ["score", files["model"], files["npy"], "--streaming",
                                   "--progress"])
    assert status == 0 and "score pass 1" in err and "rows/s" in err
    status, _, err = _run(capsys, ["select", files["npy"], "-G", "2", "-m", "EII,VII",
                                   "-q", "--streaming", "--progress"])
    assert status == 0 and "select (rows read)" in err and "2/2" in err
    # Not a terminal: no bar unless asked for.
    for argv in (["fit", files["csv"], "-k", "2"], ["score", files["model"], files["npy"]]):
        assert _run(capsys, argv + ["--streaming"])[2] == ""


def test_pass_bars_are_a_source(files):
    from gaussmix._cli_stream import PassBars

    source = gaussmix.read_parquet(files["parquet"])
    bars = PassBars(source, "test", show=False)
    assert isinstance(bars, gaussmix.Source)
    assert (bars.n_rows, bars.n_features, bars.feature_names, bars.path) == \
        (N_ROWS, 2, ["u", "v"], source.path)
    np.testing.assert_array_equal(bars.to_numpy(), source.to_numpy())
    a = bars.sample(100, np.random.default_rng(3))
    b = source.sample(100, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.X, b.X)
    assert bars.passes == 2
    renamed = PassBars(source, "test", show=False, feature_names=["x", "y"])
    assert renamed.feature_names == ["x", "y"]
