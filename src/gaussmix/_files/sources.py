"""File sources: rows of a ``.npy``, Parquet or CSV file, streamed in bounded chunks.

Each is a :class:`~gaussmix.Source`, so every face fits, predicts and selects on a file
larger than memory: a pass re-reads the file chunk by chunk, the next chunk read ahead on
a background thread while the E-step kernel works on the current one. Files are opened
for reading only. Each pass checks the file is the one that was opened (same size and
modification time, same number of rows) and that every value is finite, and says which
file, row or column is at fault otherwise.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re

import numpy as np

from .._engine.sources import Sample, sample_through_chunks
from .data import (
    _DECOMPRESSION_ERRORS,
    DataError,
    Table,
    _check_finite,
    _check_unique,
    _defaults,
    _first_line,
    _is_number,
    _resolve_columns,
    check_path,
    excluding,
    is_header,
    open_npy,
    parquet_columns,
    record_batch_values,
)
from .read_ahead import read_ahead

# Parquet pages are read through a buffer of this size, not a column chunk at a time.
PARQUET_BUFFER_BYTES = 1 << 20

# Bytes of values per chunk: large enough to amortise the kernel's per-chunk set-up,
# small enough that the chunks in flight (one in the kernel, one read ahead, one being
# read) stay near a hundred megabytes.
CHUNK_BYTES = 32 << 20


def _chunk_rows(chunk_rows, n_features, dtype) -> int:
    if chunk_rows is not None:
        chunk_rows = int(chunk_rows)
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows}.")
        return chunk_rows
    return max(1024, CHUNK_BYTES // (max(n_features, 1) * np.dtype(dtype).itemsize))


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}.")
    return dtype


def _positions(path, columns, names, n_columns) -> list[int] | None:
    """Positions of ``columns`` (names, or 0-based integer positions), or None for all."""
    if columns is None:
        return None
    if isinstance(columns, (str, int, np.integer)):
        columns = [columns]
    specs = []
    for col in columns:
        if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
            if not 0 <= col < n_columns:
                raise DataError(f"{path}: column position {col} is out of range; the "
                                f"file has {n_columns} column(s)")
            specs.append(str(names[col]) if names is not None else str(col))
        else:
            specs.append(str(col))
    if not specs:
        raise DataError(f"{path}: no column given in columns")
    return _resolve_columns(path, specs, names, n_columns)


class FileSource:
    """Rows of a data file, read in chunks once per pass (see the module).

    Attributes
    ----------
    path : str
    n_rows, n_features : int
    dtype : numpy dtype
        Of the chunks (float64 unless asked for float32).
    feature_names : list of str or None
        The selected columns' names, or None for a file without column names.
    chunk_rows : int
        Rows per chunk (the last chunk of a pass, or of a Parquet row group, may be
        shorter; CSV chunks follow the parser's blocks).
    sample_weight : None
        File sources carry no row weights.
    """

    sample_weight = None
    # NaN is a missing coordinate (``nan_policy='marginalize'``) rather than an error.
    allow_missing = False

    def _opened(self, path, n_rows, n_features, feature_names, dtype, chunk_rows):
        self.path = path
        self.n_rows = int(n_rows)
        self.n_features = int(n_features)
        self.feature_names = feature_names
        self.dtype = _float_dtype(dtype)
        self.chunk_rows = _chunk_rows(chunk_rows, n_features, self.dtype)
        stat = os.stat(path)
        self._signature = (stat.st_size, stat.st_mtime_ns)
        if self.n_features == 0:
            raise DataError(f"{path}: no columns")
        if self.n_rows == 0:
            raise DataError(f"{path}: no data rows")

    def __repr__(self):
        return (f"{type(self).__name__}({self.path!r}: {self.n_rows} rows x "
                f"{self.n_features} columns)")

    # -------------------------------------------------------------- the Source
    def chunks(self):
        """Yield ``(X_chunk, None)`` in row order, reading one chunk ahead."""
        self._check_unchanged()
        return ((X, None) for X in read_ahead(self._checked_chunks()))

    def sample(self, n: int, random_state) -> Sample:
        """All rows when ``n >= n_rows``, else ``n`` distinct rows drawn uniformly by
        ``random_state`` (read in one pass)."""
        return sample_through_chunks(self, n, random_state)

    def to_numpy(self) -> np.ndarray:
        """Every row in memory, shape (n_rows, n_features)."""
        return self.sample(self.n_rows, None).X

    # ------------------------------------------------------------- the checks
    def _check_unchanged(self):
        try:
            stat = os.stat(self.path)
        except OSError:
            raise DataError(f"{self.path}: the file is gone; it was opened as a data "
                            "source and must stay in place until the fit ends") from None
        if (stat.st_size, stat.st_mtime_ns) != self._signature:
            raise DataError(
                f"{self.path}: the file changed since it was opened (its size or "
                "modification time differ); a fit reads it once per pass, so it must "
                "not change until the fit ends. Open it again to use the new contents"
            )

    def _checked_chunks(self):
        # Runs on the read-ahead thread: the checks cost no kernel time.
        done = 0
        for X in self._read_chunks():
            _check_finite(self.path, X, done, self.allow_missing)
            done += X.shape[0]
            if done > self.n_rows:
                break
            yield X
        if done != self.n_rows:
            raise DataError(
                f"{self.path}: has {'more' if done > self.n_rows else done} rows now, "
                f"{self.n_rows} when it was opened; a file must not change during a fit"
            )

    def _read_chunks(self):
        raise NotImplementedError

    def label_column(self, column) -> np.ndarray:
        """Column ``column`` of the file (a name, or a 0-based position for a file
        without names) as it is written, every row: class labels, read by the same
        parser as the rows. An empty value is an error naming the row."""
        raise NotImplementedError

    def _no_empty_label(self, name, empty):
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise DataError(f"{self.path}: data row {row + 1} has no value in the "
                            f"label column {name}; every row needs its class")


class NpySource(FileSource):
    """Rows of a ``.npy`` file, memory-mapped (see :func:`gaussmix.read_npy`)."""

    def __init__(self, path, columns=None, *, dtype=np.float64, chunk_rows=None,
                 exclude=None, allow_missing=False):
        self.allow_missing = bool(allow_missing)
        path, _ = check_path(path, "npy")
        array = open_npy(path)
        if exclude:
            columns = excluding(path, exclude, None, array.shape[1])
        self._columns = _positions(path, columns, None, array.shape[1])
        self._shape = array.shape
        n_features = array.shape[1] if self._columns is None else len(self._columns)
        self._opened(path, array.shape[0], n_features, None, dtype, chunk_rows)

    def _read_chunks(self):
        array = open_npy(self.path)
        if array.shape != self._shape:
            raise DataError(f"{self.path}: holds an array of shape {array.shape} now, "
                            f"{self._shape} when it was opened")
        for start in range(0, self.n_rows, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.n_rows)
            part = array[start:stop]
            if self._columns is not None:
                part = part[:, self._columns]
            yield np.array(part, dtype=self.dtype, order="C")
            _release_pages(array, start, stop)

    def label_column(self, column) -> np.ndarray:
        j = _positions(self.path, [column], None, self._shape[1])[0]
        labels = np.array(open_npy(self.path)[:, j])
        self._no_empty_label(str(column), np.isnan(labels) if labels.dtype.kind == "f"
                             else np.zeros(labels.shape, dtype=bool))
        return labels


def _release_pages(array, start, stop):
    """Tell the kernel the mapped pages of rows [start, stop) are done with, so a pass
    over a large file does not grow the process's resident memory (the pages stay in
    the page cache). Best effort: only for C-ordered arrays on platforms with madvise."""
    mapped = getattr(array, "_mmap", None)
    if mapped is None or not hasattr(mmap, "MADV_DONTNEED") or not array.flags.c_contiguous:
        return
    row_bytes = array.strides[0]
    first = array.offset % mmap.ALLOCATIONGRANULARITY + start * row_bytes
    first -= first % mmap.PAGESIZE
    last = array.offset % mmap.ALLOCATIONGRANULARITY + stop * row_bytes
    try:
        mapped.madvise(mmap.MADV_DONTNEED, first, last - first)
    except (OSError, ValueError):
        pass


class ParquetSource(FileSource):
    """Rows of a Parquet file in record batches (see :func:`gaussmix.read_parquet`)."""

    def __init__(self, path, columns=None, *, dtype=np.float64, chunk_rows=None,
                 default_columns=None, exclude=None, allow_missing=False):
        import pyarrow.parquet as pq

        self.allow_missing = bool(allow_missing)
        path, _ = check_path(path, "parquet")
        if exclude:
            names = _schema_names(path)
            columns = excluding(path, exclude, names, len(names))
        if columns is None:
            keep = parquet_columns(path, None, default_columns)
        else:
            names = _schema_names(path)
            keep = [names[i] for i in _positions(path, columns, names, len(names))]
            parquet_columns(path, keep)  # and numeric
        self._columns = keep
        with pq.ParquetFile(path) as parquet:
            n_rows = parquet.metadata.num_rows
        self._opened(path, n_rows, len(keep), [str(n) for n in keep], dtype, chunk_rows)

    def _read_chunks(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Row group by row group, through a buffered stream: over a whole file,
        # PyArrow's iter_batches (26.0.1) holds on to every row group it has decoded
        # until it is closed (a pass over a 5 GB file grew to 5.7 GB), and without a
        # buffer_size it reads each column chunk of a group whole. So memory follows
        # the chunk, not the file.
        try:
            with pq.ParquetFile(self.path, buffer_size=PARQUET_BUFFER_BYTES) as parquet:
                for group in range(parquet.metadata.num_row_groups):
                    for batch in parquet.iter_batches(batch_size=self.chunk_rows,
                                                      row_groups=[group],
                                                      columns=self._columns):
                        yield record_batch_values(batch, self.dtype, order="F")
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: cannot read as Parquet: "
                            f"{_first_line(exc)}") from None

    def label_column(self, column) -> np.ndarray:
        import pyarrow.parquet as pq

        names = _schema_names(self.path)
        name = names[_positions(self.path, [column], names, len(names))[0]]
        values = pq.read_table(self.path, columns=[name]).column(0)
        self._no_empty_label(name, values.is_null().to_numpy(zero_copy_only=False))
        return values.to_numpy(zero_copy_only=False)


def _schema_names(path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None


class CsvSource(FileSource):
    """Rows of a CSV or TSV file, parsed by PyArrow's streaming reader (see
    :func:`gaussmix.read_csv`). With ``keep``, the rows read when opening are kept, so
    that :meth:`to_numpy` (the command line's in-memory path) parses the file once."""

    def __init__(self, path, columns=None, *, header=None, delimiter=None,
                 dtype=np.float64, chunk_rows=None, default_columns=None, keep=False,
                 exclude=None, allow_missing=False):
        self.allow_missing = bool(allow_missing)
        path, fmt = check_path(path)
        if fmt not in ("csv", "tsv"):
            fmt = "csv"
        self.path, self.dtype = path, _float_dtype(dtype)
        self._delimiter = delimiter or ("\t" if fmt == "tsv" else ",")
        self._what = "TSV" if self._delimiter == "\t" else "CSV"
        self._columns_given = columns is not None or bool(exclude)
        head = self._head()
        self._header = is_header(head) if header is None else bool(header)
        fields = [v.strip() for v in head[0]]
        names = fields if self._header else None
        if names is not None:
            _check_unique(path, names)
        self._n_columns, self._names = len(fields), names
        if exclude:
            columns = excluding(path, exclude, names, self._n_columns)
        if columns is None:
            columns = _defaults(path, None, names, default_columns)
        keep_at = _positions(path, columns, names, self._n_columns)
        self._keep = list(range(self._n_columns)) if keep_at is None else keep_at
        # true/false columns are read as booleans (0 and 1), judged by the first data row
        first_row = head[int(self._header)] if len(head) > self._header else []
        self._booleans = {j for j in self._keep if j < len(first_row)
                          and first_row[j].strip().lower() in ("true", "false")}
        feature_names = None if names is None else [names[i] for i in self._keep]
        # Rows are counted (and every value checked) by one pass now, so that a bad
        # value is reported before a fit starts.
        self.chunk_rows = _chunk_rows(chunk_rows, len(self._keep), self.dtype)
        n_rows, kept = 0, []
        for X in self._read_chunks(whole=keep):  # kept: read at once, on every core
            _check_finite(path, X, n_rows, self.allow_missing)
            n_rows += X.shape[0]
            if keep:
                kept.append(X)
        self._kept = kept if keep else None
        self._opened(path, n_rows, len(self._keep), feature_names, dtype, chunk_rows)

    def to_numpy(self) -> np.ndarray:
        if self._kept is None:
            return super().to_numpy()
        self._check_unchanged()
        rows, self._kept = np.concatenate(self._kept), None  # once: then as any source
        return rows

    def label_column(self, column) -> np.ndarray:
        import pyarrow as pa

        j = _positions(self.path, [column], self._names, self._n_columns)[0]
        generated = [f"c{i}" for i in range(self._n_columns)]
        try:
            with _open_stream(self.path) as stream:
                values = self._reader(stream, generated, {f"c{j}": pa.string()},
                                      skip=int(self._header), whole=True).column(0)
        except (pa.ArrowException, OSError, UnicodeDecodeError) + _DECOMPRESSION_ERRORS \
                as exc:
            raise self._parse_error(exc, 0) from None
        name = self._names[j] if self._names is not None else str(j)
        labels = np.array([v.strip() if v is not None else "" for v in values.to_pylist()],
                          dtype=object)
        self._no_empty_label(name, labels == "")
        return labels

    def _reader(self, stream, names=None, types=None, *, skip=0, threads=True,
                block=1 << 20, whole=False):
        import pyarrow.csv as pcsv

        # whole: PyArrow's table reader, which parses blocks on every core (the
        # streaming reader parses one block at a time).
        return (pcsv.read_csv if whole else pcsv.open_csv)(
            stream,
            read_options=pcsv.ReadOptions(
                column_names=names, autogenerate_column_names=names is None,
                skip_rows=skip, use_threads=threads, block_size=block),
            parse_options=pcsv.ParseOptions(delimiter=self._delimiter),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(types) if types else None, column_types=types,
                strings_can_be_null=True))

    def _head(self) -> list[list[str]]:
        """The first two lines' fields, as written, read by the parser that reads the
        rows (to tell a header and count the columns)."""
        import pyarrow as pa

        try:
            # Once for the number of columns, once for the fields as text; one thread,
            # so that a ragged row is numbered.
            with _open_stream(self.path) as stream:
                generated = self._reader(stream, threads=False).schema.names
            with _open_stream(self.path) as stream:
                batch = self._reader(stream, generated, {
                    name: pa.string() for name in generated},
                    threads=False).read_next_batch()
        except StopIteration:
            raise DataError(f"{self.path}: the file is empty") from None
        except (pa.ArrowException, OSError, UnicodeDecodeError) + _DECOMPRESSION_ERRORS \
                as exc:
            if "Empty CSV file" in str(exc):
                raise DataError(f"{self.path}: the file is empty") from None
            self._n_columns = 0
            raise self._parse_error(exc, 0) from None
        rows = [[v or "" for v in row.values()] for row in batch.slice(0, 2).to_pylist()]
        if not rows:
            raise DataError(f"{self.path}: the file is empty")
        return rows

    def _types(self, as_text=False):
        """The kept columns (named by position, so the header's spelling never matters
        to the parser) and the type each is parsed as."""
        import pyarrow as pa

        return {f"c{j}": pa.string() if as_text else
                pa.bool_() if j in self._booleans else pa.float64() for j in self._keep}

    def _batches(self, as_text=False, threads=True, whole=False):
        generated = [f"c{j}" for j in range(self._n_columns)]
        row_bytes = 24 * max(self._n_columns, 1)  # a generous guess per parsed row
        block = int(min(max(self.chunk_rows * row_bytes, 1 << 20), 1 << 28))
        if whole:  # the file at once, in blocks parsed in parallel
            block = 1 << 22
        with _open_stream(self.path) as stream:
            reader = self._reader(stream, generated, self._types(as_text),
                                  skip=int(self._header), threads=threads, block=block,
                                  whole=whole)
            yield from (reader.to_batches() if whole else reader)

    def _read_chunks(self, whole=False):
        import pyarrow as pa

        done = 0
        try:
            for batch in self._batches(whole=whole):
                if batch.num_rows:
                    values = record_batch_values(batch, self.dtype, order="F")
                    done += values.shape[0]
                    yield values
        except (pa.ArrowException, OSError, UnicodeDecodeError) + _DECOMPRESSION_ERRORS \
                as exc:
            raise self._parse_error(exc, done) from None

    def _parse_error(self, exc, done) -> DataError:
        import pyarrow as pa

        text = _first_line(exc)
        if isinstance(exc, _DECOMPRESSION_ERRORS) or "compressed" in text.lower():
            return DataError(f"{self.path}: cannot decompress it (truncated or corrupt "
                             f"file: {text})")
        # Reading again to say where can fail too: then the parser's words must do.
        with contextlib.suppress(pa.ArrowException, OSError, UnicodeDecodeError,
                                 *_DECOMPRESSION_ERRORS):
            if "conversion error" in text:
                found = self._first_text()
                if found is not None:
                    return found
            if re.search(r"Expected \d+ columns, got \d+", text):
                return self._ragged(text)
        after = f" (after data row {done})" if done else ""
        return DataError(f"{self.path}: cannot read as {self._what}{after}: {text}")

    def _ragged(self, text) -> DataError:
        # The threaded reader does not number rows: ask the single-threaded one.
        import pyarrow as pa

        if "Row #" not in text:
            try:
                for _ in self._batches(threads=False):
                    pass
            except pa.ArrowException as exc:
                if re.search(r"Expected \d+ columns, got \d+", str(exc)):
                    text = _first_line(exc)
        line, want, got = re.search(
            r"(?:Row #(\d+): )?Expected (\d+) columns, got (\d+)", text).groups()
        where = f"line {line}" if line else "a row"
        return DataError(f"{self.path}: ragged rows: {where} has {got} fields, "
                         f"expected {want}")

    def _first_text(self) -> DataError | None:
        """The error for the first field that is not a number, found by reading the
        kept columns again as text (the parser names neither its row nor its column)."""
        kinds = self._types()
        done = 0
        for batch in self._batches(as_text=True):
            for j, column in zip(self._keep, batch.columns):
                if _casts(column, kinds[f"c{j}"]):
                    continue
                row = _first_failing(column, kinds[f"c{j}"])
                value = column[row].as_py()
                name = f"{j} (0-based)" if self._names is None else repr(self._names[j])
                if not self._columns_given and not any(
                        _has_numbers(c) for c in batch.columns):
                    # All text: a wrong file, format or delimiter, not a column to drop.
                    return DataError(
                        f"{self.path}: no numeric column: column {name} has {value!r} in "
                        f"row {done + row + 1}{_delimiter_hint(value, self._delimiter)}")
                return DataError(
                    f"{self.path}: column {name} is not numeric: row {done + row + 1} has "
                    f"{value!r}" + ("" if self._columns_given
                                    else "; pick numeric columns with --columns"))
            done += batch.num_rows
        return None


def _casts(column, kind) -> bool:
    """Whether every field of a text column parses as ``kind`` (missing ones count)."""
    import pyarrow as pa

    try:
        column.cast(kind)
    except pa.ArrowInvalid:
        return False
    return True


def _first_failing(column, kind) -> int:
    """The position of the first field of ``column`` that does not parse (bisection:
    the parser says which value, not where)."""
    lo, hi = 0, len(column)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _casts(column.slice(lo, mid - lo), kind):
            lo = mid
        else:
            hi = mid
    return lo


def _has_numbers(column, look=100) -> bool:
    """Whether any of a text column's first ``look`` fields is a number."""
    return any(v is not None and _is_number(v.strip())
               for v in column.slice(0, look).to_pylist())


def _delimiter_hint(value, delimiter) -> str:
    """A suggestion of --delimiter when the text looks split by another character."""
    def shown(char):
        return "tab" if char == "\t" else repr(char)

    for other in (";", "\t", "|", ","):
        if other != delimiter and other in value:
            return (f"; the fields look separated by {shown(other)}, not "
                    f"{shown(delimiter)}: pass --delimiter {shown(other)}")
    return ""


def _open_stream(path):
    """A binary stream of the file's bytes, decompressed by its extension."""
    lower = path.lower()
    if lower.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    if lower.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rb")
    if lower.endswith(".xz"):
        import lzma

        return lzma.open(path, "rb")
    if lower.endswith(".zip"):
        import zipfile

        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            archive.close()
            raise DataError(f"{path}: a .zip must hold exactly one data file, it holds "
                            f"{len(members)}")
        return _ClosingMember(archive, archive.open(members[0]))
    return open(path, "rb")


class _ClosingMember:
    """A .zip member's stream that closes its archive with it."""

    def __init__(self, archive, member):
        self._archive, self._member = archive, member

    def __getattr__(self, name):
        return getattr(self._member, name)

    def close(self):
        self._member.close()
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ the public readers
def read_npy(path, columns=None, *, dtype=np.float64, chunk_rows=None,
             allow_missing=False) -> NpySource:
    """Stream the rows of a ``.npy`` file (memory-mapped, never loaded whole).

    Parameters
    ----------
    path : str or os.PathLike
        A 2-D (rows, features) or 1-D numeric array saved by :func:`numpy.save`.
    columns : list of int, optional
        0-based positions of the columns to use, in this order. Default: all.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Of the chunks handed to the fit (float32 halves the memory traffic).
    chunk_rows : int, optional
        Rows per chunk; default about 32 MB of values.
    allow_missing : bool, default=False
        Let NaN through as a missing coordinate (for ``nan_policy='marginalize'``);
        infinity and a row with every value missing are still refused.

    Returns
    -------
    Source
        Accepted wherever an array is: ``GaussianMixture.fit``, ``predict``,
        ``score_samples``..., ``select``, ``Mixture.fit``.

    Raises
    ------
    DataError
        (a ``ValueError``) naming the file and the problem: missing, not ``.npy``,
        not numeric, Python objects, a column out of range; later, during a pass, a
        row with NaN or inf (by number) or a file that changed.
    """
    return NpySource(path, columns, dtype=dtype, chunk_rows=chunk_rows,
                     allow_missing=allow_missing)


def read_parquet(path, columns=None, *, dtype=np.float64, chunk_rows=None,
                 allow_missing=False) -> ParquetSource:
    """Stream the rows of a Parquet file in record batches (PyArrow).

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str or int, optional
        Column names (or 0-based positions) to use, in this order; only they are read.
        Default: every column, which must then all be numeric.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
    chunk_rows : int, optional
        Rows per record batch; default about 32 MB of values.
    allow_missing : bool, default=False
        Let missing values through as NaN (for ``nan_policy='marginalize'``).

    Returns
    -------
    Source
        With ``feature_names`` (the columns' names): an estimator fitted on it has
        ``feature_names_in_``.

    Raises
    ------
    DataError
        (a ``ValueError``) naming the file and the problem: missing, not Parquet, an
        unknown or non-numeric column; during a pass, a missing value (by row) or a
        file that changed.
    """
    return ParquetSource(path, columns, dtype=dtype, chunk_rows=chunk_rows,
                         allow_missing=allow_missing)


def read_csv(path, columns=None, *, header=None, delimiter=None, dtype=np.float64,
             chunk_rows=None, allow_missing=False) -> CsvSource:
    """Stream the rows of a CSV or TSV file (optionally .gz, .bz2, .xz or .zip) with
    PyArrow's streaming reader.

    The file is read once when opened, to count its rows and check every value, so a
    bad value is reported before a fit starts; a fit then reads it once per EM pass.

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str or int, optional
        Column names (or 0-based positions) to use, in this order. Default: all.
    header : bool, optional
        Whether the first line holds column names; default: detected (a first line
        with a non-numeric field above a numeric one, or no number at all).
    delimiter : str, optional
        Default: a tab for ``.tsv``/``.tab`` files, else a comma.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
    chunk_rows : int, optional
        About this many rows per chunk; default about 32 MB of values.
    allow_missing : bool, default=False
        Let empty fields, NA and NaN through as missing coordinates (for
        ``nan_policy='marginalize'``).

    Returns
    -------
    Source

    Raises
    ------
    DataError
        (a ``ValueError``) naming the file and the problem: missing, empty, ragged
        rows, an unknown or non-numeric column (with the value), a missing value (by
        row); during a pass, a file that changed.
    """
    return CsvSource(path, columns, header=header, delimiter=delimiter, dtype=dtype,
                     chunk_rows=chunk_rows, allow_missing=allow_missing)


def open_source(path, columns=None, *, format=None, header=None, delimiter=None,
                dtype=np.float64, chunk_rows=None, default_columns=None,
                keep=False, exclude=None, allow_missing=False) -> FileSource:
    """The file source for ``path`` by its format (for the command line, whose
    ``--columns`` are strings: names, or 0-based positions for files without names).
    ``delimiter`` is a CSV's (default: a tab for TSV, else a comma); ``keep`` keeps a
    CSV's rows read when opening, for one :meth:`~FileSource.to_numpy`; ``exclude``
    names columns to leave out (``--exclude``)."""
    path, fmt = check_path(path, format)
    if fmt == "npy":
        if columns is not None:
            columns = [int(c) if re.fullmatch(r"\d+", str(c)) else c for c in columns]
        return NpySource(path, columns, dtype=dtype, chunk_rows=chunk_rows,
                         exclude=exclude, allow_missing=allow_missing)
    if fmt == "parquet":
        return ParquetSource(path, columns, dtype=dtype, chunk_rows=chunk_rows,
                             default_columns=default_columns, exclude=exclude,
                             allow_missing=allow_missing)
    return CsvSource(path, columns, header=header,
                     delimiter=delimiter or ("\t" if fmt == "tsv" else ","), dtype=dtype,
                     chunk_rows=chunk_rows, default_columns=default_columns, keep=keep,
                     exclude=exclude, allow_missing=allow_missing)


def read_labelled(path, label, columns=None, *, header=None, format=None,
                  delimiter=None):
    """Features and class labels from one file, by the readers of :func:`read_data`:
    a :class:`Table` of ``columns`` (default: every column but ``label``) and the
    ``label`` column as written (an object array of text for CSV and TSV)."""
    columns = [c for c in columns if c != label] if columns is not None else None
    exclude = [label] if columns is None else None
    source = open_source(path, columns, format=format, header=header, delimiter=delimiter,
                         exclude=exclude, keep=True)
    labels = source.label_column(label)
    table = Table(values=source.to_numpy(), names=source.feature_names, path=source.path)
    return table, labels


def read_data(path, columns=None, *, header=None, format=None, delimiter=None,
              default_columns=None, exclude=None, allow_missing=False) -> Table:
    """Read a numeric table from a CSV, TSV, Parquet or ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str, optional
        Columns to keep, in this order: names, or 0-based indices for files without
        column names (CSV without header, ``.npy``). Default: all columns.
    header : bool or None, default=None
        Whether a CSV's first line is a header; None detects it (a header is a first
        line with a non-numeric field above a numeric one, or with no number at all).
    format : {'csv', 'tsv', 'parquet', 'npy'} or None
        Default: from the file's extension.
    delimiter : str or None
        A CSV's field separator; default a tab for TSV, else a comma.
    default_columns : list of str, optional
        Used when ``columns`` is None and the file has column names including all of
        these (a model's features): only they are read, so other columns may hold
        anything. Otherwise every column is read.
    exclude : list of str, optional
        Columns to leave out (names, or 0-based indices), instead of ``columns``.
    allow_missing : bool, default=False
        Let missing values through as NaN (``--nan-policy marginalize``).

    Returns
    -------
    Table

    Raises
    ------
    DataError
        If the file is missing, empty, ragged, has non-numeric columns (no numeric
        column at all: a message saying "no numeric column"), unknown columns, or rows
        with missing or non-finite values.
    """
    # The readers that stream large files, read whole: one parser for every command.
    source = open_source(path, columns, format=format, header=header, delimiter=delimiter,
                         default_columns=default_columns, exclude=exclude, keep=True,
                         allow_missing=allow_missing)
    return Table(values=source.to_numpy(), names=source.feature_names, path=source.path)
