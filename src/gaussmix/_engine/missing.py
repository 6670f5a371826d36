"""The E-step of rows with missing coordinates (NaN), missing at random.

A row with observed coordinates ``o`` and missing ones ``m`` is scored by the marginal
density of ``x_o`` under each component, and contributes to the statistics the
conditional expectation of the whole row and of its outer product: the filled row
``x_hat = (x_o, E[x_m | x_o, k])`` and, in the missing block of the scatter, the
conditional covariance. With those, every covariance model's M-step works unchanged
(the EM of Little & Rubin, *Statistical Analysis with Missing Data*, ch. 11).

Everything comes from the precision ``P = Sigma^-1`` of each component, so no
sub-matrix of the covariance is factorised per row:

* the conditional covariance of ``x_m`` is ``C = P_mm^-1`` (``q x q``, ``q`` missing);
* with ``d`` the residual ``x - mu`` set to 0 at the missing coordinates and
  ``g = (P d)_m``, the conditional mean is ``mu_m + delta``, ``delta = -C g``;
* the observed coordinates' Mahalanobis distance is that of the filled residual,
  ``d^T P d + g^T delta``, and ``log det Sigma_oo = log det P_mm - log det P``.

The rows of a missingness pattern shared by many rows are a complete-data problem on
their observed coordinates: the complete-row kernel (``estep``) scores them under the
marginal ``N(mu_o, Sigma_oo)`` (its precision is the Schur complement
``P_oo - P_om C P_mo``) and sums their moments, and the filled row is an affine map of
``x_o`` (``x_hat_m = mu_m + B (x_o - mu_o)``, ``B = -C P_mo``), so the moments of the
filled rows follow from those of ``x_o`` exactly (:func:`_lift`). The other rows are
taken in blocks, grouped by their number of missing coordinates, so every step is one
batched NumPy call over rows and components; ``C`` and ``log det P_mm`` are computed
once per missingness pattern and component. Computation is in float64.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .parallel import run_blocks
from .params import LOG_2PI, Params, full_covariances
from .stats import SuffStats, weighted_total

# Rows per block: the (K, rows, D) work arrays stay a few megabytes.
_BLOCK_ELEMENTS = 1 << 18


def missing_rows(X) -> np.ndarray | None:
    """Boolean mask of the rows of ``X`` with a NaN, or None when there is none.

    A sum first: for data without NaN (the usual case) one pass and no mask.
    """
    if not np.isnan(np.sum(X, dtype=np.float64)):
        return None
    mask = np.isnan(X).any(axis=1)
    return mask if mask.any() else None


def check_rows_observed(X, first_row=0, columns=False):
    """Refuse rows with every coordinate missing (they carry no information), and with
    ``columns`` (a fit) a column with no observed value (nothing to estimate it from)."""
    nan = np.isnan(X)
    empty = nan.all(axis=1)
    if X.shape[1] and empty.any():
        rows = np.flatnonzero(empty)[:5] + first_row
        listed = ", ".join(str(r) for r in rows) + (", ..." if empty.sum() > 5 else "")
        raise ValueError(
            f"row {listed} has every coordinate missing (NaN) and carries no "
            "information: drop such rows before fitting or scoring.")
    if columns and X.shape[0]:
        unseen = np.flatnonzero(nan.all(axis=0))
        if unseen.size:
            raise ValueError(
                f"column {', '.join(map(str, unseen[:5]))} has no observed value (every "
                "entry NaN): drop it before fitting.")


def mean_filled(X, fill=None) -> np.ndarray:
    """``X`` with each NaN replaced by its column's mean over the observed entries (or
    by ``fill``), in a copy (X itself when it has no NaN): the start's view of
    incomplete rows."""
    nan = np.isnan(X)
    if not nan.any():
        return X
    X = np.array(X, dtype=np.float64 if X.dtype.kind != "f" else X.dtype)
    if fill is None:
        fill = column_means(X)
    X[nan] = np.broadcast_to(fill, X.shape)[nan]
    return X


def column_means(X) -> np.ndarray:
    """Each column's mean over its observed entries (0 for a column with none)."""
    observed = ~np.isnan(X)
    counts = observed.sum(axis=0)
    sums = np.where(observed, X, 0.0).sum(axis=0, dtype=np.float64)
    return np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)


class _Model:
    """The parameters as the missing-data E-step reads them: full precisions."""

    def __init__(self, params: Params, with_weights=True):
        if params.noise_log_density is not None:
            raise ValueError(
                "a noise component cannot be combined with missing values: its density "
                "is defined over all coordinates. Drop the incomplete rows or the noise.")
        k, d = params.means.shape
        self.params = params
        # The family's precisions as (K, D, D) matrices (the covariances' layouts).
        self.prec = full_covariances(params.precisions(), params.family, k, d)
        self.log_det_prec = 2.0 * np.asarray(params.log_det_cholesky, dtype=np.float64)
        self.means = np.asarray(params.means, dtype=np.float64)
        self.log_weights = np.zeros(k)
        if with_weights:
            self.log_weights = (np.log(params.weights) if params.log_weights is None
                                else np.asarray(params.log_weights, dtype=np.float64))
        self.n_components, self.n_features = k, d
        self.rows = max(64, _BLOCK_ELEMENTS // (k * d))


class _Patterns:
    """The rows of a chunk with ``q`` missing coordinates, sorted by their pattern.

    Attributes: ``rows`` (n,) positions in the chunk, ``missing`` (n, q) each row's
    missing coordinates (ascending), ``pattern`` (n,) its index in ``patterns`` (P, q);
    ``cond_cov`` (K, P, q, q) and ``log_det_mm`` (K, P), each pattern's conditional
    covariance and ``log det P_mm`` per component.
    """

    def __init__(self, q, rows, missing, pattern, patterns, model, invert=True):
        self.q, self.rows, self.missing = q, rows, missing
        self.pattern, self.patterns = pattern, patterns
        if invert:
            self.invert(model)

    def invert(self, model):
        """Set ``cond_cov`` and ``log_det_mm``."""
        p_mm = model.prec[:, self.patterns[:, :, None], self.patterns[:, None, :]]
        self.cond_cov, self.log_det_mm = _inverse_and_log_det(p_mm)

    def subset(self, rows):
        """The same patterns, for the rows selected by the mask ``rows`` only."""
        sub = object.__new__(_Patterns)
        sub.__dict__.update(self.__dict__)
        sub.rows, sub.missing, sub.pattern = (self.rows[rows], self.missing[rows],
                                              self.pattern[rows])
        return sub


# Patterns with at least this many rows go through the complete-row kernel on their
# observed coordinates (a call costs about 250 rows of blocks more).
_KERNEL_ROWS = 1000

# Rows with at most this many gaps take the element-wise path of _block.
_FEW_GAPS = 3

# Up to this size the blocks' inverses are eliminated across the whole batch at once:
# LAPACK's per-matrix calls cost more than the arithmetic for thousands of tiny blocks.
_BATCHED_ELIMINATION = 8


def _inverse_and_log_det(a):
    """Inverses and log-determinants of a batch of positive definite matrices (..., q, q).

    Small ones by Gauss-Jordan elimination vectorised over the batch, entry by entry
    on contiguous (batch,) vectors (the pivots of a positive definite matrix are
    positive: no pivoting), larger ones by LAPACK.
    """
    q = a.shape[-1]
    batch = a.shape[:-2]
    if q > _BATCHED_ELIMINATION:
        return np.linalg.inv(a), np.linalg.slogdet(a)[1]
    m = np.moveaxis(a.reshape(-1, q, q), 0, -1).copy()  # (q, q, N)
    inv = np.zeros_like(m)
    inv[np.arange(q), np.arange(q)] = 1.0
    log_det = np.zeros(m.shape[-1])
    for j in range(q):
        pivot = m[j, j].copy()
        log_det += np.log(pivot)
        m[j] /= pivot
        inv[j] /= pivot
        for i in range(q):
            if i != j:
                factor = m[i, j].copy()
                m[i] -= factor * m[j]
                inv[i] -= factor * inv[j]
    inv = 0.5 * (inv + inv.transpose(1, 0, 2))  # exactly symmetric, as the inverse is
    return np.moveaxis(inv, -1, 0).reshape(batch + (q, q)), log_det.reshape(batch)


# Patterns as the bits of a float64 up to this many coordinates (exact integers).
_BIT_KEYS = 52


def _patterns(X, model, invert=True, gaps=None):
    """The :class:`_Patterns` of a chunk's rows with a gap (rows without are skipped);
    without ``invert``, their conditional covariances are left to be computed.
    ``gaps``: ``np.isnan(X)`` when the caller has it."""
    gaps = np.isnan(X) if gaps is None else gaps
    n, d = X.shape
    if d > _BIT_KEYS:  # patterns as rows of missing coordinates (slower, any D)
        n_missing = gaps.sum(axis=1)
        if np.any(n_missing == d):
            check_rows_observed(X)
        yield from _patterns_by_rows(gaps, n_missing, model, invert)
        return
    # Each row's missing coordinates as bits and their number, in one product.
    weights = np.ones((d, 2))
    weights[:, 0] = 2.0 ** np.arange(d)
    bits_and_count = gaps @ weights
    n_missing = bits_and_count[:, 1].astype(np.int64)
    if np.any(n_missing == d):
        check_rows_observed(X)
    # One sort by (number of gaps, pattern): each group's rows, pattern by pattern.
    key = ((n_missing.astype(np.uint64) << np.uint64(56))
           | bits_and_count[:, 0].astype(np.uint64))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    starts = np.flatnonzero(new)  # where each pattern's rows begin
    pattern_of_row = np.cumsum(new) - 1
    q_of_pattern = n_missing[order[starts]]
    bounds = np.append(starts, n)
    for q in np.unique(q_of_pattern):
        if q == 0:
            continue
        ids = np.flatnonzero(q_of_pattern == q)  # consecutive: q sorts first
        lo, hi = bounds[ids[0]], bounds[ids[-1] + 1]
        pattern = pattern_of_row[lo:hi] - ids[0]
        patterns = np.nonzero(gaps[order[starts[ids]]])[1].reshape(ids.size, q)
        yield _Patterns(int(q), order[lo:hi], patterns[pattern], pattern, patterns, model,
                        invert)


def _patterns_by_rows(gaps, n_missing, model, invert):
    for q in np.unique(n_missing):
        if q == 0:
            continue
        rows = np.flatnonzero(n_missing == q)
        # Row-major order: each row's q missing coordinates, ascending.
        missing = np.nonzero(gaps[rows])[1].reshape(rows.size, q)
        patterns, pattern = np.unique(missing, axis=0, return_inverse=True)
        pattern = pattern.ravel()
        order = np.argsort(pattern, kind="stable")
        yield _Patterns(int(q), rows[order], missing[order], pattern[order], patterns,
                        model, invert)


class _Block:
    """Rows of one pattern group, a block at a time: ``rows`` (m,) positions in the
    chunk, ``x`` (m, D) those rows (0 where missing), ``missing`` and ``pattern`` as in
    :class:`_Patterns`, ``group`` the group, ``log_prob`` (K, m) the observed
    coordinates' log-densities, ``resid`` (K, m, D) each component's filled residual
    ``x_hat - mu_k``."""


def _block(group, a, b, x0, model) -> _Block:
    """Rows ``[a, b)`` of a pattern group of chunk ``x0`` (NaN set to 0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _block_rows(group, a, b, x0, model)


def _block_rows(group, a, b, x0, model) -> _Block:
    d, k = x0.shape[1], model.n_components
    blk = _Block()
    blk.group = group
    blk.rows = group.rows[a:b]
    blk.missing = group.missing[a:b]
    blk.pattern = group.pattern[a:b]
    m, q = blk.missing.shape
    # Positions of the missing coordinates in a (m, D) block, flattened.
    flat = (np.arange(m)[:, None] * d + blk.missing).ravel()
    blk.x = x0[blk.rows]
    resid = blk.x[None] - model.means[:, None, :]  # (K, m, D)
    resid_flat = resid.reshape(k, m * d)
    resid_flat[:, flat] = 0.0  # d: x - mu, 0 at the missing coordinates
    grad = np.matmul(resid, model.prec)  # rows of d^T P (P symmetric)
    maha = np.einsum("knd,knd->kn", resid, grad)
    grad_flat = grad.reshape(k, m * d)
    if q <= _FEW_GAPS:
        # Coordinate by coordinate on (K, m) arrays: a product per tiny matrix costs
        # more than these few element-wise steps.
        cols = [np.arange(m) * d + blk.missing[:, i] for i in range(q)]
        g_m = [grad_flat[:, c] for c in cols]
        for i, c in enumerate(cols):
            step = group.cond_cov[:, blk.pattern, i, 0] * g_m[0]  # -delta_i
            for j in range(1, q):
                step += group.cond_cov[:, blk.pattern, i, j] * g_m[j]
            maha -= g_m[i] * step
            resid_flat[:, c] = -step
    else:
        g_m = grad_flat[:, flat].reshape(k, m, q)
        delta = -np.matmul(group.cond_cov[:, blk.pattern], g_m[..., None])[..., 0]
        maha += (g_m * delta).sum(axis=2)
        resid_flat[:, flat] = delta.reshape(k, m * q)
    # A row far beyond the model's range overflows (inf - inf is NaN): its distance is
    # +inf and its log-density -inf (its responsibility: _settle_lost).
    np.maximum(maha, 0.0, out=maha)  # rounding must not make it negative
    maha[np.isnan(maha)] = np.inf
    blk.resid = resid
    log_det_cov = group.log_det_mm[:, blk.pattern] - model.log_det_prec[:, None]
    blk.log_prob = -0.5 * ((d - q) * LOG_2PI + log_det_cov + maha)
    return blk


def _nearest(blk, model, cols):
    """The nearest component, in Mahalanobis terms on the observed coordinates, of the
    block's rows ``cols`` whose every log-density overflowed (as the complete rows'
    ``estep._nearest``): each residual scaled by its largest entry first, so the
    comparison stays finite."""
    best = np.empty(cols.size, dtype=np.intp)
    for j, c in enumerate(cols):
        miss = blk.missing[c]
        r = blk.x[c] - model.means  # (K, D)
        r[:, miss] = 0.0
        r /= np.abs(r).max(axis=1, keepdims=True) + np.finfo(np.float64).tiny
        g = np.einsum("kd,kde->ke", r, model.prec)
        g_m = g[:, miss]
        cond = blk.group.cond_cov[:, blk.pattern[c]]  # (K, q, q)
        maha = np.einsum("kd,kd->k", r, g) - np.einsum("ki,kij,kj->k", g_m, cond, g_m)
        best[j] = np.argmin(maha)
    return best


def _settle_lost(blk, model, resp, cols, log):
    """The block's rows ``cols``, whose every log-density is -inf: their columns of
    ``resp`` (K, m) give the whole responsibility to the nearest component (log: 0
    there and -inf elsewhere; else 1 and 0)."""
    best = _nearest(blk, model, cols)
    resp[:, cols] = -np.inf if log else 0.0
    resp[best, cols] = 0.0 if log else 1.0


def _blocks_of(X, model):
    """Every row with NaN of chunk ``X``, as :class:`_Block` s."""
    gaps = np.isnan(X)
    x0 = np.where(gaps, 0.0, X)
    for group in _patterns(X, model, gaps=gaps):
        for a in range(0, group.rows.size, model.rows):
            yield _block(group, a, a + model.rows, x0, model)


def log_prob(X, params: Params, with_weights=True) -> np.ndarray:
    """``log pi_k + log N(x_o | mu_k,o, Sigma_k,oo)`` of rows with NaN, (n, K)."""
    model = _Model(params, with_weights)
    X = np.asarray(X, dtype=np.float64)
    out = np.empty((X.shape[0], model.n_components))
    for blk in _blocks_of(X, model):
        out[blk.rows] = (blk.log_prob + model.log_weights[:, None]).T
    return out


def _log_resp(wlp):
    """Log-responsibilities and per-row log-likelihoods of weighted log-densities (K, n);
    a column whose every entry is -inf gives -inf and NaN (see _settle_lost)."""
    top = wlp.max(axis=0)
    top[~np.isfinite(top)] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = top + np.log(np.exp(wlp - top).sum(axis=0))
        return wlp - norm, norm


def log_resp_and_norm(X, params: Params):
    """Log-responsibilities (n, K) and per-row log-likelihoods (n,) of rows with NaN;
    a row beyond the model's range has log-likelihood -inf and goes wholly to its
    nearest component."""
    model = _Model(params)
    X = np.asarray(X, dtype=np.float64)
    log_resp = np.empty((X.shape[0], model.n_components))
    norm = np.empty(X.shape[0])
    for blk in _blocks_of(X, model):
        lr, nm = _log_resp(blk.log_prob + model.log_weights[:, None])
        lost = np.flatnonzero(~np.isfinite(nm))
        if lost.size:
            _settle_lost(blk, model, lr, lost, log=True)
        log_resp[blk.rows], norm[blk.rows] = lr.T, nm
    return log_resp, norm


class _Sums:
    """One thread's running sums of the missing-data E-step (see :func:`estep_stats`)."""

    def __init__(self, k, d, n_patterns):
        self.nk = np.zeros(k)
        self.first = np.zeros((k, d))  # filled residuals summed about each mean
        self.second = np.zeros((k, d, d))
        self.cond_weight = np.zeros((k, n_patterns))  # of each pattern's C_k
        self.loglik = self.map_loglik = 0.0

    def add(self, blk, model, w_all, labels):
        wlp = blk.log_prob
        wlp += model.log_weights[:, None]
        top = wlp.max(axis=0)
        lost = np.flatnonzero(~np.isfinite(top))
        top[lost] = 0.0
        resp = np.exp(wlp - top)
        total = resp.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            resp /= total
            log_total = np.log(total)
        norm = top + log_total  # each row's log-likelihood
        top = -log_total  # log of each row's largest responsibility (ICL)
        if lost.size:  # beyond the model's range: wholly to the nearest component
            _settle_lost(blk, model, resp, lost, log=False)
            top[lost] = 0.0
        if labels is not None:
            lab = labels[blk.rows]
            fixed = np.flatnonzero(lab >= 0)
            if fixed.size:  # a known label: responsibility 1, its own log-density
                resp[:, fixed] = 0.0
                resp[lab[fixed], fixed] = 1.0
                norm[fixed] = wlp[lab[fixed], fixed]
                top[fixed] = 0.0
        if w_all is None:
            self.loglik += float(norm.sum())
            self.map_loglik += float(top.sum())
        else:
            w = w_all[blk.rows]
            self.loglik += weighted_total(norm, w)
            self.map_loglik += weighted_total(top, w)
            resp *= w
        self.nk += resp.sum(axis=1)
        self.first += np.matmul(resp[:, None, :], blk.resid)[:, 0]
        # sqrt(r) (x_hat - mu) per component (in place: the residuals are done with),
        # then one symmetric product each (NumPy hands z.T @ z to BLAS syrk).
        z = blk.resid
        z *= np.sqrt(resp)[:, :, None]
        for j in range(resp.shape[0]):
            self.second[j] += z[j].T @ z[j]
        n_patterns = self.cond_weight.shape[1]
        for j in range(resp.shape[0]):
            self.cond_weight[j] += np.bincount(blk.pattern, weights=resp[j],
                                               minlength=n_patterns)


def estep_stats(X, sample_weight, params: Params, kind: str, labels, n_threads,
                complete_kernel) -> SuffStats:
    """Sufficient statistics of rows that each have at least one NaN.

    Same contract as the complete-row kernel (``estep.estep_chunk``): the statistics
    add to those of the chunk's complete rows. The worst-explained row is left unknown
    (a row with gaps cannot re-seed a component). Work runs on the kernel threads.
    ``complete_kernel(X, sample_weight, params, kind, labels, n_threads)`` is that
    kernel (passed in: it imports this module).
    """
    model = _Model(params)
    X = np.asarray(X, dtype=np.float64)
    k, d = model.n_components, model.n_features
    w_all = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    labels = None if labels is None else np.asarray(labels)
    gaps = np.isnan(X)
    x0 = np.where(gaps, 0.0, X)
    # The patterns' inverses, then every block and kernel call, each spread over the
    # threads (one run each: no thread waits for a group's last block).
    groups = list(_patterns(X, model, invert=False, gaps=gaps))
    run_blocks(len(groups), 1, lambda: None,
               lambda _, a, b: [group.invert(model) for group in groups[a:b]], n_threads)
    tasks = []  # ("kernel", call) or ("blocks", group index, start, stop)
    for i, group in enumerate(groups):
        counts = np.bincount(group.pattern, minlength=group.patterns.shape[0])
        big = counts >= _KERNEL_ROWS
        if big.any():
            try:
                calls = _kernel_calls(group, np.flatnonzero(big), counts, model)
            except np.linalg.LinAlgError:  # a marginal too ill-conditioned to factorise:
                calls = None  # its rows stay in the blocks, which need no factor
            if calls is not None:
                tasks += [("kernel", call) for call in calls]
                groups[i] = group = group.subset(~big[group.pattern])
        tasks += [("blocks", i, a, min(a + model.rows, group.rows.size))
                  for a in range(0, group.rows.size, model.rows)]

    def make_state():
        return {"found": [], "sums": {}}

    def work(state, a, b):
        for task in tasks[a:b]:
            if task[0] == "kernel":
                rows, observed, missing, sub_params, regression, cond_cov = task[1]
                stats = complete_kernel(
                    X[rows][:, observed], None if w_all is None else w_all[rows],
                    sub_params, "full", None if labels is None else labels[rows], 1)
                state["found"].append(_lift(stats, observed, missing, regression,
                                            cond_cov, model.means))
            else:
                _, i, start, stop = task
                group = groups[i]
                sums = state["sums"].get(i)
                if sums is None:
                    sums = state["sums"][i] = _Sums(k, d, group.patterns.shape[0])
                sums.add(_block(group, start, stop, x0, model), model, w_all, labels)

    states = run_blocks(len(tasks), 1, make_state, work, n_threads)
    parts = [stats for state in states for stats in state["found"]]
    for i, group in enumerate(groups):
        sums = [state["sums"][i] for state in states if i in state["sums"]]
        if sums:
            parts.append(_blocks_stats(group, sums, model, w_all))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    if kind == "diag":
        scatter = np.maximum(np.einsum("kii->ki", total.scatter), 0.0)
    elif kind == "tied":
        scatter = total.scatter.sum(axis=0)
    else:
        return total
    return dataclasses.replace(total, scatter=scatter, kind=kind)


# Rows per call of the complete-row kernel: a large pattern is split across threads.
_TASK_ROWS = 8192


def _kernel_calls(group, ids, counts, model):
    """The calls of the complete-row kernel for patterns ``ids`` of ``group``: (rows,
    observed and missing coordinates, the marginal parameters of the observed ones,
    the regression ``B`` (K, q, d - q) of the missing ones on them, ``C`` (K, q, q))."""
    d, q = model.n_features, group.q
    missing = group.patterns[ids]  # (P, q)
    observed = np.ones((ids.size, d), dtype=bool)
    observed[np.arange(ids.size)[:, None], missing] = False
    observed = np.nonzero(observed)[1].reshape(ids.size, d - q)
    prec = model.prec
    p_oo = prec[:, observed[:, :, None], observed[:, None, :]]  # (K, P, o, o)
    p_mo = prec[:, missing[:, :, None], observed[:, None, :]]  # (K, P, q, o)
    cond_cov = group.cond_cov[:, ids]
    regression = -(cond_cov @ p_mo)
    # The marginal precision Sigma_oo^-1 = P_oo - P_om C P_mo, and its upper-triangular
    # factor U (U U^T = Sigma_oo^-1), the flipped Cholesky factor of its flip.
    schur = p_oo + np.swapaxes(p_mo, -1, -2) @ regression
    schur = 0.5 * (schur + np.swapaxes(schur, -1, -2))
    factors = np.linalg.cholesky(schur[..., ::-1, ::-1])[..., ::-1, ::-1]
    log_det = np.log(np.diagonal(factors, axis1=-2, axis2=-1)).sum(axis=-1)
    first = np.concatenate([[0], np.cumsum(counts)])
    tasks = []
    for j, i in enumerate(ids):
        sub_params = dataclasses.replace(
            model.params, means=np.ascontiguousarray(model.means[:, observed[j]]),
            covariances=None, precisions_cholesky=np.ascontiguousarray(factors[:, j]),
            log_det_cholesky=log_det[:, j], family="full")
        for a in range(first[i], first[i + 1], _TASK_ROWS):
            rows = group.rows[a : min(a + _TASK_ROWS, first[i + 1])]
            tasks.append((rows, observed[j], missing[j], sub_params, regression[:, j],
                          cond_cov[:, j]))
    return tasks


def _lift(stats, observed, missing, regression, cond_cov, means):
    """The statistics of the filled rows ``x_hat = (x_o, mu_m + B (x_o - mu_o))`` from
    those of their observed coordinates (``stats``, full): an affine map, plus the
    conditional covariance ``C`` in the missing block."""
    k, d = means.shape
    nk = stats.nk
    lifted_means = np.empty((k, d))
    lifted_means[:, observed] = stats.means
    lifted_means[:, missing] = means[:, missing] + np.einsum(
        "kqo,ko->kq", regression, stats.means - means[:, observed])
    cross = regression @ stats.scatter  # B S, (K, q, o)
    scatter = np.empty((k, d, d))
    scatter[:, observed[:, None], observed] = stats.scatter
    scatter[:, missing[:, None], observed] = cross
    scatter[:, observed[:, None], missing] = np.swapaxes(cross, 1, 2)
    scatter[:, missing[:, None], missing] = (cross @ np.swapaxes(regression, 1, 2)
                                             + nk[:, None, None] * cond_cov)
    empty = nk <= 0
    lifted_means[empty] = 0.0
    scatter[empty] = 0.0
    return dataclasses.replace(stats, means=lifted_means, scatter=scatter,
                               worst_loglik=np.inf, worst_row=None)


def _blocks_stats(group, sums, model, w_all) -> SuffStats:
    """The full statistics of a pattern group's rows from the threads' :class:`_Sums`."""
    k, d = model.n_components, model.n_features
    total = sums[0]
    for other in sums[1:]:
        total.nk += other.nk
        total.first += other.first
        total.second += other.second
        total.cond_weight += other.cond_weight
        total.loglik += other.loglik
        total.map_loglik += other.map_loglik
    # Each pattern's conditional covariance, into the missing block, weighted by its
    # rows' responsibilities.
    pats = group.patterns
    where = (np.arange(k)[:, None, None, None] * d + pats[None, :, :, None]) * d \
        + pats[None, :, None, :]
    weighted = total.cond_weight[:, :, None, None] * group.cond_cov
    total.second += np.bincount(where.ravel(), weights=weighted.ravel(),
                                minlength=k * d * d).reshape(k, d, d)
    nk = total.nk
    safe = np.where(nk > 0, nk, 1.0)
    shift = total.first / safe[:, None]
    means = model.means + shift
    scatter = total.second - nk[:, None, None] * (shift[:, :, None] * shift[:, None, :])
    empty = nk <= 0
    means[empty] = 0.0
    scatter[empty] = 0.0
    rows = group.rows
    n_rows = rows.size if w_all is None else int(np.count_nonzero(w_all[rows] > 0))
    weight = float(rows.size) if w_all is None else float(w_all[rows].sum())
    return SuffStats(nk=nk, means=means, scatter=scatter, kind="full", loglik=total.loglik,
                     weight=weight, n_rows=n_rows, map_loglik=total.map_loglik)


def impute(X, params: Params, draw=False, random_state=None) -> np.ndarray:
    """``X`` with each NaN replaced by its conditional mean given the row's observed
    coordinates under the mixture (``draw``: a draw from the conditional distribution).

    The conditional mean is ``sum_k p(k | x_o) E[x_m | x_o, k]``; a draw picks a
    component by ``p(k | x_o)``, then ``x_m ~ N(E[x_m | x_o, k], C_k)``.
    """
    model = _Model(params)
    out = np.array(X, dtype=np.float64)
    for blk in _blocks_of(out, model):
        resp = np.exp(_log_resp(blk.log_prob + model.log_weights[:, None])[0])  # (K, m)
        filled = blk.resid + model.means[:, None, :]  # (K, m, D)
        if not draw:
            values = np.matmul(resp.T[:, None, :], filled.transpose(1, 0, 2))[:, 0]
        else:
            u = random_state.uniform(size=resp.shape[1])
            comp = np.minimum((np.cumsum(resp, axis=0) < u).sum(axis=0),
                              model.n_components - 1)
            values = filled[comp, np.arange(resp.shape[1])]
            chol = np.linalg.cholesky(blk.group.cond_cov[comp, blk.pattern])  # (m, q, q)
            noise = np.matmul(chol, random_state.standard_normal(blk.missing.shape)[..., None])
            gaps = np.take_along_axis(values, blk.missing, axis=1) + noise[..., 0]
            np.put_along_axis(values, blk.missing, gaps, axis=1)
        rows = out[blk.rows]
        np.put_along_axis(rows, blk.missing, np.take_along_axis(values, blk.missing, axis=1),
                          axis=1)
        out[blk.rows] = rows
    return out
