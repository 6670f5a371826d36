"""The command line's streaming mode: when DATA is streamed, and a bar per pass.

``fit``, ``predict``, ``score`` and ``select`` read DATA into memory when its values, as
float64, fit a memory budget, and otherwise stream it: a file
:class:`~gaussmix.Source` read chunk by chunk once per pass. ``--in-memory`` and
``--streaming`` force either. The budget is ``$GAUSSMIX_MEMORY_BUDGET`` (a size such as
``500M`` or ``4G``), else a quarter of the memory available when the command starts.
The data's size comes from what is cheap to learn: the shape in a ``.npy`` header, the
row and column counts in Parquet metadata; for CSV, the file's size stands for it.

:class:`PassBars` wraps a streamed source to show a progress bar per pass over its rows,
without the engine knowing: it is itself a Source and counts rows as chunks go by.
"""

from __future__ import annotations

import os
import re
import sys
import threading

import numpy as np

from ._engine.sources import Sample, sample_through_chunks
from ._files.data import DataError, check_path, open_npy

BUDGET_VARIABLE = "GAUSSMIX_MEMORY_BUDGET"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# A CSV's text stands for its values' size: a number written with 7 to 17 digits and a
# separator takes about as much as its float64 and the parser's working copy together.
# A compressed CSV holds about this many times its size in text (numbers compress 3 to 8
# times).
_CSV_COMPRESSION_RATIO = 5


class BudgetError(ValueError):
    """``$GAUSSMIX_MEMORY_BUDGET`` is not a size."""


def parse_size(text: str) -> int:
    """Bytes of a size such as ``"4G"``, ``"500M"``, ``"1.5GiB"``, ``"2gb"`` or ``"1000"``.

    Units are powers of 1024 (K, M, G, T, optionally followed by ``B`` or ``iB``); a
    bare number is bytes.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", text, re.I)
    if not match:
        raise BudgetError(
            f"{BUDGET_VARIABLE}={text!r} is not a size; use bytes or a number with K, M, "
            "G or T (powers of 1024), e.g. 500M or 4G"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable, which counts the page cache
    as free, else the free pages by ``os.sysconf``), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int | None:
    """The bytes of float64 values DATA may take in memory; None: no limit known."""
    text = os.environ.get(BUDGET_VARIABLE, "").strip()
    if text:
        return parse_size(text)
    available = available_memory()
    return None if available is None else available // 4


def data_bytes(path, format=None, n_columns=None) -> int | None:
    """About how many bytes DATA's values take as float64, learnt without reading them
    (None when the file cannot tell: reading it will then say what is wrong).

    ``n_columns`` is how many columns are used, if fewer than all.
    """
    try:
        path, fmt = check_path(path, format)
        if fmt == "npy":
            rows, columns = open_npy(path).shape
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.read_metadata(path)
            rows, columns = metadata.num_rows, metadata.num_columns
        else:
            size = os.path.getsize(path)
            compressed = path.lower().endswith((".gz", ".bz2", ".xz", ".zip"))
            return size * (_CSV_COMPRESSION_RATIO if compressed else 1)
    except (DataError, OSError, ValueError):  # pyarrow's errors are OSError, ValueError
        return None
    return int(rows) * int(n_columns or columns) * 8


def should_stream(mode, path, format=None, n_columns=None) -> bool:
    """Whether to stream DATA: ``mode`` ("stream", "memory", or None for automatic)."""
    if mode is not None:
        return mode == "stream"
    budget = memory_budget()
    if budget is None:
        return False
    size = data_bytes(path, format, n_columns)
    return size is not None and size > budget


_SAME = object()


class PassBars:
    """A Source showing a progress bar (rows, rows/s) for every pass over another.

    It forwards the rows of ``source`` unchanged and counts them as the chunks go by,
    so the engine reads it like any other Source.

    Parameters
    ----------
    source : Source
        A file source (with ``path``; no row weights).
    label : str
        The bars' description; the command updates it (and :attr:`postfix`, e.g. the
        current log-likelihood) between passes.
    show : bool
        Whether bars are drawn at all.
    feature_names : list of str or None, optional
        Column names to present instead of the source's (a model's features, matched
        by position).
    shared : bool, default=False
        One bar counting the rows of every pass instead of one bar per pass: for a
        reader that runs passes side by side on threads (``select``).
    stream : file, optional
        Where bars go; default standard error.
    """

    sample_weight = None  # file sources carry none

    def __init__(self, source, label, *, show, feature_names=_SAME, shared=False,
                 stream=None):
        self.source = source
        self.path = getattr(source, "path", None)
        self.n_rows, self.n_features = source.n_rows, source.n_features
        self.dtype = source.dtype
        self.feature_names = (getattr(source, "feature_names", None)
                              if feature_names is _SAME else feature_names)
        self.label, self.postfix, self.passes = label, "", 0
        self._show, self._shared = show, shared
        self._stream = sys.stderr if stream is None else stream
        self._lock = threading.Lock()
        self._bar = None

    def __repr__(self):
        return f"PassBars({self.source!r})"

    # -------------------------------------------------------------- the Source
    def chunks(self):
        """The source's ``(X_chunk, None)``, counted on a bar."""
        return self._counted(self.source.chunks())

    def sample(self, n: int, random_state) -> Sample:
        """As a file source's ``sample`` (the same rows for the same ``random_state``),
        but read through :meth:`chunks`, so its pass shows a bar too."""
        return sample_through_chunks(self, n, random_state)

    def to_numpy(self) -> np.ndarray:
        """Every row in memory."""
        return self.sample(self.n_rows, None).X

    # -------------------------------------------------------------- the bars
    def _counted(self, inner):
        bar = self._pass_bar()
        try:
            for item in inner:
                yield item
                # Counted once the reader asks for the next chunk: the rate is that of
                # the whole pass (reading and the work on each chunk).
                with self._lock:
                    bar.update(item[0].shape[0])
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()  # stops the read-ahead thread when the reader stops early
            if not self._shared:
                bar.refresh()
                bar.close()

    def _pass_bar(self):
        from tqdm.auto import tqdm

        options = dict(file=self._stream, disable=not self._show, unit=" rows",
                       unit_scale=True, dynamic_ncols=True)
        if self._shared:
            with self._lock:
                if self._bar is None:
                    self._bar = tqdm(desc=f"{self.label} (rows read)", **options)
                return self._bar
        self.passes += 1
        bar = tqdm(total=self.n_rows, desc=f"{self.label} pass {self.passes}",
                   leave=False, **options)
        if self.postfix:
            bar.set_postfix_str(self.postfix, refresh=False)
        return bar

    def close(self):
        """Close the shared bar, if any."""
        if self._bar is not None:
            self._bar.refresh()
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
