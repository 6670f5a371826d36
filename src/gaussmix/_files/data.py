"""Reading data files for the command line: CSV, Parquet and NumPy ``.npy``.

One reader serves every command, in memory or streamed: the file sources of
:mod:`gaussmix._files.sources` (PyArrow for CSV and Parquet, NumPy for ``.npy``);
:func:`~gaussmix._files.sources.read_data` reads one whole. This module holds what they
share: the format, whether a CSV has a header, which columns to keep, and one
:class:`DataError` whose message names the file and the problem for every way a file
can be unusable (missing, empty, ragged, non-numeric, with missing values). Files are only ever opened for
reading; ``.npy`` files are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import lzma
import os
import re
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from .._errors import DataError  # noqa: F401  (defined there, raised here)

FORMATS = ("csv", "tsv", "parquet", "npy")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")

# What the decompressors raise for a truncated or corrupt archive (gzip's BadGzipFile
# and bz2's errors are OSErrors): EOFError for a stream cut short, zlib.error for a bad
# deflate stream (also inside a .zip), LZMAError for .xz, BadZipFile for a damaged .zip.
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


@dataclass
class Table:
    """Numeric data read from a file.

    Attributes
    ----------
    values : ndarray of shape (n_rows, n_columns), float64
    names : list of str or None
        Column names, or None when the file has none (CSV without header, ``.npy``).
    path : str
    """

    values: np.ndarray
    names: list[str] | None
    path: str

    def frame(self):
        """The data as a pandas DataFrame (string column names) or the bare array."""
        if self.names is None:
            return self.values
        import pandas as pd

        return pd.DataFrame(self.values, columns=self.names, copy=False)


def detect_format(path: str) -> str:
    """The format of ``path`` from its extension: 'csv', 'tsv', 'parquet' or 'npy'."""
    name = os.path.basename(path).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    ext = os.path.splitext(name)[1]
    formats = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv",
               ".parquet": "parquet", ".pq": "parquet", ".npy": "npy"}
    if ext in formats:
        return formats[ext]
    raise DataError(
        f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
        f"use .csv, .tsv, .parquet or .npy, or pass --format"
    )


def parse_columns(specs) -> list[str] | None:
    """``--columns`` values (repeated and/or comma-separated) as one list of names."""
    if not specs:
        return None
    out = [part.strip() for spec in specs for part in str(spec).split(",")]
    out = [c for c in out if c]
    if not out:
        raise DataError("--columns: no column given")
    return out


def check_path(path, format=None) -> tuple[str, str]:
    """``path`` as a string and its format, after checking it is a non-empty file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty")
    return path, fmt


def _resolve_columns(path, columns, names, n_columns) -> list[int]:
    """Positions of the requested columns (names first, then 0-based indices)."""
    positions = []
    for col in columns:
        if names is not None and col in names:
            positions.append(names.index(col))
        elif names is None and re.fullmatch(r"\d+", col) and int(col) < n_columns:
            positions.append(int(col))
        else:
            if names is None:
                raise DataError(
                    f"{path}: unknown column {col!r}: the file has no column names, so "
                    f"give 0-based indices below {n_columns}"
                )
            shown = ", ".join(repr(n) for n in names[:20])
            more = f", ... ({len(names)} in all)" if len(names) > 20 else ""
            raise DataError(f"{path}: unknown column {col!r}; the columns are {shown}{more}")
    if len(set(positions)) != len(positions):
        raise DataError(f"{path}: a column is selected twice in --columns")
    return positions


def excluding(path, exclude, names, n_columns) -> list[str]:
    """The columns left (names, or 0-based positions as text for a file without names)
    when those of ``exclude`` are left out (``--exclude``)."""
    drop = set(_resolve_columns(path, exclude, names, n_columns))
    kept = [j for j in range(n_columns) if j not in drop]
    if not kept:
        raise DataError(f"{path}: --exclude leaves no column")
    return [str(j) if names is None else names[j] for j in kept]


def _is_number(text: str) -> bool:
    """Whether a field reads as a number (booleans count: they are read as 0 and 1)."""
    if text.lower() in ("true", "false"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_header(rows) -> bool:
    """Whether the first of ``rows`` (a CSV's first two lines, as lists of fields) is a
    header: text over a number somewhere, or no number at all."""
    first = [v.strip() for v in rows[0]]
    if len(rows) < 2:
        return any(v and not _is_number(v) for v in first)
    second = [v.strip() for v in rows[1]]
    if any(a and not _is_number(a) and _is_number(b) for a, b in zip(first, second)):
        return True
    return all(a and not _is_number(a) for a in first)


def _check_unique(path, names) -> None:
    """Refuse repeated column names: a name must pick one column."""
    seen = set()
    for name in names:
        if name and name in seen:
            raise DataError(f"{path}: column name {name!r} appears more than once; "
                            "give every column its own name")
        seen.add(name)


def _defaults(path, columns, names, default_columns):
    """The columns to read: ``columns`` if given, else a model's (``default_columns``)
    when the file has column names, which must then include all of them."""
    if columns is None and default_columns is not None and names is not None:
        missing = [c for c in default_columns if c not in names]
        if missing:
            # Said before any column is read: another column's text is beside the point.
            shown = ", ".join(repr(c) for c in missing[:10])
            more = f" ({len(missing)} in all)" if len(missing) > 10 else ""
            raise DataError(f"{path}: lacks column(s) {shown}{more} that the model was "
                            "fitted on; pick the columns with --columns")
        return list(default_columns)
    return columns


def parquet_columns(path, columns, default_columns=None) -> list[str]:
    """The names of the Parquet columns to read, checked: they exist, are unique and
    numeric (integer, floating point, decimal, or boolean: read as 0 and 1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None
    names = list(schema.names)
    _check_unique(path, names)
    columns = _defaults(path, columns, names, default_columns)
    keep = names if columns is None else [names[i] for i in
                                          _resolve_columns(path, columns, names, len(names))]
    kinds = {name: schema.field(name).type for name in keep}
    text = [name for name, kind in kinds.items()
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                    or pa.types.is_decimal(kind) or pa.types.is_boolean(kind))]
    if text and columns is None and len(text) == len(keep):
        raise DataError(f"{path}: no numeric column: column {text[0]!r} has type "
                        f"{kinds[text[0]]}")
    if text:
        raise DataError(
            f"{path}: column {text[0]!r} is not numeric (type {kinds[text[0]]})"
            + ("" if columns else "; pick numeric columns with --columns")
        )
    return keep


def record_batch_values(batch, dtype=np.float64, order="C") -> np.ndarray:
    """The columns of a PyArrow table or record batch as one (rows, columns) array;
    missing values become NaN.

    ``order="F"`` (column-major) copies each column in one contiguous run, twice as
    fast as into rows (``"C"``, each column written a row's stride apart); the E-step
    reads a chunk feature by feature anyway."""
    import pyarrow as pa

    out = np.empty((batch.num_rows, batch.num_columns), dtype=dtype, order=order)
    for j in range(batch.num_columns):
        column = batch.column(j)
        if not pa.types.is_floating(column.type):
            # integers (with nulls) and decimals: to float in Arrow, nulls as NaN
            column = column.cast(pa.float64(), safe=False)
        out[:, j] = column.to_numpy(zero_copy_only=False)
    return out


def open_npy(path) -> np.ndarray:
    """The array of an ``.npy`` file, memory-mapped read-only and checked: numeric,
    1-D (as one column) or 2-D, no Python objects."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"PK"):
        raise DataError(f"{path}: is an .npz (zip) archive, not a single .npy array")
    if magic != b"\x93NUMPY":
        raise DataError(f"{path}: not a valid .npy file (no NumPy header)")
    try:
        # Memory-mapped read-only: a large file is not copied unless it must be converted.
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        if "pickle" in str(exc) or "Python objects" in str(exc):
            raise DataError(
                f"{path}: holds Python objects, which gaussmix never unpickles; "
                "save a numeric array"
            ) from None
        raise DataError(f"{path}: not a valid .npy file ({_first_line(exc)})") from None
    except Exception as exc:  # a damaged header: NumPy's tokenizer raises anything
        raise DataError(f"{path}: not a valid .npy file ({_first_line(exc)}); it is "
                        "damaged or not an array saved by numpy.save") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: is an .npz archive, not a single .npy array")
    if array.dtype.names is not None or array.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: array of dtype {array.dtype} is not numeric; save a plain "
            "integer or float array"
        )
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise DataError(
            f"{path}: array has shape {array.shape}; expected 2-D (rows, features) or 1-D"
        )
    return array


def _check_finite(path, values: np.ndarray, rows_before: int = 0,
                  allow_missing: bool = False) -> None:
    """Refuse rows with a missing or non-finite value, naming the first (1-based, counting
    ``rows_before`` rows read earlier). With ``allow_missing`` (``--nan-policy
    marginalize``) a missing value is allowed, but not infinity nor a row with every
    value missing."""
    # One sum first: NaN and inf carry through it, so a finite sum means every value is
    # finite (a sum that overflows only sends it to the search by row below).
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(values)):
            return
    if allow_missing:
        _check_gaps(path, values, rows_before)
        return
    bad = ~np.isfinite(values).all(axis=1)
    n_bad = int(bad.sum())
    if n_bad:
        first = rows_before + int(np.argmax(bad)) + 1
        rows = "1 row has" if n_bad == 1 else f"{n_bad} rows have"
        where = "" if rows_before == 0 else f" among data rows {rows_before + 1}-" \
            f"{rows_before + values.shape[0]}"
        raise DataError(
            f"{path}: {rows} missing or non-finite values{where} (first: data row "
            f"{first}); an empty field, NA, NaN or inf. "
            "Remove or impute them, or fit the observed values with --nan-policy "
            "marginalize (allow_missing=True in Python)"
        )


def _check_gaps(path, values, rows_before):
    """Missing values allowed: refuse infinity and rows with no value at all."""
    for bad, what, fix in (
            (np.isinf(values).any(axis=1), "an infinite value", "Remove or replace them"),
            (np.isnan(values).all(axis=1), "every value missing",
             "Remove them (they carry no information)")):
        if bad.any():
            first = rows_before + int(np.argmax(bad)) + 1
            n_bad = int(bad.sum())
            rows = "1 row has" if n_bad == 1 else f"{n_bad} rows have"
            raise DataError(f"{path}: {rows} {what} (first: data row {first}). {fix}")


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
