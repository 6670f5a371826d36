"""Writing the command's tables (labels, probabilities, log-likelihoods, drawn rows).

A table arrives as an iterable of pandas DataFrames with the same columns, its chunks in
row order (one DataFrame when it was computed in memory), and is written chunk by chunk,
so a table larger than memory never is in memory: CSV to standard output, or to a file
whose extension gives the format (``.csv`` and ``.tsv``, compressed by ``.gz``, ``.bz2``,
``.xz`` or ``.zip``; ``.parquet``; ``.npy``; CSV for a name without extension, any other
extension refused). A file is written
atomically (:func:`~gaussmix._files.model_files.atomic_write`): an error part-way leaves
no file and no temporary behind. The bytes do not depend on how the rows were chunked,
except for Parquet, which stores one row group per chunk.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import sys
import zipfile
from collections.abc import Iterable

import numpy as np

from .data import DataError, detect_format
from .model_files import atomic_write


def output_format(out: str) -> str:
    """The format of an output file by its extension: 'csv', 'tsv', 'parquet' or 'npy'
    (CSV for a name without extension). Another extension is refused: CSV written
    to ``s.json`` or ``s.xlsx`` would mislead whoever opens it."""
    try:
        return detect_format(out)
    except DataError:
        if not os.path.splitext(os.path.basename(out))[1]:
            return "csv"
        raise DataError(
            f"cannot write {out}: its extension is not a table format gaussmix writes; "
            "use .csv, .tsv, .parquet or .npy (.csv and .tsv may be compressed: "
            ".csv.gz, .bz2, .xz, .zip)") from None


def write_table(out: str | None, frames: Iterable, n_rows: int) -> None:
    """Write the chunks of a table to standard output (CSV) or to the file ``out``.

    Parameters
    ----------
    out : str or None
        The output file; None for CSV on standard output (rows written there stay
        written if a later chunk fails).
    frames : iterable of pandas.DataFrame
        The table's chunks in row order, all with the same columns and dtypes.
    n_rows : int
        The table's number of rows (a ``.npy`` header states the shape first).
    """
    if out is None:
        _write_csv(sys.stdout, frames, ",")
        return
    fmt = output_format(out)
    if fmt == "parquet":
        atomic_write(out, lambda f: _write_parquet(f, frames))
    elif fmt == "npy":
        atomic_write(out, lambda f: _write_npy(f, frames, n_rows))
    else:
        sep = "\t" if fmt == "tsv" else ","
        atomic_write(out, lambda f: _write_compressed_csv(f, frames, sep, out))


def _write_csv(text, frames, sep) -> None:
    for i, frame in enumerate(frames):
        frame.to_csv(text, index=False, header=i == 0, sep=sep, lineterminator="\n")


def _write_compressed_csv(f, frames, sep, out) -> None:
    with contextlib.ExitStack() as stack:
        binary = _compressed(f, out, stack)
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            _write_csv(text, frames, sep)
            text.flush()
        finally:
            text.detach()  # the compressor (or f) is closed by its owner, not here


def _compressed(f, out, stack):
    """A binary stream into ``f`` that compresses by ``out``'s extension (or ``f``)."""
    suffix = os.path.splitext(out)[1].lower()
    if suffix == ".gz":
        # mtime 0: the same rows give the same bytes (gzip stores no time then)
        return stack.enter_context(gzip.GzipFile(fileobj=f, mode="wb", mtime=0))
    if suffix == ".bz2":
        return stack.enter_context(bz2.BZ2File(f, "wb"))
    if suffix == ".xz":
        return stack.enter_context(lzma.LZMAFile(f, "wb"))
    if suffix == ".zip":
        archive = stack.enter_context(zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED))
        # One member named after the archive; zip64 since its size is not known ahead.
        member = os.path.basename(out)[: -len(suffix)] or "data.csv"
        return stack.enter_context(archive.open(member, "w", force_zip64=True))
    return f


def _write_parquet(f, frames) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with contextlib.ExitStack() as stack:
        writer = schema = None
        for frame in frames:
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = stack.enter_context(pq.ParquetWriter(f, schema))
            writer.write_table(table)


def _write_npy(f, frames, n_rows) -> None:
    dtype = None
    written = 0
    for frame in frames:
        values = frame.to_numpy()
        if dtype is None:
            dtype = values.dtype
            np.lib.format.write_array_header_1_0(f, {
                "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                "shape": (n_rows, values.shape[1])})
        f.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        written += values.shape[0]
    if written != n_rows:  # the header would lie about the shape
        raise RuntimeError(f"wrote {written} rows, expected {n_rows}")
