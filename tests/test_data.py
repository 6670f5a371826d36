"""Reading data files: CSV (header detection, --columns), Parquet, .npy, and bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaussmix._files.data import DataError, detect_format, parse_columns
from gaussmix._files.sources import read_data

RNG = np.random.default_rng(0)
VALUES = np.round(RNG.normal(size=(12, 3)) * 10, 6)


def _csv(path, text):
    path.write_text(text)
    return path


def _numbers(values, sep=","):
    return "".join(sep.join(repr(float(v)) for v in row) + "\n" for row in values)


def test_csv_with_header(tmp_path):
    path = _csv(tmp_path / "d.csv", "a,b,c\n" + _numbers(VALUES))
    table = read_data(path)
    assert table.names == ["a", "b", "c"]
    # np.loadtxt is an independent reader of the same text.
    np.testing.assert_array_equal(table.values, np.loadtxt(path, delimiter=",", skiprows=1))
    assert table.values.dtype == np.float64


def test_csv_without_header(tmp_path):
    path = _csv(tmp_path / "d.csv", _numbers(VALUES))
    table = read_data(path)
    assert table.names is None
    np.testing.assert_array_equal(table.values, VALUES)


def test_header_is_detected_above_an_unlabelled_text_column(tmp_path):
    # iris without a header: the species column is text all the way down; the first
    # line is data, not a header.
    body = "".join(f"{r[0]},{r[1]},setosa\n" for r in VALUES)
    path = _csv(tmp_path / "iris.csv", body)
    with pytest.raises(DataError, match=r"column 2 \(0-based\) is not numeric.*--columns"):
        read_data(path)
    table = read_data(path, columns=["0", "1"])
    assert table.names is None
    np.testing.assert_array_equal(table.values, VALUES[:, :2])
    # With a header, the same file is read by name.
    path = _csv(tmp_path / "iris_h.csv", "x,y,species\n" + body)
    table = read_data(path, columns=["y", "x"])
    assert table.names == ["y", "x"]
    np.testing.assert_array_equal(table.values, VALUES[:, [1, 0]])


def test_numeric_looking_header_can_be_forced(tmp_path):
    path = _csv(tmp_path / "years.csv", "1990,2000\n1,2\n3,4\n")
    assert read_data(path).values.shape == (3, 2)
    table = read_data(path, header=True)
    assert table.names == ["1990", "2000"]
    np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])
    text = _csv(tmp_path / "text.csv", "a,b\n1,2\n")
    assert read_data(text, header=True).names == ["a", "b"]
    with pytest.raises(DataError, match="not numeric"):
        read_data(text, header=False)


def test_tsv_and_compressed_csv(tmp_path):
    tsv = _csv(tmp_path / "d.tsv", "a\tb\tc\n" + _numbers(VALUES, "\t"))
    np.testing.assert_array_equal(read_data(tsv).values, VALUES)
    gz = tmp_path / "d.csv.gz"
    with gzip.open(gz, "wt") as f:
        f.write("a,b,c\n" + _numbers(VALUES))
    table = read_data(gz)
    assert table.names == ["a", "b", "c"]
    np.testing.assert_array_equal(table.values, VALUES)


def test_columns_by_name_and_unknown_column(tmp_path):
    path = _csv(tmp_path / "d.csv", "a,b,c\n" + _numbers(VALUES))
    table = read_data(path, columns=parse_columns(["c,a"]))
    assert table.names == ["c", "a"]
    np.testing.assert_array_equal(table.values, VALUES[:, [2, 0]])
    with pytest.raises(DataError, match=r"unknown column 'z'; the columns are 'a', 'b', 'c'"):
        read_data(path, columns=["z"])
    with pytest.raises(DataError, match="twice"):
        read_data(path, columns=["a", "a"])
    nohead = _csv(tmp_path / "n.csv", _numbers(VALUES))
    with pytest.raises(DataError, match="0-based indices below 3"):
        read_data(nohead, columns=["3"])


def test_default_columns_must_all_be_present(tmp_path):
    path = _csv(tmp_path / "d.csv", "a,b,label\n1,2,x\n3,4,y\n")
    table = read_data(path, default_columns=["b", "a"])
    assert table.names == ["b", "a"]
    np.testing.assert_array_equal(table.values, [[2, 1], [4, 3]])
    # A model's column missing is the problem, not the text in another column.
    with pytest.raises(DataError, match="lacks column.s. 'zz' that the model was fitted"):
        read_data(path, default_columns=["a", "zz"])
    assert read_data(path, columns=["a"], default_columns=["b"]).names == ["a"]
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0], "s": ["x"], "b": [2.0]}), parquet)
    assert read_data(parquet, default_columns=["b", "a"]).names == ["b", "a"]


def test_a_table_without_any_numeric_column(tmp_path):
    path = _csv(tmp_path / "text.csv", "a,b\nx,y\nz,w\n")
    with pytest.raises(DataError, match="no numeric column: column 'a' has 'x' in row 1"):
        read_data(path)
    with pytest.raises(DataError, match="column 'b' is not numeric"):
        read_data(path, columns=["b"])  # a chosen column: named as such
    parquet = tmp_path / "text.parquet"
    pq.write_table(pa.table({"s": ["x", "y"]}), parquet)
    with pytest.raises(DataError, match="no numeric column: column 's' has type string"):
        read_data(parquet)


def test_parse_columns():
    assert parse_columns(None) is None
    assert parse_columns(["a,b", "c", " d "]) == ["a", "b", "c", "d"]
    with pytest.raises(DataError):
        parse_columns([","])


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    table = pa.table({"a": VALUES[:, 0], "b": VALUES[:, 1].astype(np.float32),
                      "n": np.arange(12, dtype=np.int32), "s": ["x"] * 12})
    pq.write_table(table, path)
    got = read_data(path, columns=["n", "a", "b"])
    assert got.names == ["n", "a", "b"]
    np.testing.assert_array_equal(got.values[:, 0], np.arange(12))
    np.testing.assert_array_equal(got.values[:, 1], VALUES[:, 0])
    np.testing.assert_array_equal(got.values[:, 2], VALUES[:, 1].astype(np.float32))
    with pytest.raises(DataError, match="column 's' is not numeric"):
        read_data(path)
    with pytest.raises(DataError, match="unknown column 'zz'"):
        read_data(path, columns=["zz"])
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"a": pa.array([1.0, None, 3.0])}), nulls)
    with pytest.raises(DataError, match="first: data row 2"):
        read_data(nulls)


def test_npy(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, VALUES.astype(np.float32))
    table = read_data(path)
    assert table.names is None
    np.testing.assert_array_equal(table.values, VALUES.astype(np.float32))
    np.testing.assert_array_equal(read_data(path, columns=["2", "0"]).values,
                                  VALUES.astype(np.float32)[:, [2, 0]])
    one_d = tmp_path / "one.npy"
    np.save(one_d, np.arange(5))
    assert read_data(one_d).values.shape == (5, 1)


@pytest.mark.parametrize("array, fragment", [
    (np.zeros((2, 2, 2)), "expected 2-D"),
    (np.array(["a", "b"]), "not numeric"),
    (np.zeros(3, dtype=[("x", "f8"), ("y", "f8")]), "not numeric"),
    (np.array([[1.0, np.nan], [1.0, 2.0]]), "first: data row 1"),
])
def test_bad_npy(tmp_path, array, fragment):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=fragment):
        read_data(path)


def test_npy_with_objects_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npy"
    np.save(path, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never unpickles"):
        read_data(path)
    assert not marker.exists()
    npz = tmp_path / "arch.npy"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(DataError, match="npz"):
        read_data(npz)


@pytest.mark.parametrize("name, text, fragment", [
    ("empty.csv", "", "the file is empty"),
    ("blank.csv", "\n\n", "the file is empty"),
    ("header_only.csv", "a,b\n", "no data rows"),
    ("text.csv", "a,b\n1,2\n3,oops\n", r"column 'b' is not numeric: row 2 has 'oops'"),
    ("nan.csv", "a,b\n1,2\n3,\n5,NA\n", r"2 rows have missing .* \(first: data row 2\)"),
    ("inf.csv", "a,b\n1,inf\n", "non-finite"),
    ("short.csv", "a,b,c\n1,2,3\n4,5\n", "ragged rows: line 3 has 2 fields, expected 3"),
    ("long.csv", "a,b\n1,2\n3,4,5\n", "ragged rows: line 3 has 3 fields, expected 2"),
    ("long_all.csv", "a,b\n1,2,3\n4,5,6\n", "ragged rows"),
    ("long_nohead.csv", "1,2\n3,4,5\n", "ragged rows: line 2 has 3 fields"),
    ("data.xyz", "1,2\n", "cannot tell the format"),
])
def test_bad_csv(tmp_path, name, text, fragment):
    path = _csv(tmp_path / name, text)
    with pytest.raises(DataError, match=fragment) as info:
        read_data(path)
    assert str(path) in str(info.value)


def test_binary_garbage_with_csv_name(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError):
        read_data(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_data(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="directory"):
        read_data(tmp_path)


def test_not_parquet_or_npy(tmp_path):
    fake = _csv(tmp_path / "fake.parquet", "a,b\n1,2\n")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        read_data(fake)
    fake = _csv(tmp_path / "fake.npy", "a,b\n1,2\n")
    with pytest.raises(DataError, match="not a valid .npy"):
        read_data(fake)
    assert read_data(fake, format="csv").names == ["a", "b"]


def test_detect_format():
    assert detect_format("x.CSV") == "csv"
    assert detect_format("dir.v2/x.tsv.gz") == "tsv"
    assert detect_format("x.pq") == "parquet"
    assert detect_format("x.npy") == "npy"
