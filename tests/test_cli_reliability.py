"""Every ``gaussmix`` subcommand against generated bad input (issue 17, "Command line").

The contract (docs/cli.md, *Errors and exit status*): whatever the data file holds and
whatever the option values are, a command returns 0, 1 for a user error, or 2 for a
command line that argparse refuses; a failure prints exactly one line on stderr, starting
``gaussmix: error:``; a success prints nothing on stderr but ``gaussmix: warning:`` lines;
no traceback ever; and input files are only read (same bytes, same mtime).

The examples of the outside run that found the class are explicit tests at the end.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaussmix.cli import main

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# ------------------------------------------------------------------ the contract


def _snapshot(paths):
    return {p: (Path(p).read_bytes(), os.stat(p).st_mtime_ns)
            for p in paths if os.path.isfile(p)}


def check(argv, capsys, inputs=()):
    """Run ``gaussmix argv``; assert the contract; return (status, stdout, stderr)."""
    before = _snapshot(inputs)
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status in (0, 1, 2), (argv, status, err)
    assert "Traceback" not in out + err, (argv, err)
    lines = err.splitlines()
    if status == 0:
        assert all(line.startswith("gaussmix: warning: ") for line in lines), (argv, err)
    else:
        assert len(lines) == 1 and lines[0].startswith("gaussmix: error: "), (argv, err)
        # 2 is argparse's alone: its messages point at --help, user errors do not.
        assert (status == 2) == ("--help')" in lines[0]), (argv, status, err)
    assert _snapshot(inputs) == before, f"{argv}: an input file changed"
    return status, out, err


# ------------------------------------------------------------------ fixtures


def _blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (n // 2, 2)), rng.normal(5, 1, (n - n // 2, 2))])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="module")
def models(workdir):
    """Two model files: fitted on a CSV with names a, b, and on an .npy without."""
    csv, npy = workdir / "good.csv", workdir / "good.npy"
    pd.DataFrame(_blobs(), columns=["a", "b"]).to_csv(csv, index=False)
    np.save(npy, _blobs())
    named, bare = workdir / "named.gmm", workdir / "bare.gmm"
    assert main(["fit", str(csv), "-k", "2", "--seed", "0", "--out", str(named)]) == 0
    assert main(["fit", str(npy), "-k", "2", "--seed", "0", "--out", str(bare)]) == 0
    return {"named": str(named), "bare": str(bare), "csv": str(csv), "npy": str(npy)}


def _new_dir(workdir):
    return tempfile.mkdtemp(dir=workdir)


# ------------------------------------------------------------------ generated data files

CELLS = ["1", "-2.5", "0", "3e2", "nan", "NaN", "inf", "-inf", "NA", "", " ", "x",
         "1e200", "1e400", "-1e308", '"', "'", "1,5", "\t", "True", "0x1f", "\x00"]
HEADERS = ["a,b", "a,a", "b,a", "a", "a,b,c", ",", "1,2", "a,,b", "a,b,a.1", ""]


@st.composite
def csv_bytes(draw):
    n_cols = draw(st.integers(1, 3))
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=n_cols - 1,
                                  max_size=n_cols + 1), max_size=6))
    text = "\n".join(",".join(r) for r in rows)
    header = draw(st.sampled_from(HEADERS + [None]))
    if header is not None:
        text = header + "\n" + text
    return text.encode("utf-8", "surrogatepass")


def _zip(raw):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", raw)
    return buffer.getvalue()


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zip": _zip}


@st.composite
def damaged_archive(draw):
    """A compressed CSV cut short or with one byte changed."""
    suffix = draw(st.sampled_from(sorted(COMPRESSORS)))
    raw = pd.DataFrame(_blobs(30), columns=["a", "b"]).to_csv(index=False).encode()
    data = COMPRESSORS[suffix](raw)
    if draw(st.booleans()):
        data = data[:draw(st.integers(1, len(data) - 1))]
    else:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return ".csv" + suffix, data


def _npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


NPY_ARRAYS = [
    np.zeros(3, dtype=[("a", "f8"), ("b", "f8")]),      # structured
    np.array([1.0, "a", None], dtype=object),           # objects (needs pickle)
    np.float64(3.0),                                    # 0-d
    np.zeros((2, 3, 4)),                                # 3-d
    np.empty((0, 2)), np.empty((0,)), np.empty((5, 0)),  # empty
    np.zeros((4, 2), dtype=complex), np.array([["1", "2"]]),
    np.array([[1.0, np.nan], [2.0, 3.0]]), np.array([[np.inf, 1.0]]),
    np.full((3, 2), 1e200), np.full((3, 2), 1e308), np.ones((1, 2)),
    np.zeros((4, 2), dtype=bool), np.full((3, 2), 2**64 - 1, dtype=np.uint64),
    np.ones((5, 2), dtype=np.float16), np.ones((6, 1)), np.ones((6, 3)),
]


@st.composite
def npy_file(draw):
    array = draw(st.sampled_from(NPY_ARRAYS))
    data = _npy(array, allow_pickle=array.dtype == object)
    if draw(st.integers(0, 3)) == 0:  # sometimes cut short
        data = data[:draw(st.integers(0, len(data)))]
    return ".npy", data


def _parquet(table):
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


PARQUET_TABLES = [
    pa.table([pa.array([1.0, 2, 3]), pa.array([4.0, 5, 6])], names=["a", "a"]),
    pa.table({"a": pa.array(["x", "y"]), "b": pa.array(["z", "w"])}),
    pa.table({"a": pa.array([1.0, None, 3.0]), "b": pa.array([1.0, 2.0, 3.0])}),
    pa.table({"a": pa.array([], pa.float64()), "b": pa.array([], pa.float64())}),
    pa.table({"a": pa.array([True, False]), "b": pa.array([1.0, 2.0])}),
    pa.table({"a": pa.array([1e200, 2e200]), "b": pa.array([1.0, 2.0])}),
    pa.table({"b": pa.array([1.0, 2.0, 4.0]), "a": pa.array([3, 1, 2])}),
]


@st.composite
def parquet_file(draw):
    data = _parquet(draw(st.sampled_from(PARQUET_TABLES)))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data) - 1))]
    return ".parquet", data


data_files = st.one_of(
    st.tuples(st.sampled_from([".csv", ".tsv", ".txt", ".csv.gz", ".csv.bz2", ".csv.xz",
                               ".csv.zip", ".parquet", ".npy", ".dat", ""]),
              st.binary(max_size=64)),                        # random bytes
    st.tuples(st.sampled_from([".csv", ".tsv", ".parquet", ".npy", ".csv.gz"]),
              st.just(b"")),                                   # empty files
    st.tuples(st.sampled_from([".csv", ".tsv", ".csv.gz"]), csv_bytes()).map(
        lambda t: (t[0], gzip.compress(t[1]) if t[0].endswith(".gz") else
                   t[1].replace(b",", b"\t") if t[0] == ".tsv" else t[1])),
    damaged_archive(), npy_file(), parquet_file(),
)


def _write(workdir, suffix, data):
    path = os.path.join(_new_dir(workdir), "data" + suffix)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ------------------------------------------------------------------ properties


@SETTINGS
@given(file=data_files, header=st.sampled_from([[], ["--header"], ["--no-header"]]),
       fmt=st.sampled_from([[], [], ["--format", "csv"], ["--format", "npy"]]))
def test_fit_and_select_on_generated_files(workdir, capsys, file, header, fmt):
    path = _write(workdir, *file)
    check(["fit", path, "-k", "1", "--max-iter", "5", *header, *fmt], capsys, [path])
    check(["select", path, "-G", "1", "-m", "EII", "-q", *header, *fmt], capsys, [path])


@SETTINGS
@given(file=data_files, which=st.sampled_from(["named", "bare"]),
       columns=st.sampled_from([[], ["--columns", "a,b"], ["--columns", "1,0"]]))
def test_predict_and_score_on_generated_files(workdir, models, capsys, file, which,
                                              columns):
    path = _write(workdir, *file)
    model = models[which]
    inputs = [path, model]
    check(["predict", model, path, *columns], capsys, inputs)
    check(["predict", model, path, "--proba", *columns], capsys, inputs)
    status, out, _ = check(["score", model, path, *columns], capsys, inputs)
    if status == 0:
        assert np.isfinite(float(out))  # never nan, never inf
    status, out, _ = check(["score", model, path, "--per-row", *columns], capsys, inputs)
    if status == 0:
        assert np.isfinite(pd.read_csv(io.StringIO(out))["log_likelihood"]).all()


@settings(SETTINGS, max_examples=20)
@given(file=data_files)
def test_plot_on_generated_files(workdir, models, capsys, file):
    path = _write(workdir, *file)
    out = os.path.join(os.path.dirname(path), "fig.png")
    check(["plot", models["named"], path, "--out", out, "--dpi", "20"], capsys,
          [path, models["named"]])


BAD_NUMBERS = ["-1", "0", "-0", "1.5", "nan", "inf", "-inf", "1e400", "abc", "", " ",
               "0x10", "2**63", "9223372036854775808", "1" + "0" * 30, "1" * 5000]
ALWAYS_INVALID = ["-1", "nan", "inf", "-inf", "1e400", "abc", "", " ", "0x10", "2**63",
                  "1" * 5000]
# Values that parse but are huge: they must fail cleanly, not run out of memory.
HUGE = ["9223372036854775807", "1" + "0" * 15]


@SETTINGS
@given(option=st.sampled_from([("fit", "-k"), ("fit", "--max-iter"), ("fit", "--tol"),
                               ("fit", "--n-init"), ("fit", "--reg-covar"),
                               ("fit", "--seed"), ("sample", "-n"), ("sample", "--seed"),
                               ("plot", "--dpi"), ("plot", "--dims"),
                               ("select", "-G"), ("select", "--tol"),
                               ("select", "--seed"), ("select", "--digits"),
                               ("demo", "--seed"), ("demo", "--n-samples"),
                               ("demo", "--components"), ("demo", "--steps")]),
       value=st.sampled_from(BAD_NUMBERS) | st.text(max_size=8))
def test_bad_option_values(workdir, models, capsys, option, value):
    command, flag = option
    if value not in BAD_NUMBERS:
        # Generated text, made a negative number or not a number at all: a value that
        # parses must not start a long run (a demo, a million initialisations).
        value = "-" + value
    data, model = models["csv"], models["named"]
    out = os.path.join(_new_dir(workdir), "out.png")
    argv = {
        "fit": ["fit", data, "-k", "1", "--max-iter", "3"],
        "sample": ["sample", model, "-n", "3"],
        "plot": ["plot", model, data, "--out", out, "--dpi", "20"],
        "select": ["select", data, "-G", "1", "-m", "EII", "-q"],
        "demo": ["demo", "--out", os.path.dirname(out), "--steps", "0",
                 "--n-samples", "3", "--components", "1"],
    }[command]
    values = [value, "0"] if flag == "--dims" else [value]
    status, _, err = check(argv + [flag, *values], capsys, [data, model])
    if value in ALWAYS_INVALID:
        assert status == 2 and flag in err


@SETTINGS
@given(n=st.sampled_from(HUGE + ["1" + "0" * 30, str(2**64)]),
       labels=st.booleans())
def test_sample_huge_n(models, capsys, n, labels):
    status, out, _ = check(["sample", models["named"], "-n", n]
                           + (["--labels"] if labels else []), capsys, [models["named"]])
    assert status in (1, 2) and out == ""


@SETTINGS
@given(data=st.binary(max_size=200))
def test_model_file_of_random_bytes(workdir, models, capsys, data):
    model = _write(workdir, ".gmm", data)
    for argv in (["predict", model, models["csv"]], ["score", model, models["csv"]],
                 ["sample", model, "-n", "2"]):
        assert check(argv, capsys, [model, models["csv"]])[0] == 1


# ------------------------------------------------------------------ the reported examples


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_compressed_csv(workdir, capsys, suffix, damage):
    raw = pd.DataFrame(_blobs(), columns=["a", "b"]).to_csv(index=False).encode()
    data = COMPRESSORS[suffix](raw)
    data = data[: len(data) // 2] if damage == "truncated" else data[:10] + b"\xff" * 40
    path = _write(workdir, ".csv" + suffix, data)
    for argv in (["fit", path, "-k", "1"], ["select", path, "-G", "1"]):
        status, _, err = check(argv, capsys, [path])
        assert status == 1 and path in err


def test_parquet_with_duplicate_column_names(workdir, capsys):
    path = _write(workdir, ".parquet", _parquet(PARQUET_TABLES[0]))
    for argv in (["fit", path, "-k", "1"], ["select", path, "-G", "1"]):
        status, _, err = check(argv, capsys, [path])
        assert status == 1 and "'a' appears more than once" in err


def test_csv_with_duplicate_column_names(workdir, capsys):
    path = _write(workdir, ".csv", b"a,a\n1,2\n3,4\n5,7\n")
    status, _, err = check(["fit", path, "-k", "1"], capsys, [path])
    assert status == 1 and "'a' appears more than once" in err


def test_sample_n_10_to_the_30(models, capsys):
    status, out, err = check(["sample", models["named"], "-n", str(10**30)], capsys,
                             [models["named"]])
    assert status == 2 and "-n/--n-samples" in err and out == ""


def test_sample_more_rows_than_memory(models, capsys):
    status, out, err = check(["sample", models["named"], "-n", str(2**62)], capsys)
    assert status == 1 and "memory" in err and out == ""


@pytest.mark.parametrize("name, data", [
    ("empty.csv", b""),
    ("empty.npy", _npy(np.empty((0, 2)))),
    ("structured.npy", _npy(np.zeros(3, dtype=[("a", "f8"), ("b", "f8")]))),
])
def test_select_on_unusable_files(workdir, capsys, name, data):
    path = os.path.join(_new_dir(workdir), name)
    with open(path, "wb") as f:
        f.write(data)
    status, _, err = check(["select", path], capsys, [path])
    # fit's message, word for word (one reader for every command)
    assert status == 1 and err == check(["fit", path, "-k", "1"], capsys, [path])[2]
    assert err.startswith(f"gaussmix: error: {path}: ")


def test_select_unreadable_file_exits_1_like_fit(workdir, capsys):
    missing = os.path.join(_new_dir(workdir), "missing.csv")
    assert check(["select", missing], capsys)[0] == 1
    assert check(["fit", missing, "-k", "1"], capsys)[0] == 1


def test_score_of_a_row_out_of_range(workdir, models, capsys):
    path = _write(workdir, ".csv", b"a,b\n0,1\n1e200,1e200\n")
    inputs = [path, models["named"]]
    for extra in ([], ["--per-row"]):
        status, out, err = check(["score", models["named"], path, *extra], capsys, inputs)
        assert status == 1 and out == ""
        assert "data row 2" in err and "out of the model's range" in err
    for argv in (["predict", models["named"], path],
                 ["predict", models["named"], path, "--proba"]):
        status, out, err = check(argv, capsys, inputs)
        assert status == 1 and out == "" and "data row 2" in err


@pytest.mark.parametrize("tol", ["-1", "nan", "inf", "-inf"])
def test_select_tol_is_checked_while_parsing(models, capsys, tol):
    status, _, err = check(["select", models["csv"], "--tol", tol], capsys,
                           [models["csv"]])
    assert status == 2 and "--tol" in err


@pytest.mark.parametrize("argv", [["-G", "0"], ["-G", "-3"], ["-G", "1:" + "9" * 40],
                                  ["--digits", "-1"], ["--digits", "1000"],
                                  ["--seed", "-1"], ["--seed", str(2**32)]])
def test_select_options_are_checked_while_parsing(models, capsys, argv):
    status, _, err = check(["select", models["csv"], *argv], capsys, [models["csv"]])
    assert status == 2 and argv[0] in err


def test_select_plot_never_overwrites_the_input(workdir, models, capsys):
    path = os.path.join(_new_dir(workdir), "data.png")
    with open(models["csv"], "rb") as f, open(path, "wb") as g:
        g.write(f.read())
    status, _, err = check(["select", path, "--format", "csv", "-G", "1", "-m", "EII",
                            "--plot", path], capsys, [path])
    assert status == 1 and "never overwritten" in err


def test_demo_too_few_samples_is_a_user_error(workdir, capsys):
    status, _, err = check(["demo", "--n-samples", "2", "--components", "3", "--out",
                            _new_dir(workdir)], capsys)
    assert status == 1 and "--n-samples" in err
