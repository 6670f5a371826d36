"""The E-step kernel: log-densities, responsibilities and statistics of one chunk.

Everything is in log space: log-densities come through the Cholesky factors of the
precisions and are combined across components with log-sum-exp, so no density is ever
exponentiated on its own. The kernels compute in the chunk's dtype (float32 halves the
memory traffic); every sum that leaves a chunk is float64.

Shape of the work, for speed. Rows go through in blocks small enough for the cache,
on every core (:mod:`gaussmix._engine.parallel`), feature-major (one row per feature, one
column per data row, so element-wise steps run along long contiguous rows whatever D
and K). Each block is shifted once by the mixture's mean ``s`` (a point near the data,
so nothing below cancels because the data sit far from the origin), and that shifted
block serves both the log-densities and the statistics:

* full: the block is ``[1; X - s]`` and the K transposed precision factors are
  stacked, with ``-U_k^T (mu_k - s)`` against the ones: the whitened residuals
  ``U_k^T (x - mu_k)`` of every component at once, in a few products, one per band of
  residual rows (``U_k^T`` is lower triangular: band ``[a, b)`` reads only the first
  ``b`` features, so the factors' zeros are skipped). Their squares summed per
  component are the Mahalanobis distances; scaled by ``sqrt(r_k)`` the same residuals
  give each component's scatter about its current mean in whitened coordinates,
  mapped back once per chunk (``Moments.add_whitened``). Only the pairs (component,
  row) whose responsibility is not negligible are gathered for the scatter (with
  well-separated components, about one per row instead of K), with a certificate
  that what was skipped is below rounding, else the chunk is redone densely.
* diag, spherical: one product ``B @ [(X - s)**2; X - s; 1]`` (K, 2 D + 1) for the
  log-densities and one ``[(X - s)**2; X - s; 1] @ R^T`` for the statistics.
* tied: ``Y = U^T (X - s)``, then one product ``[M, c] @ [Y; 1]`` (K, D + 1).
"""

from __future__ import annotations

import math

import numpy as np

from . import compiled, missing
from .params import LOG_2PI, Params, inverse_factors
from .parallel import run_blocks, single_threaded_blas
from .stats import (FAR_TOLERANCE, Moments, SuffStats, block_rows, feature_rows,
                    fill_features, weighted_total, with_chunk_totals)


# Elements of the full kernel's (K D, columns) residual block, at most: wider
# products run faster than the residuals' trip out of L2 costs, up to a few hundred
# columns. A block is cut into equal sub-blocks (W3: 640 rows as 2 x 320).
FULL_RESIDUAL_ELEMENTS = 1 << 20
# The full kernel's product is cut into row bands of about this many residuals per
# component: U_k^T is lower triangular, so band [a, b) reads only features [0, b).
# Narrower bands multiply more slowly (D = 64: four bands, -34% flops, -8% time
# against two bands, -20% against one).
FULL_BAND_WIDTH = 16



def _shift(params: Params) -> np.ndarray:
    """A point near the data (the mixture's mean), to centre before expanding squares."""
    return params.weights @ params.means / params.weights.sum()


class _Prepared:
    """What the block kernel needs from ``params``, in the chunk's dtype."""

    def __init__(self, params: Params, dtype, with_weights=True):
        n_components, n_features = params.means.shape
        self.family = family = params.family
        self.dtype = dtype = np.dtype(dtype)
        self.n_components, self.n_features = n_components, n_features
        # The uniform noise component's weighted log-density, a row after the K
        # Gaussian ones (mclust's noise; -inf while its proportion is 0); None: no noise.
        self.noise = None
        if params.noise_log_density is not None:
            pro = params.noise_proportion
            self.noise = (math.log(pro) + params.noise_log_density if pro > 0
                          else -math.inf)
        # Feature layout of the blocks (see _stats.Moments): diag and spherical read
        # [(X - s)**2; X - s; 1], tied [X - s; 1], full [1; X - s] ("lead").
        self.layout = {"diag": "diag", "spherical": "diag", "full": "lead"}.get(family, "full")
        shift = _shift(params)
        self.shift = shift
        self.shift_t = shift.astype(dtype)
        mc = np.ascontiguousarray(params.means) - shift
        const = params.log_det_cholesky - 0.5 * n_features * LOG_2PI
        if with_weights:
            log_weights = params.log_weights
            const = const + (np.log(params.weights) if log_weights is None else log_weights)
        # Contiguous first: a product's rounding may depend on the operands' layout,
        # and equal parameters must give bit-equal results (saved and loaded models).
        pc = np.ascontiguousarray(params.precisions_cholesky)
        self.means, self.factors = params.means, pc  # for _nearest
        if family == "full":
            # Residual j of component k is -((mu_k - s) U_k)_j against the ones plus
            # column j of U_k against X - s, which has zeros past feature j; each band
            # of residuals [a, b) is one product (K (b - a), b + 1) @ [1; X - s][:b + 1].
            # Scaled by sqrt(1/2) so the summed squares are maha / 2.
            ut = pc.transpose(0, 2, 1)
            centre = -np.einsum("ki,kij->kj", mc, pc)
            self.bands = []
            for lo, hi in _bands(n_features):
                a = np.empty((n_components, hi - lo, hi + 1))
                a[:, :, 0] = centre[:, lo:hi]
                a[:, :, 1:] = ut[:, lo:hi, :hi]
                a = (a.reshape(-1, hi + 1) * math.sqrt(0.5)).astype(dtype)
                self.bands.append((lo, hi, a))
            self.sub_rows = int(max(16, FULL_RESIDUAL_ELEMENTS // (n_components * n_features)))
            self.offset_t = const.astype(dtype)[:, None]
        elif family == "tied":
            # wlp = y . m_k - |y|^2 / 2 + (const - |m_k|^2 / 2), y = U^T (x - s).
            m = mc @ pc
            self.factor = np.ascontiguousarray(pc.T).astype(dtype)
            b = np.empty((n_components, n_features + 1))
            b[:, :n_features] = m
            b[:, n_features] = const - 0.5 * np.einsum("ij,ij->i", m, m)
            self.matrix = b.astype(dtype)
        else:  # diag, spherical: maha = xc^2 . p - 2 xc . (mc p) + mc^2 . p
            prec = pc**2
            if family == "spherical":
                prec = np.repeat(prec[:, None], n_features, axis=1)
            b = np.empty((n_components, 2 * n_features + 1))
            b[:, :n_features] = -0.5 * prec
            b[:, n_features : 2 * n_features] = mc * prec
            b[:, 2 * n_features] = const - 0.5 * np.einsum("ij,ij->i", mc * mc, prec)
            self.matrix = b.astype(dtype)
        # Clamp: wlp <= const  <=>  maha >= 0 (expanded squares may round below zero).
        self.cap_t = const.astype(dtype)[:, None]
        _prepare_far(self, params, mc, pc, const)
        self.rows = block_rows(n_components, n_features,
                               {"full": "full", "tied": "tied"}.get(family, "diag"))
        # The compiled column log-sum-exp and sparse scatter staging, where the chunk
        # is large enough (see _logsumexp_cols, Moments._add_sparse); set per chunk.
        self.responsibilities_kernel = None
        self.sparse_kernels = None
        if family == "full":
            n_sub = -(-self.rows // min(self.sub_rows, self.rows))
            self.sub_rows = -(-self.rows // n_sub)


def _prepare_far(prep, params, mc, pc, const):
    """Find the far components (see FAR_TOLERANCE) and what their exact rows need."""
    family = prep.family
    if family == "full":
        distance = np.einsum("kd,kd->k", *(2 * [np.einsum("ki,kij->kj", mc, pc)]))
    elif family == "tied":
        m = mc @ pc
        distance = np.einsum("kd,kd->k", m, m)
    else:
        prec = pc**2 if family == "diag" else np.outer(pc**2, np.ones(mc.shape[1]))
        distance = np.einsum("kd,kd->k", mc * mc, prec)
    eps = np.finfo(prep.dtype).eps
    prep.far = np.flatnonzero(eps * distance > FAR_TOLERANCE.get(prep.dtype, 1e-3))
    if not prep.far.size:
        return
    far = prep.far
    # The centres as the kernels see them (in the chunk's dtype), and in float64.
    prep.far_means_t = params.means[far].astype(prep.dtype)
    prep.far_means = prep.far_means_t.astype(np.float64)
    prep.far_const_t = const[far].astype(prep.dtype)
    if family == "full":
        prep.far_factor_t = (pc[far].transpose(0, 2, 1) * math.sqrt(0.5)).astype(prep.dtype)
    elif family == "tied":
        prep.far_factor_t = pc.astype(prep.dtype)
    else:
        prec = pc[far] ** 2 if family == "diag" else np.outer(pc[far] ** 2,
                                                             np.ones(mc.shape[1]))
        prep.far_prec_t = prec.astype(prep.dtype)



def _exact_far_rows(prep, X, wlp):
    """Overwrite the far components' rows of ``wlp`` (K, b) with their log-densities
    taken about their own means, from the raw rows ``X`` (b, D): no cancellation."""
    for i, k in enumerate(prep.far):
        z = X - prep.far_means_t[i]
        if prep.family == "tied":
            z = z @ prep.far_factor_t
            maha = np.einsum("ij,ij->i", z, z)
        else:
            z *= z
            maha = z @ prep.far_prec_t[i]
        np.subtract(prep.far_const_t[i], 0.5 * maha, out=wlp[k])


def _layout(kind):
    return "diag" if kind == "diag" else "full"


def _bands(n_features):
    """Row bands ``[a, b)`` of the full kernel's residuals (see FULL_BAND_WIDTH)."""
    n = max(1, n_features // max(1, FULL_BAND_WIDTH))
    edges = [round(i * n_features / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _whiten(prep, blk, cols, X):
    """Whitened residuals of every component for the block columns ``cols`` ("lead"),
    whose raw rows are ``X`` (m, D).

    Returns the bands ``(a, b, r)``, ``r`` (K, b - a, m) in ``blk.resid``, and the
    summed squares (maha / 2) in ``blk.half_maha[:, :m]``. A far component's residuals
    are taken from the raw rows about its own mean.
    """
    centred = [(X - mu).T for mu in prep.far_means_t] if prep.far.size else ()
    k, m = prep.n_components, cols.shape[1]
    half_maha = blk.half_maha[:, :m]
    out, used = [], 0
    for i, (lo, hi, mat) in enumerate(prep.bands):
        size = k * (hi - lo) * m
        r = blk.resid[used : used + size].reshape(k, hi - lo, m)
        used += size
        np.matmul(mat, cols[: hi + 1], out=r.reshape(k * (hi - lo), m))
        for j, c in enumerate(prep.far):
            np.matmul(prep.far_factor_t[j][lo:hi, :hi], centred[j][:hi], out=r[c])
        if i == 0:
            np.einsum("kdj,kdj->kj", r, r, out=half_maha)
        else:
            sq = blk.band_sq[:, :m]
            np.einsum("kdj,kdj->kj", r, r, out=sq)
            half_maha += sq
        out.append((lo, hi, r))
    return out, half_maha


class _Block:
    """One thread's buffers for feature-major blocks of rows."""

    def __init__(self, prep: _Prepared):
        self.prep = prep
        rows, d, k = prep.rows, prep.n_features, prep.n_components
        dtype = prep.dtype
        self.feat = np.empty((feature_rows(d, prep.layout), rows), dtype=dtype)
        if prep.family == "full":
            self.resid = np.empty(k * d * prep.sub_rows, dtype=dtype)
            self.half_maha = np.empty((k, prep.sub_rows), dtype=dtype)
            self.band_sq = np.empty((k, prep.sub_rows), dtype=dtype)
        elif prep.family == "tied":
            self.y = np.empty((d + 1, rows), dtype=dtype)
            self.y[d] = 1.0
        # K Gaussian rows, then the noise row if there is one (see _Prepared.noise).
        self.wlp = np.empty((k + (prep.noise is not None), rows), dtype=dtype)
        if prep.noise is not None:
            self.wlp[k] = prep.noise

    def rows(self, n):
        """The first ``n`` columns of the log-densities, the noise row included."""
        return self.wlp[:, :n]

    def log_prob(self, X):
        """Weighted log-densities of a block of rows, (K, b); and its features.

        The noise row, if any, is (re)set too: responsibilities overwrite it. A row
        beyond the model's range overflows to -inf quietly (see _nearest).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return self._log_prob(X)

    def _log_prob(self, X):
        prep = self.prep
        n, d, k = X.shape[0], prep.n_features, prep.n_components
        feat = fill_features(self.feat, X, prep.shift_t, prep.layout)
        if prep.noise is not None:
            self.wlp[k, :n] = prep.noise
        wlp = self.wlp[:k, :n]
        if prep.family == "full":
            step = prep.sub_rows
            for start in range(0, n, step):
                m = min(step, n - start)
                half_maha = _whiten(prep, self, feat[:, start : start + m],
                                    X[start : start + m])[1]
                wlp[:, start : start + m] = half_maha
            np.subtract(prep.offset_t, wlp, out=wlp)
            return wlp, feat
        if prep.family == "tied":
            y = self.y[:, :n]
            np.matmul(prep.factor, feat[:d], out=y[:d])
            np.matmul(prep.matrix, y, out=wlp)
            half_sq = np.einsum("ij,ij->j", y[:d], y[:d])
            half_sq *= 0.5
            wlp -= half_sq
        else:
            np.matmul(prep.matrix, feat, out=wlp)
        if prep.far.size:
            _exact_far_rows(prep, X, wlp)
        np.minimum(wlp, prep.cap_t, out=wlp)
        return wlp, feat


def _logsumexp_cols(wlp, keep_log=False, kernel=None):
    """Per-column log-sum-exp of ``wlp`` (K, b); turns ``wlp`` into responsibilities.

    With ``keep_log`` it becomes the log-responsibilities instead, and the per-column
    log-likelihoods are returned. Without it, returns ``log sum_k exp(wlp_k - top)``
    (minus the log of each column's largest responsibility) and ``top = max_k wlp_k``;
    their sum is the log-likelihood; ``kernel`` (``compiled.responsibilities_kernel``)
    does that in one compiled pass (the same to rounding, 1.4x NumPy's five).
    """
    if kernel is not None and not keep_log:
        b = wlp.shape[1]
        log_total, top = np.empty(b, dtype=wlp.dtype), np.empty(b, dtype=wlp.dtype)
        kernel(wlp, log_total, top, np.empty((3, 256)), np.empty(256, dtype=np.int64))
        return log_total, top
    top = wlp.max(axis=0)
    if not np.isfinite(top).all():
        # Every log-density of a row overflowed to -inf (a row far beyond the model's
        # range): its log-likelihood is -inf; _nearest settles its responsibilities.
        top[~np.isfinite(top)] = 0.0
    if keep_log:
        # log r = (wlp - top) - log sum exp(wlp - top): normalised even where top is
        # so large that top + log(sum) absorbs the sum (rows far out).
        wlp -= top
        expd = np.exp(wlp)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_total = np.log(expd.sum(axis=0))
            wlp -= log_total
        return log_total + top
    wlp -= top
    np.exp(wlp, out=wlp)
    total = wlp.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wlp *= np.reciprocal(total)
        return np.log(total, out=total), top


def _nearest(prep, X, wlp, norm, log=False):
    """Rows whose ``norm`` is not finite: every log-density overflowed. Each row's
    column of ``wlp`` (K [+ 1], b) goes wholly to its nearest component in Mahalanobis
    terms, compared after scaling the row's residuals (finite where their squares are
    not); its log-likelihood stays -inf."""
    lost = ~np.isfinite(norm) & ~np.isnan(X).any(axis=1)
    if not lost.any():
        return
    rows = np.asarray(X[lost], dtype=np.float64)
    k = prep.n_components
    scaled = np.empty((k, rows.shape[0]))
    pc = prep.factors
    for j in range(k):
        z = rows - prep.means[j]
        z /= np.abs(z).max(axis=1, keepdims=True) + np.finfo(np.float64).tiny
        if prep.family in ("full", "tied"):
            z = z @ (pc[j] if prep.family == "full" else pc)
        else:
            z = z * pc[j]
        scaled[j] = np.einsum("ij,ij->i", z, z)
    best = np.argmin(scaled, axis=0)
    cols = np.flatnonzero(lost)
    wlp[:, cols] = -np.inf if log else 0.0
    wlp[best, cols] = 0.0 if log else 1.0
    norm[cols] = -np.inf


def _as_float(X):
    """Float rows: float32 and float64 stay, anything else becomes float64."""
    X = np.asarray(X)
    if X.dtype == np.float32 or X.dtype == np.float64:
        return X
    return X.astype(np.float64)


def _per_block(X, prep, fill, n_threads=None):
    """Run ``fill(block, start, stop)`` over blocks of X on the kernel threads."""
    run_blocks(X.shape[0], prep.rows, lambda: _Block(prep), fill, n_threads)


def _log_prob_rows(X, prep):
    out = np.empty((X.shape[0], prep.n_components), dtype=X.dtype)

    def fill(blk, a, b):
        out[a:b] = blk.log_prob(X[a:b])[0].T

    _per_block(X, prep, fill)
    return out


def _by_completeness(X, complete_rows, incomplete_rows, width):
    """Per-row results (n, width): rows without NaN from ``complete_rows``, rows with
    NaN (missing coordinates) from ``incomplete_rows``; None when there is no NaN."""
    gaps = missing.missing_rows(X)
    if gaps is None:
        return None
    out = np.empty((X.shape[0], width), dtype=X.dtype)
    if not gaps.all():
        out[~gaps] = complete_rows(X[~gaps])
    out[gaps] = incomplete_rows(X[gaps])
    return out


def log_gaussian_prob(X: np.ndarray, params: Params) -> np.ndarray:
    """``log N(x_i | mu_k, Sigma_k)`` for every row and component, shape (n, K).

    A row with NaN gets the marginal density of its observed coordinates.
    """
    X = _as_float(X)
    split = _by_completeness(X, lambda x: log_gaussian_prob(x, params),
                             lambda x: missing.log_prob(x, params, with_weights=False),
                             params.n_components)
    if split is not None:
        return split
    return _log_prob_rows(X, _Prepared(params, X.dtype, with_weights=False))


def weighted_log_prob(X: np.ndarray, params: Params) -> np.ndarray:
    """``log pi_k + log N(x_i | mu_k, Sigma_k)``, shape (n, K) (marginal for rows with NaN)."""
    X = _as_float(X)
    split = _by_completeness(X, lambda x: weighted_log_prob(x, params),
                             lambda x: missing.log_prob(x, params), params.n_components)
    if split is not None:
        return split
    return _log_prob_rows(X, _Prepared(params, X.dtype))


def _compiled_rows(X, params, what):
    """``compiled.per_row`` where the compiled kernel applies, else None."""
    prep = _Prepared(params, X.dtype)
    own_layout = {"spherical": "diag"}.get(params.family, params.family)
    if not compiled.applies(params, own_layout, X.shape[1], prep.noise, prep.far):
        return None
    with single_threaded_blas():
        out = compiled.per_row(X, params, prep.shift, what)
    return out if out is None or what == "labels" else out.astype(X.dtype, copy=False)


def row_log_likelihoods(X: np.ndarray, params: Params) -> np.ndarray:
    """Each row's log-likelihood, (n,): ``log_resp_and_norm(X, params)[1]``."""
    X = _as_float(X)
    out = _compiled_rows(X, params, "score")
    return log_resp_and_norm(X, params)[1] if out is None else out


def responsibilities(X: np.ndarray, params: Params) -> np.ndarray:
    """Each row's responsibilities, (n, K) (K + 1 with a noise component):
    ``exp(log_resp_and_norm(X, params)[0])``."""
    X = _as_float(X)
    out = _compiled_rows(X, params, "proba")
    return np.exp(log_resp_and_norm(X, params)[0]) if out is None else out


def most_probable(X: np.ndarray, params: Params) -> np.ndarray:
    """The most probable component of each row, (n,); a row beyond the model's range
    (every log-density -inf) goes to its nearest component, as its responsibilities do."""
    X = _as_float(X)
    labels = _compiled_rows(X, params, "labels")
    if labels is not None:
        return labels
    wlp = weighted_log_prob(X, params)
    labels = np.argmax(wlp, axis=1)
    lost = ~np.isfinite(wlp.max(axis=1))
    if lost.any():
        labels[lost] = np.argmax(log_resp_and_norm(X[lost], params)[0], axis=1)
    return labels


def log_resp_and_norm(X: np.ndarray, params: Params, n_threads=None):
    """Log-responsibilities (n, K) and per-row log-likelihoods (n,).

    With a noise component (``params.noise_log_density``) the responsibilities have a
    last column for it, (n, K + 1).
    """
    X = _as_float(X)
    gaps = missing.missing_rows(X)
    if gaps is not None:
        return _log_resp_with_gaps(X, gaps, params, n_threads)
    prep = _Prepared(params, X.dtype)
    width = params.n_components + (prep.noise is not None)
    log_resp = np.empty((X.shape[0], width), dtype=X.dtype)
    norm = np.empty(X.shape[0], dtype=X.dtype)

    def fill(blk, a, b):
        blk.log_prob(X[a:b])
        wlp = blk.rows(b - a)
        norm[a:b] = _logsumexp_cols(wlp, keep_log=True)
        _nearest(prep, X[a:b], wlp, norm[a:b], log=True)
        log_resp[a:b] = wlp.T

    _per_block(X, prep, fill, n_threads)
    return log_resp, norm


def _log_resp_with_gaps(X, gaps, params, n_threads):
    """log_resp_and_norm of rows some of which have NaN (missing coordinates)."""
    log_resp = np.empty((X.shape[0], params.n_components), dtype=X.dtype)
    norm = np.empty(X.shape[0], dtype=X.dtype)
    if not gaps.all():
        log_resp[~gaps], norm[~gaps] = log_resp_and_norm(X[~gaps], params, n_threads)
    log_resp[gaps], norm[gaps] = missing.log_resp_and_norm(X[gaps], params)
    return log_resp, norm


class _ChunkState:
    """One thread's share of a chunk's E-step: buffers, statistics, worst row."""

    def __init__(self, prep: _Prepared, kind: str, offsets, sparse=False):
        self.block = _Block(prep)
        self.sparse = sparse  # full: may the scatter skip negligible responsibilities
        far = (prep.far, prep.far_means) if prep.far.size else None
        self.moments = Moments(prep.n_components, prep.n_features, kind, offsets, prep.dtype,
                               far)
        self.moments.sparse_kernels = prep.sparse_kernels
        self.loglik = 0.0
        self.map_loglik = 0.0
        self.noise_nk = 0.0
        self.worst = (np.inf, -1)
        if _layout(kind) != prep.layout:  # statistics that need other features
            self.feat = np.empty((feature_rows(prep.n_features, kind), prep.rows),
                                 dtype=prep.dtype)


def _fixed_rows(wlp, labels):
    """Rows of a run whose component is given: (columns, labels, their log-densities)."""
    cols = np.flatnonzero(labels >= 0)
    lab = labels[cols]
    return cols, lab, wlp[lab, cols].copy()


def _respond(st, wlp, start, w, w_t, labels, rows):
    """Turn a run's weighted log-densities (K [+ 1], m) into weighted responsibilities in
    place and add its log-likelihood, its ICL term and its worst-explained row.

    Rows with a label keep that component's responsibility 1 (semi-supervised rows, or a
    start from a partition) and count its log-density, as mclust does for known labels.
    """
    m = wlp.shape[1]
    fixed = None
    if labels is not None:
        fixed = _fixed_rows(wlp, labels[start : start + m])
        if not fixed[0].size:
            fixed = None
    # norm is log_total until top is added
    norm, top = _logsumexp_cols(wlp, kernel=st.block.prep.responsibilities_kernel)
    lost = ~np.isfinite(norm)
    if lost.any():  # rows beyond the model's range: to the nearest component
        _nearest(st.block.prep, rows, wlp, norm.copy())
        norm[lost] = 0.0  # a responsibility of 1
    if fixed is not None:
        cols, lab, log_density = fixed
        wlp[:, cols] = 0.0
        wlp[lab, cols] = 1.0
        norm[cols] = 0.0  # a known label's responsibility is 1
    wa = None if w is None else np.asarray(w[start : start + m], dtype=np.float64)
    if wa is None:
        st.map_loglik -= float(norm.sum(dtype=np.float64))
    else:
        st.map_loglik -= weighted_total(norm, wa)
    norm += top
    if lost.any():
        norm[lost] = -np.inf
    if fixed is not None:
        norm[cols] = log_density
    if wa is None:
        st.loglik += float(norm.sum(dtype=np.float64))
        i = int(np.argmin(norm))
    else:
        st.loglik += weighted_total(norm, wa)
        wlp *= w_t[start : start + m]
        i = int(np.argmin(np.where(wa > 0, norm, np.inf)))
        if not wa[i] > 0:
            i = -1
    k = st.block.prep.n_components
    if wlp.shape[0] > k:  # the noise row
        st.noise_nk += float(wlp[k].sum(dtype=np.float64))
    if i >= 0 and norm[i] < st.worst[0]:
        st.worst = (float(norm[i]), start + i)
    return wlp[:k]


def _full_fused(st, X, a, b, w, w_t, labels):
    with np.errstate(over="ignore", invalid="ignore"):
        _full_fused_rows(st, X, a, b, w, w_t, labels)


def _full_fused_rows(st, X, a, b, w, w_t, labels):
    """E-step and statistics of full covariance, fused per group of columns.

    The whitened residuals of all components come from one product per band; their squares
    give the log-densities, and the same residuals, scaled by sqrt(r), give each
    component's scatter about its current mean in whitened coordinates (see
    :meth:`Moments.add_whitened`).
    """
    blk = st.block
    prep = blk.prep
    feat = fill_features(blk.feat, X[a:b], prep.shift_t, "lead")
    n = b - a
    step = prep.sub_rows
    k = prep.n_components
    for start in range(0, n, step):
        m = min(step, n - start)
        cols = feat[:, start : start + m]
        rows = X[a + start : a + start + m]
        bands, half_maha = _whiten(prep, blk, cols, rows)  # half_maha kept for the scatter
        np.subtract(prep.offset_t, half_maha, out=blk.wlp[:k, :m])
        if prep.noise is not None:
            blk.wlp[k, :m] = prep.noise
        resp = _respond(st, blk.rows(m), a + start, w, w_t, labels, rows)
        st.moments.add_whitened(cols, resp, bands, half_maha if st.sparse else None,
                                rows)


def estep_chunk(X: np.ndarray, sample_weight: np.ndarray | None, params: Params,
                kind: str, labels: np.ndarray | None = None,
                n_threads: int | None = None) -> SuffStats:
    """One chunk's E-step: the chunk's sufficient statistics under ``params``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
        Row weights (a weight w counts the row w times); None means all ones.
    params : Params
        With ``noise_log_density`` set, a uniform noise component joins the E-step: its
        responsibility is summed in ``noise_nk`` and left out of the Gaussians' statistics.
    kind : {"full", "diag", "tied"}
        Scatter layout the M-step needs.
    labels : ndarray of int of shape (n,), optional
        Rows with a label ``k >= 0`` have their responsibilities fixed to component
        ``k`` (``K``: the noise component); rows with ``-1`` are estimated.
    n_threads : int, optional
        Kernel threads; default $GAUSSMIX_NUM_THREADS, else every core.

    Rows with NaN are taken as missing those coordinates at random (see
    :mod:`.missing`); the faces refuse NaN unless asked to marginalise.
    """
    # Small factorisations and products below: one BLAS thread (see _parallel).
    with single_threaded_blas():
        X = _as_float(X)
        prep = _Prepared(params, X.dtype)
        # The compiled kernel first: it hands back a chunk with a NaN itself, which
        # saves the pass that looks for them.
        stats = _compiled_estep(X, sample_weight, params, kind, labels, n_threads, prep)
        if stats is not None:
            return stats
        gaps = missing.missing_rows(X)
        if gaps is None:
            return _estep_chunk(X, sample_weight, params, kind, labels, n_threads,
                                prep=prep, compiled_tried=True)
        return _estep_with_gaps(X, gaps, sample_weight, params, kind, labels, n_threads)


def _estep_with_gaps(X, gaps, sample_weight, params, kind, labels, n_threads):
    """The statistics of a chunk with NaN: its complete rows through the kernel, the
    others through the missing-data E-step (:mod:`.missing`); the two add."""
    def rows(selected, a):
        return None if a is None else np.asarray(a)[selected]

    stats = missing.estep_stats(X[gaps], rows(gaps, sample_weight), params, kind,
                                rows(gaps, labels), n_threads, _estep_chunk)
    complete = ~gaps
    if complete.any():
        stats = _estep_chunk(X[complete], rows(complete, sample_weight), params, kind,
                             rows(complete, labels), n_threads) + stats
    return stats


def _compiled_estep(X, sample_weight, params, kind, labels, n_threads, prep):
    """The compiled kernel's statistics where it applies, else None."""
    if not compiled.applies(params, kind, X.shape[1], prep.noise, prep.far):
        return None
    return compiled.estep(X, sample_weight, params, prep.shift, kind, labels, n_threads)


def _estep_chunk(X, sample_weight, params, kind, labels=None, n_threads=None, sparse=True,
                 prep=None, compiled_tried=False):
    """The statistics of a chunk without NaN: compiled where it applies, else NumPy."""
    prep = prep or _Prepared(params, X.dtype)
    if not compiled_tried:
        stats = _compiled_estep(X, sample_weight, params, kind, labels, n_threads, prep)
        if stats is not None:
            return stats
    offsets = params.means - prep.shift if kind == "full" else None
    w = sample_weight
    w_t = None if w is None else np.asarray(w).astype(X.dtype, copy=False)
    chunk_work = X.shape[0] * params.n_components * X.shape[1]  # n K D
    prep.responsibilities_kernel = compiled.responsibilities_kernel(chunk_work)
    prep.sparse_kernels = compiled.sparse_kernels(chunk_work)

    fused = prep.family == "full" and kind == "full"

    def make_state():
        return _ChunkState(prep, kind, offsets, sparse=fused and sparse)

    if fused:
        # V_k = U_k^{-1} / sqrt(1/2) maps the (scaled) whitened scatter back.
        unwhiten = inverse_factors(params.precisions_cholesky) / math.sqrt(0.5)

    # Tied statistics save a pass when every row's responsibilities sum to one.
    unit_rows = w is None and prep.noise is None and not prep.far.size

    def work(st, a, b):
        if fused:
            return _full_fused(st, X, a, b, w, w_t, labels)
        feat = st.block.log_prob(X[a:b])[1]
        resp = _respond(st, st.block.rows(b - a), a, w, w_t, labels, X[a:b])
        if _layout(kind) != prep.layout:
            feat = fill_features(st.feat, X[a:b], prep.shift_t, kind)
        st.moments.add(feat, resp, unit_rows=unit_rows, X=X[a:b])

    states = run_blocks(X.shape[0], prep.rows, make_state, work, n_threads)
    moments = states[0].moments
    for st in states[1:]:
        moments.merge(st.moments)
    if fused:
        if sparse and not moments.certified():
            # Something skipped was not negligible (a nearly empty component):
            # this chunk again, with the dense scatter.
            return _estep_chunk(X, sample_weight, params, kind, labels, n_threads,
                                sparse=False, prep=prep, compiled_tried=True)
        moments.set_whitening(unwhiten)
    return with_chunk_totals(
        moments.finish(prep.shift), X, w,
        loglik=sum(st.loglik for st in states),
        map_loglik=sum(st.map_loglik for st in states),
        worst=min((st.worst for st in states), key=lambda t: t[0]),
        noise_nk=sum(st.noise_nk for st in states))
