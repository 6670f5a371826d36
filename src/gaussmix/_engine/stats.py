"""Additive sufficient statistics of a weighted Gaussian mixture E-step.

One pass of the E-step over a chunk of rows leaves, per component, the weight sum
``n_k``, the weighted mean and the weighted scatter about that mean. Statistics of two
disjoint chunks combine exactly (up to rounding) with Chan's pairwise rule, so a fit can be
summed over chunks, files, threads or cluster workers in any order.

Three scatter layouts serve every covariance model:

* ``"full"``: ``(K, D, D)``, one scatter matrix per component;
* ``"diag"``: ``(K, D)``, the diagonal of each component's scatter;
* ``"tied"``: ``(D, D)``, the pooled within-component scatter ``sum_k W_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .parallel import run_blocks


@dataclass(frozen=True)
class SuffStats:
    """Sufficient statistics of one or more chunks of weighted rows.

    Attributes
    ----------
    nk : ndarray of shape (K,)
        Responsibility-weighted row count of each component.
    means : ndarray of shape (K, D)
        Weighted mean of each component (arbitrary where ``nk == 0``).
    scatter : ndarray
        Weighted scatter about ``means`` in the layout named by ``kind``.
    kind : {"full", "diag", "tied"}
        Scatter layout.
    loglik : float
        Sum over rows of ``weight * log p(x)`` under the parameters of the E-step
        (0 for statistics built from given responsibilities).
    weight : float
        Total row weight.
    n_rows : int
        Number of rows with a positive weight.
    worst_loglik, worst_row :
        The row the parameters explain worst and its log-density; used to re-seed a
        component that has emptied. ``worst_row`` is None when unknown.
    noise_nk : float
        Weighted responsibility of the uniform noise component (0 without one).
    map_loglik : float
        Sum over rows of ``weight * log max_k z_k``, the log of each row's largest
        responsibility (noise included): mclust's ICL adds twice this to the BIC.
    """

    nk: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    kind: str
    loglik: float = 0.0
    weight: float = 0.0
    n_rows: int = 0
    worst_loglik: float = np.inf
    worst_row: np.ndarray | None = None
    noise_nk: float = 0.0
    map_loglik: float = 0.0

    @property
    def mean_loglik(self) -> float:
        """Weighted mean log-likelihood per row."""
        return self.loglik / self.weight

    def __add__(self, other: "SuffStats") -> "SuffStats":
        if self.kind != other.kind:
            raise ValueError(f"cannot add {self.kind!r} and {other.kind!r} statistics")
        na, nb = self.nk, other.nk
        n = na + nb
        # Chan et al.: merge means and scatters about each side's own mean.
        frac_b = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
        delta = other.means - self.means
        means = self.means + delta * frac_b[:, None]
        cross = na * frac_b  # = na * nb / n
        if self.kind == "full":
            scatter = self.scatter + other.scatter
            scatter += cross[:, None, None] * delta[:, :, None] * delta[:, None, :]
        elif self.kind == "diag":
            scatter = self.scatter + other.scatter + cross[:, None] * delta**2
        else:
            scatter = self.scatter + other.scatter + (delta * cross[:, None]).T @ delta
        if other.worst_loglik < self.worst_loglik:
            worst = (other.worst_loglik, other.worst_row)
        else:
            worst = (self.worst_loglik, self.worst_row)
        return SuffStats(
            nk=n,
            means=means,
            scatter=scatter,
            kind=self.kind,
            loglik=self.loglik + other.loglik,
            weight=self.weight + other.weight,
            n_rows=self.n_rows + other.n_rows,
            worst_loglik=worst[0],
            worst_row=worst[1],
            noise_nk=self.noise_nk + other.noise_nk,
            map_loglik=self.map_loglik + other.map_loglik,
        )

    def scaled(self, c: float) -> "SuffStats":
        """The statistics of every row's weight times ``c`` (means unchanged).

        Scaling the raw moments E[1], E[x], E[xxᵀ] by ``c`` scales the weight sums and
        the scatters and keeps the means, so ``a.scaled(1 - eta) + b.scaled(eta)`` is
        the convex blend of the moments that stepwise EM takes. ``n_rows`` and the
        worst row are kept: rows are not counted by their weight.
        """
        return replace(self, nk=self.nk * c, scatter=self.scatter * c,
                       loglik=self.loglik * c, weight=self.weight * c,
                       noise_nk=self.noise_nk * c, map_loglik=self.map_loglik * c)

    def with_component(self, k: int, nk: float, mean, scatter) -> "SuffStats":
        """Return a copy with component ``k`` replaced (used to re-seed)."""
        nks, means = self.nk.copy(), self.means.copy()
        nks[k], means[k] = nk, mean
        new_scatter = self.scatter.copy()
        if self.kind == "tied":
            new_scatter += scatter
        else:
            new_scatter[k] = scatter
        return replace(self, nk=nks, means=means, scatter=new_scatter)


def weighted_total(values, weights) -> float:
    """``sum_i weights_i * values_i`` in float64, rows of zero weight left out: such a
    row is an absent row, and its value may be -inf (0 * -inf would be NaN)."""
    total = float(np.asarray(values, dtype=np.float64) @ weights)
    if np.isnan(total):
        kept = weights > 0
        total = float(np.asarray(values, dtype=np.float64)[kept] @ weights[kept])
    return total


def with_chunk_totals(stats: SuffStats, X, sample_weight, loglik, map_loglik, worst,
                      noise_nk=0.0) -> SuffStats:
    """A chunk's statistics completed with its totals: the weight and rows of ``X`` (n, D)
    under ``sample_weight`` (None: ones), the log-likelihoods, and the worst-explained
    row from ``worst`` = (its log-likelihood, its index; -1 for none)."""
    if sample_weight is None:
        weight, n_rows = float(X.shape[0]), X.shape[0]
    else:
        weight = float(np.sum(sample_weight, dtype=np.float64))
        n_rows = int(np.count_nonzero(np.asarray(sample_weight) > 0))
    worst_loglik, worst_i = worst
    found = worst_i >= 0
    return replace(
        stats,
        loglik=loglik,
        weight=weight,
        n_rows=n_rows,
        worst_loglik=worst_loglik if found else np.inf,
        worst_row=np.asarray(X[worst_i], dtype=np.float64) if found else None,
        noise_nk=noise_nk,
        map_loglik=map_loglik,
    )


def empty_stats(n_components: int, n_features: int, kind: str) -> SuffStats:
    """Statistics of no rows: the identity of ``+``."""
    shape = {
        "full": (n_components, n_features, n_features),
        "diag": (n_components, n_features),
        "tied": (n_features, n_features),
    }[kind]
    return SuffStats(
        nk=np.zeros(n_components),
        means=np.zeros((n_components, n_features)),
        scatter=np.zeros(shape),
        kind=kind,
    )


# The shared products expand squares about one shift s, so a component whose mean lies
# far from s (its squared Mahalanobis distance C) loses about eps * C of each
# log-density and of its scatter. Where that could exceed this (per dtype), the
# component is "far": its log-densities and statistics are taken about its own mean,
# from the raw rows. In float64 that is a component more than ~67 sd from the mixture's
# mean (so that even summed over a million rows the loss stays below 1e-6); ordinary
# data has none, and the shared products keep their speed.
FAR_TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-3}

# Sparse whitened scatter (Moments.add_whitened): pairs (component, row) with a
# responsibility below SPARSE_TAU may be skipped, as long as the skipped trace stays
# below CERTIFIED_RATIO (the float64 unit roundoff) of the kept one; blocks where more
# than SPARSE_MAX_FRACTION of the pairs are kept go dense (gathering would not pay).
SPARSE_TAU = 2.0**-100
CERTIFIED_RATIO = 2.0**-53
SPARSE_MAX_FRACTION = 0.5
# Gathering costs about this many features' worth of dense scatter per pair (the
# NumPy calls per block, the gather itself): the sparse scatter pays only when the
# skipped share of the pairs times D exceeds it. Measured on 250,000 rows, one
# thread: dense is faster at D = 8 and 16 (K = 16: 0.44 s against 0.62 s), sparse
# from D = 24 on (K = 32, D = 64: 3.8 s against 6.9 s).
SPARSE_BREAK_EVEN = 18.0


class _SparseWork:
    """Work arrays of the sparse whitened scatter for blocks of up to ``pairs``
    (component, row) pairs: the block's mask and traces, the kept pairs' positions,
    roots, gather indices and gathered residuals, the staging area (at least a block's
    worth of kept pairs), the staged rows' components, and the sorted copy."""

    def __init__(self, pairs, n_features, dtype):
        self.keep = np.empty(pairs, dtype=bool)
        self.trace = np.empty(pairs, dtype=dtype)
        self.resp = np.empty(pairs, dtype=dtype)
        self.positions = np.arange(pairs, dtype=np.intp)
        kept = int(SPARSE_MAX_FRACTION * pairs) + 1  # at most this many pairs a block
        self.flat = np.empty(kept, dtype=np.intp)
        self.base = np.empty(kept, dtype=np.intp)
        self.root = np.empty(kept, dtype=dtype)
        self.index = np.empty(kept * n_features, dtype=np.intp)
        self.gathered = np.empty(kept * n_features, dtype=dtype)
        rows = max(kept, (1 << 18) // max(n_features, 1))
        self.stage = np.empty((rows, n_features), dtype=dtype)
        self.sorted = np.empty((rows, n_features), dtype=dtype)
        self.stage_k = np.empty(rows, dtype=np.intp)


class Moments:
    """float64 running sums of weighted rows, about fixed points, block by block.

    Blocks arrive feature-major ("transposed": one row per feature, one column per
    data row), shifted by a common ``shift`` (a point near the data), with a row of
    ones at the bottom: ``[X - s; 1]`` (D + 1, b), or for the "diag" layout
    ``[(X - s)**2; X - s; 1]`` (2 D + 1, b). Feature-major keeps every element-wise
    step on long contiguous rows whatever D and K, and one product
    ``features @ R^T`` gives the weight sums (from the ones), the sums and, for "diag",
    the sums of squares of all components at once.

    Sums are taken about ``shift`` for "diag" and "tied" and about per-component
    centres ``shift + offsets[k]`` for "full" (normally the current means), so the
    corrections that turn them into scatters about the weighted means are small and
    lose no digits for data far from the origin. Each block's products run in the
    block's dtype (BLAS); the running sums are float64.

    Parameters
    ----------
    n_components, n_features : int
    kind : {"full", "diag", "tied"}
    offsets : ndarray of shape (K, D), optional
        Per-component centres minus the shift ("full" only); None means zeros.
    dtype : numpy dtype
        dtype of the blocks.
    """

    def __init__(self, n_components, n_features, kind, offsets=None, dtype=np.float64,
                 far=None):
        self.kind = kind
        self.nk = np.zeros(n_components)
        self.sums = np.zeros((n_components, n_features))
        self.second = np.zeros(
            {"full": (n_components, n_features, n_features),
             "diag": (n_components, n_features),
             "tied": (n_features, n_features)}[kind]
        )
        self.offsets = None if offsets is None or not np.any(offsets) else offsets
        self._offsets_t = None if self.offsets is None else self.offsets.astype(dtype)[:, :, None]
        self.unwhiten = None  # set by set_whitening when ``second`` is whitened
        self._z = self._sq = self._dense = self._root = None  # work buffers, made on first use
        # Sparse whitened scatter (add_whitened with half_maha): its work arrays and
        # staged rows, and the trace certificate (see add_whitened).
        self._stage = None
        self._staged = 0
        self.sparse_kernels = None  # compiled staging (compiled.sparse_kernels), if any
        self.kept_trace = np.zeros(n_components)
        self.dropped_trace = np.zeros(n_components)
        # Far components (indices, centres in float64, exact in ``dtype``): summed about
        # their own centres from the raw rows, not about the shift (see add_far).
        self.far, self.far_centres = (None, None) if far is None else far
        self._far_set = frozenset() if self.far is None else frozenset(self.far.tolist())
        if self.far is not None:
            self._far_centres_t = self.far_centres.astype(dtype)

    def add(self, feat, resp_t, unit_rows=False, X=None):
        """Add a block.

        Parameters
        ----------
        feat : ndarray of shape (D + 1, b), or (2 D + 1, b) for "diag"
            ``[X - s; 1]``, or ``[(X - s)**2; X - s; 1]`` for "diag".
        resp_t : ndarray of shape (K, b), C-contiguous, dtype of feat
            Responsibilities times row weights, one row per component.
        unit_rows : bool
            True when every column of ``resp_t`` sums to one ("tied": saves a pass).
        X : ndarray of shape (b, D), optional
            The raw rows: needed when there are far components.
        """
        kind = self.kind
        d = self.sums.shape[1]
        if self.far is not None:
            self.add_far(X, resp_t, second=True)
            if self.far.size == resp_t.shape[0]:
                return  # every component is far: nothing shared
            resp_t = resp_t.copy()
            resp_t[self.far] = 0.0  # the shared products leave the far components out
        both = feat @ resp_t.T  # (F, K): ones row -> n_k, X - s -> sums, squares
        nk_block = both[-1].astype(np.float64)
        self.nk += nk_block
        if kind == "diag":
            self.second += both[:d].T
            self.sums += both[d : 2 * d].T
            return
        self.sums += both[:d].T
        xt = feat[:d]
        if kind == "tied":
            # Pooled scatter: sum_k r_ik is the row's weight; one symmetric product.
            if unit_rows:
                self.second += xt @ xt.T
            else:
                z = xt * np.sqrt(resp_t.sum(axis=0))
                self.second += z @ z.T
            return
        # "full": per component sqrt(r) * (x - centre_k), then a symmetric rank-b update
        # (NumPy hands z @ z.T to BLAS syrk).
        if self.offsets is not None:
            self.sums -= nk_block[:, None] * self.offsets
        root = np.sqrt(resp_t)
        z = self._buffer(xt.shape, xt.dtype)
        for k in range(resp_t.shape[0]):
            if k in self._far_set:
                continue
            if self._offsets_t is None:
                np.multiply(xt, root[k], out=z)
            else:
                np.subtract(xt, self._offsets_t[k], out=z)
                z *= root[k]
            self.second[k] += z @ z.T

    def add_far(self, X, resp_t, second):
        """Add the far components' share of a block of raw rows ``X`` (b, D) about their
        own centres: the weight, the sums and (with ``second``) the second moments."""
        kind = self.kind
        for i, k in enumerate(self.far):
            r = resp_t[k]
            z = X - self._far_centres_t[i]
            self.nk[k] += float(r.sum(dtype=np.float64))
            self.sums[k] += r @ z
            if not second:
                continue
            if kind == "diag":
                self.second[k] += r @ (z * z)
                continue
            z *= np.sqrt(r)[:, None]
            if kind == "tied":
                self.second += z.T @ z
            else:
                self.second[k] += z.T @ z

    def add_whitened(self, feat, resp_t, parts, half_maha=None, X=None):
        """Add a block of the full kernel from its whitened residuals.

        ``feat`` is the block in the "lead" layout ``[1; X - s]`` (D + 1, b). ``parts``
        is a list of ``(a, b, r)``: ``r[k]`` (b - a, b) holds rows ``a:b`` of the whitened
        residuals ``c U_k^T (x - centre_k)`` of each row x (``c`` a constant), the
        residuals the E-step has just computed, cut where it computed them. Their
        weighted scatter is the scatter about the centres in whitened coordinates:
        one scaling and K symmetric rank-b updates, no second centring pass over the
        rows. :meth:`finish` maps it back with ``V_k^T . V_k`` (``V_k = U_k^{-1} / c``,
        set by :meth:`set_whitening`). The parts may be overwritten.

        With ``half_maha`` (K, b), the squared norms of the residuals, the scatter
        may skip the pairs (k, i) whose responsibility is below ``SPARSE_TAU`` (most
        of them when the components are well separated: each row then belongs to one
        or two): only the other residuals are gathered, scaled and summed. What is
        skipped is tallied exactly: ``dropped_trace[k]`` is the trace of the skipped
        part of component k's whitened scatter and ``kept_trace[k]`` that of the
        rest. The skipped part is positive semi-definite, so each of its entries is at
        most its trace; when ``dropped_trace <= CERTIFIED_RATIO * kept_trace`` it is
        below the rounding of the dense sum and the result is the dense one. The
        caller checks that (:meth:`certified`) and recomputes densely otherwise.
        """
        shared = resp_t
        if self.far is not None:  # weights and sums of the far ones from the raw rows
            self.add_far(X, resp_t, second=False)
            shared = resp_t.copy()
            shared[self.far] = 0.0
        both = feat @ shared.T  # (D + 1, K): ones row -> n_k, X - s -> sums
        nk_block = both[0].astype(np.float64)
        self.nk += nk_block
        self.sums += both[1:].T
        if self.offsets is not None:
            self.sums -= nk_block[:, None] * self.offsets
        if half_maha is not None and self._add_sparse(resp_t, parts, half_maha):
            return
        root = np.sqrt(resp_t, out=self._root_buffer(resp_t))[:, None, :]
        if len(parts) == 1:
            resid = parts[0][2]
            np.multiply(resid, root, out=resid)
        else:  # assemble the pieces while scaling them: no extra pass
            n_comp, m = resp_t.shape
            resid = self._dense_buffer((n_comp, self.sums.shape[1], m), resp_t.dtype)
            for a, b, r in parts:
                np.multiply(r, root, out=resid[:, a:b])
        # One batched product (a BLAS call per component, no Python loop).
        buf = self._square_buffer(resid.dtype)
        np.matmul(resid, resid.transpose(0, 2, 1), out=buf)
        self.second += buf

    def _root_buffer(self, resp_t):
        buf = self._root
        if buf is None or buf.size < resp_t.size or buf.dtype != resp_t.dtype:
            buf = self._root = np.empty(resp_t.size, dtype=resp_t.dtype)
        return buf[: resp_t.size].reshape(resp_t.shape)

    def _dense_buffer(self, shape, dtype):
        buf = self._dense
        if buf is None or buf.size < np.prod(shape) or buf.dtype != dtype:
            buf = self._dense = np.empty(int(np.prod(shape)), dtype=dtype)
        return buf[: int(np.prod(shape))].reshape(shape)

    def _add_sparse(self, resp_t, parts, half_maha):
        """The scatter of the pairs with responsibility >= SPARSE_TAU; False: go dense.

        The kept residuals are gathered, scaled, into a staging area, and added by
        component with one symmetric product each when it fills; by two compiled loops
        where ``sparse_kernels`` are set (the same rows, in the same order, with the
        same arithmetic), else by NumPy. The block-sized work arrays (masks, traces,
        the staging area and its sorted copy) are kept from block to block: with
        glibc's dynamic mmap threshold off, as Dask's workers run, every large
        temporary would cost a fresh mapping and its page faults.
        """
        n_comp, m = resp_t.shape
        d = self.sums.shape[1]
        if d <= SPARSE_BREAK_EVEN:  # could never pay (see SPARSE_BREAK_EVEN)
            return False
        pairs = n_comp * m
        work = self._work(pairs, d, resp_t.dtype)
        # Which pairs are kept, and each component's whitened trace kept and skipped.
        if self.sparse_kernels is not None:
            traces = np.zeros((2, n_comp))
            nnz = self.sparse_kernels[0](resp_t, half_maha, SPARSE_TAU, traces)
            kept, skipped = traces
        else:
            keep = np.greater_equal(resp_t, SPARSE_TAU,
                                    out=work.keep[:pairs].reshape(n_comp, m))
            nnz = int(np.count_nonzero(keep))
            trace = np.multiply(resp_t, half_maha,
                                out=work.trace[:pairs].reshape(n_comp, m))
            kept = trace.sum(axis=1, dtype=np.float64, where=keep)
            np.logical_not(keep, out=keep)  # in place: no block-sized temporary
            skipped = trace.sum(axis=1, dtype=np.float64, where=keep)
            np.logical_not(keep, out=keep)
        if nnz > SPARSE_MAX_FRACTION * pairs or (pairs - nnz) * d <= SPARSE_BREAK_EVEN * pairs:
            self.kept_trace += kept + skipped
            return False
        self.kept_trace += kept
        self.dropped_trace += skipped
        if self._staged + nnz > work.stage.shape[0]:
            self._flush()
        if self.sparse_kernels is not None:
            for a, _, r in parts:
                self.sparse_kernels[1](resp_t, SPARSE_TAU, r, a, work.stage, work.stage_k,
                                       self._staged)
        else:
            self._stage_kept(resp_t, parts, keep, nnz, work)
        self._staged += nnz
        return True

    def _stage_kept(self, resp_t, parts, keep, nnz, work):
        """NumPy's staging of the kept pairs (``keep``, (K, m)) after the staged rows."""
        n_comp, m = resp_t.shape
        pairs = n_comp * m
        lo, hi = self._staged, self._staged + nnz
        # The kept pairs' positions k * m + i (so sorted by component), their
        # components and their scaled residuals, all into the kept work arrays.
        flat = np.compress(keep.ravel(), work.positions[:pairs], out=work.flat[:nnz])
        kk = np.floor_divide(flat, m, out=work.stage_k[lo:hi])
        resp = work.resp[:pairs].reshape(n_comp, m)
        np.copyto(resp, resp_t)  # contiguous: resp_t is a view into wider rows
        root = np.take(resp.ravel(), flat, out=work.root[:nnz], mode="clip")
        np.sqrt(root, out=root)
        for a, b, r in parts:
            width = b - a
            # r (K, width, m) is contiguous: (k, j, i) sits at k*width*m + j*m + i.
            base = np.multiply(kk, (width - 1) * m, out=work.base[:nnz])
            base += flat
            index = work.index[: nnz * width].reshape(nnz, width)
            np.add(base[:, None], np.arange(0, width * m, m), out=index)
            gathered = work.gathered[: nnz * width].reshape(nnz, width)
            np.take(r.ravel(), index, out=gathered, mode="clip")
            np.multiply(gathered, root[:, None], out=work.stage[lo:hi, a:b])

    def _work(self, pairs, d, dtype):
        """The sparse scatter's work arrays, for blocks of up to ``pairs`` pairs."""
        work = self._stage
        if work is None or work.keep.size < pairs or work.stage.dtype != dtype:
            self._flush()
            work = self._stage = _SparseWork(pairs, d, dtype)
        return work

    def _flush(self):
        """Add the staged rows into the whitened scatter, one symmetric product each component."""
        n = self._staged
        if not n:
            return
        work = self._stage
        comp = work.stage_k[:n]
        order = np.argsort(comp, kind="stable")
        z = np.take(work.stage[:n], order, axis=0, out=work.sorted[:n], mode="clip")
        counts = np.bincount(comp, minlength=self.second.shape[0])
        start = 0
        for k in np.flatnonzero(counts):
            stop = start + counts[k]
            zk = z[start:stop]
            self.second[k] += zk.T @ zk  # NumPy hands a.T @ a to BLAS syrk
            start = stop
        self._staged = 0

    def certified(self) -> bool:
        """Whether what the sparse scatter skipped is below rounding (see add_whitened)."""
        return bool(np.all(self.dropped_trace <= CERTIFIED_RATIO * self.kept_trace))

    def _square_buffer(self, dtype):
        buf = self._sq
        if buf is None or buf.dtype != dtype:
            buf = self._sq = np.empty(self.second.shape, dtype=dtype)
        return buf

    def set_whitening(self, unwhiten):
        """Declare ``second`` whitened: ``finish`` maps it by ``unwhiten[k]^T . unwhiten[k]``."""
        self.unwhiten = unwhiten

    def _buffer(self, shape, dtype):
        z = self._z
        if z is None or z.shape[1] < shape[1] or z.dtype != dtype:
            z = self._z = np.empty(shape, dtype=dtype)
        return z[:, : shape[1]]

    def merge(self, other: "Moments") -> "Moments":
        """Add another accumulator's sums (same shift and offsets) into this one."""
        self._flush()
        other._flush()
        self.nk += other.nk
        self.sums += other.sums
        self.second += other.second
        self.kept_trace += other.kept_trace
        self.dropped_trace += other.dropped_trace
        return self

    def finish(self, shift) -> SuffStats:
        """Statistics (nk, means, scatter about the means) of everything added."""
        self._flush()
        nk = self.nk
        safe_nk = np.where(nk > 0, nk, 1.0)
        delta = self.sums / safe_nk[:, None]  # weighted mean minus centre
        means = shift + delta
        if self.offsets is not None:
            means += self.offsets
        if self.far is not None:  # about their own centres
            means[self.far] = self.far_centres + delta[self.far]
        kind = self.kind
        second = self.second
        if self.unwhiten is not None:
            v = self.unwhiten
            second = np.swapaxes(v, 1, 2) @ second @ v
            second = 0.5 * (second + np.swapaxes(second, 1, 2))  # exactly symmetric
        if kind == "full":
            # d_i d_j first, then n_k: the correction (and the scatter) exactly symmetric
            scatter = second - nk[:, None, None] * (delta[:, :, None] * delta[:, None, :])
        elif kind == "diag":
            scatter = second - nk[:, None] * delta**2
            np.maximum(scatter, 0.0, out=scatter)  # rounding must not make it negative
        else:
            scatter = second - (delta * nk[:, None]).T @ delta
        empty = nk <= 0
        if empty.any():
            means[empty] = 0.0
            if kind != "tied":
                scatter[empty] = 0.0
        return SuffStats(nk=nk, means=means, scatter=scatter, kind=kind)


# Elements of a block's work arrays (features, responsibilities, scatter buffer):
# about half of a core's L2.
BLOCK_ELEMENTS = 1 << 17


def feature_rows(n_features, kind) -> int:
    """Rows of a feature-major block: ``[X - s; 1]``, ``[1; X - s]`` ("lead"), or
    ``[(X - s)**2; X - s; 1]`` ("diag")."""
    return 2 * n_features + 1 if kind == "diag" else n_features + 1


def fill_features(feat, X, shift_t, kind):
    """Write the feature-major block of rows ``X`` (b, D) into ``feat[:, :b]``."""
    d, b = X.shape[1], X.shape[0]
    if kind == "diag":
        xt = feat[d : 2 * d, :b]
        np.subtract(X.T, shift_t[:, None], out=xt)
        np.multiply(xt, xt, out=feat[:d, :b])
    elif kind == "lead":  # the ones first: every prefix of rows is a product's input
        np.subtract(X.T, shift_t[:, None], out=feat[1:, :b])
        feat[0, :b] = 1.0
        return feat[:, :b]
    else:
        np.subtract(X.T, shift_t[:, None], out=feat[:d, :b])
    feat[-1, :b] = 1.0
    return feat[:, :b]


def block_rows(n_components, n_features, kind) -> int:
    """Rows per block of the statistics kernels: work arrays that stay in cache."""
    width = feature_rows(n_features, kind) + 2 * n_components + (
        n_features if kind == "full" else 0)
    rows = min(16384, max(512, BLOCK_ELEMENTS // width))
    return int(rows - rows % 64)


def stats_from_resp(X, resp_w, kind, centers=None) -> SuffStats:
    """Statistics of one chunk from its (weighted) responsibilities.

    Sums are taken about the chunk's mean (and, for "full" with ``centers``, about each
    component's centre), so no digits are lost to data far from the origin. A component
    whose mean is so far from the others' that the shared sums would lose digits (see
    ``far_components``) is summed again about its own mean from the raw rows.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
        The chunk.
    resp_w : ndarray of shape (n, K), same dtype as X
        Responsibilities already multiplied by the row weights.
    kind : {"full", "diag", "tied"}
        Scatter layout to produce.
    centers : ndarray of shape (K, D), optional
        Per-component shift for the "full" layout, normally the current means.

    Returns
    -------
    SuffStats
        ``loglik`` and ``weight`` are left for the caller to fill in.
    """
    n_samples, n_features = X.shape
    n_components = resp_w.shape[1]
    if n_samples == 0:
        return empty_stats(n_components, n_features, kind)
    resp_w = np.asarray(resp_w, dtype=X.dtype)
    shift = X.mean(axis=0, dtype=np.float64)
    offsets = None
    if kind == "full" and centers is not None:
        offsets = np.asarray(centers, dtype=np.float64) - shift
    stats = _summed(X, resp_w, kind, shift, offsets, None)
    far = far_components(stats, shift, X.dtype)
    if far.size:  # again, the far ones about their own means
        centres = stats.means[far].astype(X.dtype).astype(np.float64)
        stats = _summed(X, resp_w, kind, shift, offsets, (far, centres))
    return stats


def stats_from_labels(X, labels, weights, kind, n_components) -> SuffStats:
    """Statistics of hard assignments: each row wholly in component ``labels[i]``, or
    in none (-1), as ``stats_from_resp`` of their one-hot responsibilities.

    Each component is summed about its own mean from its own rows (two passes over
    them), so it costs N D^2 for "full" rather than the one-hot products' N K D^2, and
    no digits are lost to data far from the origin.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
    labels : ndarray of int of shape (n,)
    weights : ndarray of shape (n,) or None
        Row weights (None: all ones).
    kind : {"full", "diag", "tied"}
    n_components : int

    Returns
    -------
    SuffStats
        ``loglik`` and ``weight`` are left for the caller to fill in.
    """
    stats = empty_stats(n_components, X.shape[1], kind)
    labels = np.asarray(labels)
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if n_components < 2**15:  # NumPy's stable sort of 16-bit integers is a radix sort
        labels = labels.astype(np.int16)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_components + 1))
    for k in range(n_components):
        rows = order[bounds[k] : bounds[k + 1]]
        if not rows.size:
            continue
        xk = np.asarray(X[rows], dtype=np.float64)
        wk = None if weights is None else weights[rows]
        nk = float(rows.size) if wk is None else float(wk.sum())
        if not nk > 0:
            continue
        mean = (xk.sum(axis=0) if wk is None else wk @ xk) / nk
        z = xk - mean
        zw = z if wk is None else z * wk[:, None]
        stats.nk[k], stats.means[k] = nk, mean
        if kind == "diag":
            stats.scatter[k] = np.einsum("ij,ij->j", zw, z)
        elif kind == "full":
            stats.scatter[k] = zw.T @ z
        else:
            stats.scatter[:] += zw.T @ z  # (frozen dataclass: the array in place)
    return stats


def far_components(stats: SuffStats, shift, dtype) -> np.ndarray:
    """Components whose statistics, summed about ``shift``, may have lost digits.

    Their squared distance from the shift in units of their own spread, C, costs about
    eps * C of their scatter; those where that exceeds the E-step's FAR_TOLERANCE (an
    unusable scatter counts too).
    """
    nk = np.where(stats.nk > 0, stats.nk, 1.0)
    if stats.kind == "full":
        spread = np.einsum("kii->ki", stats.scatter) / nk[:, None]
    elif stats.kind == "diag":
        spread = stats.scatter / nk[:, None]
    else:
        spread = np.broadcast_to(np.diag(stats.scatter) / nk.sum(), stats.means.shape)
    delta2 = (stats.means - shift) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(spread > 0, delta2 / spread, np.where(delta2 > 0, np.inf, 0.0))
    eps = np.finfo(dtype).eps
    far = eps * distance.sum(axis=1) > FAR_TOLERANCE.get(np.dtype(dtype), 1e-3)
    return np.flatnonzero(far & (stats.nk > 0))


def _summed(X, resp_w, kind, shift, offsets, far) -> SuffStats:
    n_samples, n_features = X.shape
    n_components = resp_w.shape[1]
    shift_t = shift.astype(X.dtype)
    rows = block_rows(n_components, n_features, kind)

    def make_state():
        feat = np.empty((feature_rows(n_features, kind), rows), dtype=X.dtype)
        return Moments(n_components, n_features, kind, offsets, X.dtype, far), feat

    def work(state, start, stop):
        acc, feat = state
        block = fill_features(feat, X[start:stop], shift_t, kind)
        acc.add(block, np.ascontiguousarray(resp_w[start:stop].T), X=X[start:stop])

    states = run_blocks(n_samples, rows, make_state, work)
    total = states[0][0]
    for other, _ in states[1:]:
        total.merge(other)
    return total.finish(shift)
