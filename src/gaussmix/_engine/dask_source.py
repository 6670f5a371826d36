"""Dask: rows of a Dask array or DataFrame as a Source, and the producer that runs on it.

:class:`DaskSource` is a Source like any other (``chunks()`` computes the blocks one by
one, ``sample`` gathers a random subset to the client), so every face fits on it. It also
brings its own producer, which the engine's callers pick up (``thread_pass`` hands a
source that has one to it):

* :meth:`DaskSource.producer`: the pass ``Params -> SuffStats`` with each block's E-step
  (:func:`~gaussmix._engine.estep.estep_chunk`) on the workers. Per pass the parameters
  enter the graph once (one key every block task reads: Dask copies it between workers),
  the blocks' statistics are added on the workers in a tree of fan-in
  :data:`TREE_FAN_IN`, and only the total travels to the client, where the M-step runs.
  The one EM loop (:func:`~gaussmix._engine.loop.run_em`) is unchanged.
* :meth:`DaskSource.label_stats`: the starting pass of given labels (k-means'
  assignment, k-means++ and random_from_data's picked rows) on the workers too.
* :meth:`DaskSource.map_rows`: per-row results (predict, densities) as lazy Dask arrays.

The data are persisted once (at the first pass) unless ``persist=False``. Dask is
imported only when a DaskSource is made: gaussmix itself does not need it.
"""

from __future__ import annotations

import contextlib
import math
import uuid

import numpy as np

from .missing import check_rows_observed
from .sources import Sample, draw_positions

# Statistics of this many blocks are added per task of the tree on the workers.
TREE_FAN_IN = 8


def is_dask(X) -> bool:
    """Whether ``X`` is a Dask collection (without importing Dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "__dask_keys__")


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("Dask input needs Dask: pip install 'gaussmix[dask]'.") from None
    return dask, da


class DaskSource:
    """Rows of a Dask array (or a Dask DataFrame of numeric columns) with optional row
    weights, fitted on the Dask scheduler in use.

    Parameters
    ----------
    X : dask.array.Array of shape (n, D) or dask.dataframe.DataFrame
        Each block must hold whole rows (one chunk along the features) and known row
        counts. A DataFrame's columns must all be numeric; its row counts are computed.
    sample_weight : dask.array.Array or ndarray of shape (n,), optional
        Non-negative row weights, rechunked like X's rows if they are not.
    persist : bool, default=True
        Keep the (validated) blocks in the workers' memory from the first pass on, so
        each EM iteration reads memory. With False every pass recomputes the blocks from
        their graph (data that must stream from storage).
    allow_missing : bool, default=False
        NaN is a missing coordinate (``nan_policy='marginalize'``): allowed, except a
        row with every coordinate missing; infinity is still refused.

    Notes
    -----
    With a ``distributed.Client`` the work runs on its cluster (the current client),
    otherwise on Dask's local threaded scheduler.
    """

    def __init__(self, X, sample_weight=None, *, persist=True, allow_missing=False):
        dask, da = _import_dask()
        X, names = _as_array(X, da)
        self.array = X
        self.weights = None if sample_weight is None else _as_weights(sample_weight, X, da)
        self.persist = bool(persist)
        self.allow_missing = bool(allow_missing)
        self.feature_names = names
        self._prepared = False
        # The factor the row weights were scaled by (a power of two; see prepare).
        self.weight_scale = 1.0

    # --------------------------------------------------------------- the protocol
    @property
    def n_rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.array.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def chunks(self):
        """``(X_block, weight_block_or_None)`` in row order, each computed in turn."""
        self.prepare()
        xs, ws = self._blocks()
        for x, w in zip(xs, ws):
            yield _compute(x, w)

    def sample(self, n: int, random_state) -> Sample:
        """All rows when ``n >= n_rows``, else ``n`` distinct rows with a positive
        weight, drawn as :meth:`ArraySource.sample` draws them (the same rows for the
        same ``random_state``), gathered to the client."""
        self.prepare()
        X, w = self.array, self.weights
        if n >= self.n_rows:
            x, wv = _compute(X, w)
            return Sample(x, wv, np.arange(self.n_rows), True)
        if w is None:
            rows = draw_positions(self.n_rows, n, random_state)
        else:
            # Positions among the rows with a positive weight, as draw_rows picks them;
            # then mapped to rows block by block on the workers.
            counts = _compute(*[(b > 0).sum() for b in w.to_delayed().ravel()])
            picked = draw_positions(int(sum(counts)), n, random_state)
            rows = _positive_rows(w, np.asarray(counts), picked)
        x, wv = _compute(X[rows], None if w is None else w[rows])
        return Sample(x, wv, rows, False)

    # --------------------------------------------------------------- the backend
    def prepare(self) -> None:
        """Persist the blocks (unless ``persist=False``) and check them, once."""
        if self._prepared:
            return
        dask, da = _import_dask()
        X, w = self.array, self.weights
        if self.persist:
            X = _persist(X)
        if self.allow_missing:  # NaN allowed, infinity and all-NaN rows not
            checks = [(~da.isinf(X)).all() & ~da.isnan(X).all(axis=1).any()]
        else:
            checks = [da.isfinite(X).all()]
        if w is not None:
            positive = w[w > 0]
            checks += [da.isfinite(w).all(), w.min(), w.max(), positive.min()]
        found = _compute(*checks)
        if not found[0] and self.allow_missing:
            raise ValueError(
                "X contains infinity or a row with every coordinate missing (NaN); "
                "remove those rows (for example X[~da.isnan(X).all(axis=1)]).")
        if not found[0]:
            raise ValueError(
                "X contains NaN or infinity; remove or impute those rows (for example "
                "X[da.isfinite(X).all(axis=1)])."
            )
        if w is not None:
            finite, low, high, smallest = found[1:]
            if not finite:
                raise ValueError("sample_weight contains NaN or infinity; every weight "
                                 "must be a finite number >= 0 (use 0 to leave a row out).")
            if low < 0:
                raise ValueError("Negative values in data passed to sample_weight; "
                                 "weights count how often a row was seen and must be >= 0.")
            if high <= 0:
                raise ValueError("Sample weights must contain at least one positive "
                                 "value; all weights are zero, so there is nothing to fit.")
            # Scaled by a power of two as the in-memory fit scales them (exact).
            exponent = np.frexp(high)[1] - 1
            exponent = min(exponent, np.frexp(smallest)[1] + 1021)
            if exponent:
                self.weight_scale = 2.0 ** -int(exponent)
                w = w * self.weight_scale
            w = w.astype(X.dtype)
            if self.persist:
                w = _persist(w)
        self.array, self.weights = X, w
        self._prepared = True

    def producer(self, kind: str, labels=None):
        """The E-step pass ``Params -> SuffStats`` on the workers (see the module).

        Parameters
        ----------
        kind : {"full", "diag", "tied"}
        labels : ndarray of int of shape (n_rows,), optional
            Rows with a label ``k >= 0`` keep component ``k``.
        """
        dask, da = _import_dask()
        from dask import delayed

        self.prepare()
        xs, ws = self._blocks()
        ls = [None] * len(xs)
        if labels is not None:
            lab = da.from_array(np.asarray(labels), chunks=(self.array.chunks[0],))
            ls = list(lab.to_delayed().ravel())

        def run(params):
            # One key holds the parameters; every block task reads it.
            p = delayed(params, name="gaussmix-params-" + uuid.uuid4().hex, traverse=False)
            parts = [delayed(_block_stats, pure=False)(x, w, p, kind, lab)
                     for x, w, lab in zip(xs, ws, ls)]
            return _compute(_tree_sum(parts, delayed))[0]

        return run

    def label_stats(self, n_components: int, kind: str, labels_of, fill=None):
        """Statistics of one-hot starting labels ``labels_of(start, block)`` (a pure
        function of the block and its first row's position), block by block on the
        workers and tree-summed there; ``fill`` stands for missing coordinates (see
        ``init.given_stats``)."""
        from dask import delayed

        self.prepare()
        xs, ws = self._blocks()
        f = delayed(labels_of, name="gaussmix-labels-" + uuid.uuid4().hex, traverse=False)
        starts = np.concatenate([[0], np.cumsum(self.array.chunks[0])[:-1]])
        parts = [delayed(_block_label_stats, pure=False)(x, w, int(s), f, n_components, kind,
                                                         fill)
                 for x, w, s in zip(xs, ws, starts)]
        return _compute(_tree_sum(parts, delayed))[0]

    def map_rows(self, per_chunk):
        """``per_chunk`` of every block as a lazy Dask array (rows along axis 0)."""
        meta = np.asarray(per_chunk(np.empty((0, self.n_features), dtype=self.dtype)))
        fn = _RowFunction(per_chunk, self.allow_missing)
        X = self.array
        if meta.ndim == 1:
            return X.map_blocks(fn, drop_axis=1, dtype=meta.dtype,
                                chunks=(X.chunks[0],), meta=meta)
        return X.map_blocks(fn, dtype=meta.dtype, chunks=(X.chunks[0], meta.shape[1:]),
                            meta=meta)

    def _blocks(self):
        xs = list(self.array.to_delayed().ravel())
        ws = ([None] * len(xs) if self.weights is None
              else list(self.weights.to_delayed().ravel()))
        return xs, ws


# ------------------------------------------------------------------- on the workers
def _block_stats(X, w, params, kind, labels):
    from .estep import estep_chunk

    # One kernel thread per task: Dask runs the blocks in parallel.
    return estep_chunk(X, w, params, kind, labels, n_threads=1)


def _block_label_stats(X, w, start, labels_of, n_components, kind, fill=None):
    from .init import given_stats
    from .sources import ArraySource

    # The in-memory start's pass over this block's rows (the same statistics).
    return given_stats(ArraySource(X, w, max(X.shape[0], 1)), n_components, kind,
                       fill=fill, labels_of=lambda offset, chunk: labels_of(start + offset,
                                                                            chunk))


def _add(*parts):
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _tree_sum(parts, delayed):
    while len(parts) > 1:
        parts = [delayed(_add, pure=False)(*parts[i : i + TREE_FAN_IN])
                 for i in range(0, len(parts), TREE_FAN_IN)]
    return parts[0]


class _RowFunction:
    """``per_chunk`` of a block, after checking its values are finite."""

    def __init__(self, per_chunk, allow_missing=False):
        self.per_chunk = per_chunk
        self.allow_missing = allow_missing

    def __call__(self, block):
        if self.allow_missing:
            if np.isinf(block).any():
                raise ValueError("X contains infinity; remove or replace those rows.")
            check_rows_observed(block)
        elif not np.all(np.isfinite(block)):
            raise ValueError("X contains NaN or infinity; remove or impute those rows.")
        return self.per_chunk(block)


# ------------------------------------------------------------------- on the client
def _compute(*collections):
    """``dask.compute`` on the scheduler in use; a lost scheduler is a clear error."""
    import dask

    client = _current_client()
    with _scheduler_errors():
        if client is None:
            return dask.compute(*collections)
        # The client's own compute: no graph optimisation pass on the client each
        # iteration (the graphs are already minimal: a block task per block, a tree).
        out = list(collections)
        lazy = [i for i, c in enumerate(out) if is_dask(c)]
        values = client.gather(client.compute([out[i] for i in lazy], optimize_graph=False))
        for i, value in zip(lazy, values):
            out[i] = value
        return tuple(out)


def _persist(collection):
    client = _current_client()
    with _scheduler_errors():
        return collection.persist() if client is None else client.persist(collection)


@contextlib.contextmanager
def _scheduler_errors():
    """A lost or closed scheduler as a ConnectionError that says what to do."""
    try:
        yield
    except Exception as error:
        if not _is_comm_error(error):
            raise
        raise ConnectionError(
            f"Lost the connection to the Dask scheduler ({error!r}); the fit cannot go "
            "on. Check the scheduler is running and reachable, reconnect "
            "(distributed.Client(address)) and fit again."
        ) from error


def _current_client():
    """The current ``distributed.Client``, or None (Dask's local scheduler then, or
    the one chosen with ``dask.config.set(scheduler=...)``)."""
    import dask

    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _is_comm_error(error) -> bool:
    try:
        from distributed.client import ClosedClientError
        from distributed.comm.core import CommClosedError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(error, (CommClosedError, ClosedClientError, TimeoutError,
                              ConnectionError))


def _positive_rows(w, counts, picked) -> np.ndarray:
    """Rows of the ``picked``-th positive weights (positions among them, sorted)."""
    import dask

    ends = np.cumsum(counts)
    starts = ends - counts
    offsets = np.concatenate([[0], np.cumsum(w.chunks[0])[:-1]])
    tasks = []
    for b, block in enumerate(w.to_delayed().ravel()):
        lo, hi = np.searchsorted(picked, [starts[b], ends[b]])
        if hi > lo:
            tasks.append(dask.delayed(_nth_positive)(block, picked[lo:hi] - starts[b],
                                                     int(offsets[b])))
    return np.concatenate(_compute(*tasks)) if tasks else np.empty(0, dtype=np.intp)


def _nth_positive(block, nth, offset):
    return np.flatnonzero(block > 0)[nth] + offset


def _as_array(X, da):
    """A 2-D floating Dask array of whole rows with known chunks, and column names."""
    names = None
    if hasattr(X, "columns") and hasattr(X, "dtypes") and not isinstance(X, da.Array):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [str(c) for c, t in X.dtypes.items()
               if not is_numeric_dtype(t) or is_bool_dtype(t)]
        if bad:
            raise ValueError(f"X has non-numeric column(s) {', '.join(bad)}; select the "
                             "numeric ones (df[numeric_columns]).")
        names = [str(c) for c in X.columns]
        if not all(isinstance(c, str) for c in X.columns):
            names = None
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"Expected a dask.array.Array or dask.dataframe.DataFrame, got "
                        f"{type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D Dask array of rows, got {X.ndim} dimension(s); "
                         "reshape a single feature with X.reshape(-1, 1).")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes (NaN rows per block), e.g. after boolean "
            "indexing or from a DataFrame's .values; compute them first: "
            "X = X.compute_chunk_sizes() (or df.to_dask_array(lengths=True)).")
    if len(X.chunks[1]) > 1:
        raise ValueError(
            f"X is chunked along its features ({len(X.chunks[1])} column blocks, "
            f"{X.chunks[1]}); every block must hold whole rows: "
            "X = X.rechunk({1: -1}).")
    if X.dtype.kind not in "fiu" or X.dtype == bool:
        raise ValueError(f"X must hold numbers, got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if X.shape[0] < 2:
        raise ValueError(f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) "
                         "while a minimum of 2 is required.")
    return X, names


def _as_weights(w, X, da):
    if not isinstance(w, da.Array):
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(X.shape[0], float(w))
        if w.ndim == 1 and w.shape[0] == X.shape[0]:
            w = da.from_array(w, chunks=(X.chunks[0],))
    if w.ndim != 1 or w.shape[0] != X.shape[0]:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({X.shape[0]},)! "
                         f"Pass one weight per row of X ({X.shape[0]} rows).")
    if any(math.isnan(c) for c in w.chunks[0]):
        raise ValueError("sample_weight has unknown chunk sizes; compute them first: "
                         "sample_weight.compute_chunk_sizes().")
    if w.dtype.kind not in "fiu":
        raise ValueError("sample_weight must be numeric: pass one non-negative number "
                         "per row of X.")
    w = w.astype(np.float64)
    if w.chunks[0] != X.chunks[0]:
        w = w.rechunk((X.chunks[0],))
    return w
