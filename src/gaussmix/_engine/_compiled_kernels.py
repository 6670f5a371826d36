"""Numba bodies of the compiled E-step (see :mod:`.compiled`): imported only there.

Each kernel takes one block of rows and adds its statistics into one thread's float64
accumulators. Rows go through in sub-blocks of ``S`` rows, feature-major in a
float64 buffer, so every inner loop runs along the sub-block and vectorises; the
exponential is a vectorisable one for arguments <= 0 (``_exp_nonpositive``).

Each family's kernel (``full_block``, ``diag_block``, ``tied_block``) ends a sub-block's
log-densities either in the statistics (the E-step) or, with ``what`` >= 0, in per-row
results (``predict`` and the like).

Accumulators, per thread:
    nk (K,), sums (K, D): sum r and sum r (x - s) (s: the shift);
    second: full (K, D, D), lower triangle of sum r y y^T, y the whitened residual
        U_k^T (x - mu_k); diag (K, D): sum r (x - s)**2; tied (D, D), lower triangle of
        sum w (x - s)(x - s)^T;
    trace (2, K) (full): r |y|^2 of the pairs kept and skipped in the scatter (pairs
        with r < tau are skipped; see stats.SPARSE_TAU and Moments.certified);
    acc (5,): log-likelihood, sum log max_k r (ICL), worst row's log-likelihood, its
        index, rows whose every log-density overflowed or that have a NaN (the caller
        redoes those).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FLAGS = {"nsz", "contract", "reassoc"}  # no "nnan"/"ninf": -inf log-densities are real
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238
_LN2_LO = 1.9082149292705877e-10
_ROUNDER = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer
_EXP_MIN = -708.0  # below: exp is subnormal or 0, taken as 0


@njit(nogil=True, cache=True, fastmath={"contract"})  # reassoc would undo the rounding
def _exp_nonpositive(x, out, bits, m):
    """out[:m] = exp(x[:m]) for x <= 0 (Cody-Waite reduction, degree-12 Taylor; about
    1 ulp); 0 below _EXP_MIN, and for -inf. ``bits`` (int64) is scratch."""
    rounded = bits.view(np.float64)
    for i in range(m):
        t = max(x[i], _EXP_MIN) * _LOG2E + _ROUNDER
        rounded[i] = t
    for i in range(m):
        n = rounded[i] - _ROUNDER
        r = max(x[i], _EXP_MIN) - n * _LN2_HI - n * _LN2_LO
        p = 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        out[i] = p * r + 1.0
    for i in range(m):  # 2**n from n's bits in the rounded sum's low mantissa
        bits[i] = (bits[i] << 52) + (1023 << 52)
    for i in range(m):
        out[i] = out[i] * rounded[i] if x[i] >= _EXP_MIN else 0.0


def work_size(family, n_components, n_features, sub):
    """Elements of a kernel's float64 work array for sub-blocks of ``sub`` rows."""
    k, d, s = n_components, n_features, sub
    extra = {"full": k * d * s + k * s + d * s, "tied": d * s}.get(family, 0)
    return d * s + 2 * k * s + 3 * s + extra


@njit(nogil=True, cache=True)
def _common(work, K, D, S):
    """Carve the buffers every kernel uses out of ``work``; the rest is returned last."""
    xc = work[: D * S].reshape((D, S))
    at = D * S
    wlp = work[at : at + K * S].reshape((K, S))
    resp = work[at + K * S : at + 2 * K * S].reshape((K, S))
    at += 2 * K * S
    return (xc, wlp, resp, work[at : at + S], work[at + S : at + 2 * S],
            work[at + 2 * S : at + 3 * S], work[at + 3 * S :])


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _load(X, s0, m, shift, xc):
    """xc[d, :m] = X[s0 + i, d] - shift[d]: the sub-block, feature-major, float64."""
    for i in range(m):
        for d in range(X.shape[1]):
            xc[d, i] = X[s0 + i, d] - shift[d]


@njit(nogil=True, cache=True, fastmath=_FLAGS, inline="always")  # per sub-block
def _exp_about_max(wlp, c0, m, resp, top, tot, scratch, bits):
    """For columns c0 .. c0 + m of wlp (K, .): top[i] = max_k wlp[k, c0 + i],
    resp[k, c0 + i] = exp(wlp - top) (resp may be wlp itself) and tot[i] their sum.
    Returns the number of columns whose every entry is -inf or that hold a NaN (a row
    beyond the model's range, or with a gap: the caller redoes them); their top is 0."""
    K = wlp.shape[0]
    for i in range(m):
        top[i] = wlp[0, c0 + i]
    for k in range(1, K):
        for i in range(m):
            top[i] = max(top[i], wlp[k, c0 + i])
    lost = 0
    for i in range(m):
        tot[i] = 0.0
        if not top[i] > -np.inf:
            lost += 1
            top[i] = 0.0
    for k in range(K):
        for i in range(m):
            scratch[i] = wlp[k, c0 + i] - top[i]
        _exp_nonpositive(scratch, resp[k][c0:], bits, m)
        for i in range(m):
            tot[i] += resp[k, c0 + i]
    return lost


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _respond(wlp, m, base, w, labels, resp, top, tot, scratch, bits, acc):
    """Log-densities wlp (K, m) -> weighted responsibilities resp (K, m); adds the
    sub-block's log-likelihood, ICL term and worst row to ``acc`` (acc[4]: rows to
    redo, see _exp_about_max)."""
    K = wlp.shape[0]
    acc[4] += _exp_about_max(wlp, 0, m, resp, top, tot, scratch, bits)
    weighted = w.shape[0] > 0
    labelled = labels.shape[0] > 0
    for i in range(m):
        wi = w[base + i] if weighted else 1.0
        log_total = math.log(tot[i]) if tot[i] > 0 else 0.0
        ll = log_total + top[i]
        scale = wi / tot[i] if tot[i] > 0 else 0.0
        lab = labels[base + i] if labelled else -1
        if lab >= 0:  # a known label: responsibility 1, its log-density counts
            ll = wlp[lab, i]
            log_total = 0.0
            for k in range(K):
                resp[k, i] = 0.0
            resp[lab, i] = wi
        else:
            for k in range(K):
                resp[k, i] *= scale
        acc[0] += wi * ll
        acc[1] -= wi * log_total
        if wi > 0 and ll < acc[2]:
            acc[2] = ll
            acc[3] = base + i


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _whiten(A, b, xc, m, y):
    """y[:, :m] = A xc[:, :m] + b for a lower-triangular A (D, D): U^T (x - mu)."""
    for j in range(y.shape[0]):
        for i in range(m):
            y[j, i] = b[j]
        for l in range(j + 1):
            a = A[j, l]
            for i in range(m):
                y[j, i] += a * xc[l, i]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _add_sums(resp, xc, m, nk, sums):
    K, D = sums.shape
    for k in range(K):
        t = 0.0
        for i in range(m):
            t += resp[k, i]
        nk[k] += t
        for d in range(D):
            t = 0.0
            for i in range(m):
                t += resp[k, i] * xc[d, i]
            sums[k, d] += t


@njit(nogil=True, cache=True, fastmath=_FLAGS, inline="always")  # per sub-block
def _end_sub_block(wlp, xc, m, base, w, labels, what, out, resp, top, tot, scratch, bits,
                   acc, nk, sums):
    """What every family kernel does with a sub-block's log-densities: with ``what``
    >= 0 the per-row results (returns True: nothing more to add); else the weighted
    responsibilities and the weight and first-moment sums (the caller adds its
    family's second moments)."""
    if what >= 0:
        _row_results(wlp, m, base, what, out, resp, top, tot, scratch, bits, acc)
        return True
    _respond(wlp, m, base, w, labels, resp, top, tot, scratch, bits, acc)
    _add_sums(resp, xc, m, nk, sums)
    return False


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _full_log_densities(xc, m, A, b, const, y, sq, wlp):
    """Full covariance: y_k = A_k (x - s) + b_k = U_k^T (x - mu_k) (K, D, m), |y_k|^2
    (sq), wlp_k = const_k - |y_k|^2 / 2."""
    K, D = b.shape
    for k in range(K):
        _whiten(A[k], b[k], xc, m, y[k])
        for i in range(m):
            sq[k, i] = 0.0
        for j in range(D):
            for i in range(m):
                sq[k, i] += y[k, j, i] * y[k, j, i]
        for i in range(m):
            wlp[k, i] = const[k] - 0.5 * sq[k, i]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _diag_log_densities(xc, m, centres, prec, const, scratch, wlp):
    """Diagonal (and spherical): wlp_k = const_k - sum_d prec_kd (x_d - mu_kd)^2 / 2
    (centres: mu - s)."""
    K, D = centres.shape
    for k in range(K):
        for i in range(m):
            scratch[i] = 0.0
        for d in range(D):
            c, p = centres[k, d], prec[k, d]
            for i in range(m):
                e = xc[d, i] - c
                scratch[i] += p * e * e
        for i in range(m):
            wlp[k, i] = const[k] - 0.5 * scratch[i]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _tied_log_densities(xc, m, A, centres, const, origin, y, scratch, wlp):
    """Tied: y = A (x - s) = U^T (x - s), wlp_k = const_k - |y - m_k|^2 / 2 (centres:
    m_k = U^T (mu_k - s))."""
    K, D = centres.shape
    _whiten(A, origin, xc, m, y)
    for k in range(K):
        for i in range(m):
            scratch[i] = 0.0
        for d in range(D):
            c = centres[k, d]
            for i in range(m):
                e = y[d, i] - c
                scratch[i] += e * e
        for i in range(m):
            wlp[k, i] = const[k] - 0.5 * scratch[i]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def full_block(X, start, w, labels, shift, A, b, const, tau, nk, sums, second, trace,
               acc, work, bits, S, what, out):
    """Full covariance: y_k = A_k (x - s) + b_k = U_k^T (x - mu_k), wlp = const - |y|^2/2;
    the scatter from the same y, of the pairs whose responsibility is at least tau.
    With ``what`` >= 0, the per-row results (``_row_results``) go into ``out``
    instead, and the statistics are not touched."""
    n, D = X.shape
    K = const.shape[0]
    xc, wlp, resp, top, tot, scratch, rest = _common(work, K, D, S)
    y = rest[: K * D * S].reshape((K, D, S))
    sq = rest[K * D * S : K * D * S + K * S].reshape((K, S))  # |y|^2 of each pair
    z = rest[K * D * S + K * S : K * D * S + K * S + D * S].reshape((D, S))
    for s0 in range(0, n, S):
        if acc[4] > 0.0:  # a row to redo: the caller redoes the chunk, stop here
            return
        m = min(S, n - s0)
        _load(X, s0, m, shift, xc)
        _full_log_densities(xc, m, A, b, const, y, sq, wlp)
        if _end_sub_block(wlp, xc, m, start + s0, w, labels, what, out, resp, top, tot,
                          scratch, bits, acc, nk, sums):
            continue  # per-row results: no statistics
        for k in range(K):
            kept = 0  # sqrt(r) y of the kept pairs, gathered into z
            for i in range(m):
                r = resp[k, i]
                if r >= tau:
                    root = math.sqrt(r)
                    for j in range(D):
                        z[j, kept] = root * y[k, j, i]
                    trace[0, k] += r * sq[k, i]
                    kept += 1
                else:
                    trace[1, k] += r * sq[k, i]
            for j in range(D):
                for l in range(j + 1):
                    t = 0.0
                    for i in range(kept):
                        t += z[j, i] * z[l, i]
                    second[k, j, l] += t


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def diag_block(X, start, w, labels, shift, centres, prec, const, tau, nk, sums,
               second, trace, acc, work, bits, S, what, out):
    """Diagonal (and spherical) covariance: wlp = const - sum_d prec_kd (x_d - mu_kd)^2 / 2.
    With ``what`` >= 0, the per-row results (``_row_results``) go into ``out``
    instead, and the statistics are not touched."""
    n, D = X.shape
    K = const.shape[0]
    xc, wlp, resp, top, tot, scratch, _ = _common(work, K, D, S)
    for s0 in range(0, n, S):
        if acc[4] > 0.0:  # a row to redo: the caller redoes the chunk, stop here
            return
        m = min(S, n - s0)
        _load(X, s0, m, shift, xc)
        _diag_log_densities(xc, m, centres, prec, const, scratch, wlp)
        if _end_sub_block(wlp, xc, m, start + s0, w, labels, what, out, resp, top, tot,
                          scratch, bits, acc, nk, sums):
            continue  # per-row results: no statistics
        for k in range(K):
            for d in range(D):
                t = 0.0
                for i in range(m):
                    t += resp[k, i] * xc[d, i] * xc[d, i]
                second[k, d] += t


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def tied_block(X, start, w, labels, shift, A, centres, const, tau, nk, sums, second,
               trace, acc, work, bits, S, what, out):
    """Tied covariance: y = A (x - s) = U^T (x - s), wlp_k = const_k - |y - m_k|^2 / 2.
    With ``what`` >= 0, the per-row results (``_row_results``) go into ``out``
    instead, and the statistics are not touched."""
    n, D = X.shape
    K = const.shape[0]
    xc, wlp, resp, top, tot, scratch, rest = _common(work, K, D, S)
    y = rest[: D * S].reshape((D, S))
    origin = np.zeros(D)
    weighted = w.shape[0] > 0
    for s0 in range(0, n, S):
        if acc[4] > 0.0:  # a row to redo: the caller redoes the chunk, stop here
            return
        m = min(S, n - s0)
        _load(X, s0, m, shift, xc)
        _tied_log_densities(xc, m, A, centres, const, origin, y, scratch, wlp)
        if _end_sub_block(wlp, xc, m, start + s0, w, labels, what, out, resp, top, tot,
                          scratch, bits, acc, nk, sums):
            continue  # per-row results: no statistics
        # Pooled scatter: each row's responsibilities sum to its weight.
        for i in range(m):
            scratch[i] = w[start + s0 + i] if weighted else 1.0
        for j in range(D):
            for l in range(j + 1):
                t = 0.0
                for i in range(m):
                    t += scratch[i] * xc[j, i] * xc[l, i]
                second[j, l] += t



@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _row_results(wlp, m, base, what, out, resp, top, tot, scratch, bits, acc):
    """Per-row results of a sub-block's log-densities wlp (K, m), into row base + i of
    out: ``what`` 0, the most probable component (the first of equals, as argmax); 1,
    the log-likelihood log sum_k exp(wlp_k); 2, the responsibilities (K columns).
    acc[4] counts the rows to redo (see _exp_about_max)."""
    K = wlp.shape[0]
    if what == 0:
        for i in range(m):
            top[i] = wlp[0, i]
            scratch[i] = 0.0
        for k in range(1, K):
            for i in range(m):
                if wlp[k, i] > top[i]:
                    top[i] = wlp[k, i]
                    scratch[i] = k
        for i in range(m):
            if not top[i] > -np.inf:
                acc[4] += 1.0
            out[base + i, 0] = scratch[i]
        return
    acc[4] += _exp_about_max(wlp, 0, m, resp, top, tot, scratch, bits)
    for i in range(m):  # a lost row's sum may be 0 or NaN: its results are not used
        if not tot[i] > 0.0:
            tot[i] = 1.0
    if what == 1:
        for i in range(m):
            out[base + i, 0] = top[i] + math.log(tot[i])
    else:
        for i in range(m):
            for k in range(K):
                out[base + i, k] = resp[k, i] / tot[i]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def responsibilities_cols(wlp, log_total, top, work, bits):
    """The NumPy kernel's column log-sum-exp (``estep._logsumexp_cols``) in one
    compiled pass: wlp (K, b) becomes the responsibilities, log_total (b,) gets
    log sum_k exp(wlp_k - top) and top (b,) max_k wlp_k (0 for a column whose every
    entry is -inf: its responsibilities are then NaN, as NumPy's, for the caller to
    settle). ``work`` (3, S) and ``bits`` (S,) are scratch for sub-blocks of S
    columns."""
    n = wlp.shape[1]
    S = bits.shape[0]
    scratch, top_s, tot = work[0], work[1], work[2]
    for s0 in range(0, n, S):
        m = min(S, n - s0)
        _exp_about_max(wlp, s0, m, wlp, top_s, tot, scratch, bits)
        for i in range(m):  # 1 / 0 = inf, as NumPy's reciprocal gives
            t = tot[i]
            top[s0 + i] = top_s[i]
            scratch[i] = 1.0 / t if t > 0.0 else np.inf
            log_total[s0 + i] = math.log(t) if t > 0.0 else -np.inf
        for k in range(wlp.shape[0]):
            for i in range(m):
                wlp[k, s0 + i] *= scratch[i]


def label_work_size(n_features, sub):
    """Elements of label_block's float64 work array for sub-blocks of ``sub`` rows."""
    return n_features * sub + sub


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def label_block(X, start, w, labels, scores, offsets, shift, nk, sums, second,
                work, flags):
    """Statistics of hard labels (a start): row i wholly in component labels[i], none
    for -1; sums about the shift. ``second``: (K, D, D) full, (1, D, D) tied (lower
    triangles), or (K, D) diagonal.

    With ``scores`` (n, K) and ``offsets`` (K,) whose sum is |x - c_k|^2 / 2 up to a
    term of the row's own, each row's label is first set to its nearest centre (the
    first of equals; k-means' assignment beyond its sample) and written to labels; a
    row with a NaN gets -1 and is counted in flags[0].

    Rows go through in sub-blocks of S rows (work: (D + 1) S), feature-major, so the
    tied scatter runs along the sub-block."""
    n, D = X.shape
    K = nk.shape[0]
    S = work.shape[0] // (D + 1)
    xc = work[: D * S].reshape((D, S))
    wt = work[D * S : D * S + S]  # each row's weight, 0 for no label
    weighted = w.shape[0] > 0
    pooled = second.ndim == 3 and second.shape[0] == 1
    if scores.shape[0] > 0:
        for i in range(n):
            best = np.inf
            arg = -1
            for k in range(K):  # a NaN score never wins: the row keeps -1
                t = offsets[k] + scores[i, k]
                if t < best:
                    best = t
                    arg = k
            labels[start + i] = arg
            if arg < 0:
                flags[0] += 1.0
    for s0 in range(0, n, S):
        if flags[0] > 0.0:  # a row to redo: the caller redoes the chunk, stop here
            return
        m = min(S, n - s0)
        base = start + s0
        _load(X, s0, m, shift, xc)
        for i in range(m):
            k = labels[base + i]
            wt[i] = 0.0
            if k < 0:
                continue
            wi = w[base + i] if weighted else 1.0
            wt[i] = wi
            nk[k] += wi
            for d in range(D):
                sums[k, d] += wi * xc[d, i]
            if second.ndim == 2:
                for d in range(D):
                    second[k, d] += wi * xc[d, i] * xc[d, i]
            elif not pooled:
                for j in range(D):
                    t = wi * xc[j, i]
                    for l in range(j + 1):
                        second[k, j, l] += t * xc[l, i]
        if pooled:  # one scatter for every row: along the sub-block
            for j in range(D):
                for l in range(j + 1):
                    t = 0.0
                    for i in range(m):
                        t += wt[i] * xc[j, i] * xc[l, i]
                    second[0, j, l] += t


# ---------------------------------------------------------------- k-means (the start)
# scikit-learn's KMeans on the start's sample without its per-call overhead (see
# .kmeans): rows centred by the caller, squared distances |x|^2 + |c|^2 - 2 x.c with the
# cross terms by BLAS, as scikit-learn computes them.


@njit(nogil=True, cache=True)
def kmeans_seeds(X, w, x_sq, first, uniforms, indices):
    """Greedy k-means++ seeding: rows of ``X`` (n, D) picked as centres into
    ``indices`` (K,). The first is ``first``; each next one is the best, by the
    weighted potential it leaves, of T candidates drawn in proportion to w times the
    squared distance to the nearest centre so far, ``uniforms`` (K - 1, T) in [0, 1)
    placing the draws. Returns the final potential."""
    n = X.shape[0]
    K = indices.shape[0]
    T = uniforms.shape[1]
    closest = np.empty(n)
    cumulative = np.empty(n)
    trial = np.empty((T, n))
    indices[0] = first
    cross = X @ X[first]
    potential = 0.0
    for i in range(n):
        closest[i] = max(x_sq[i] + x_sq[first] - 2.0 * cross[i], 0.0)
        potential += w[i] * closest[i]
    for c in range(1, K):
        total = 0.0
        for i in range(n):
            total += w[i] * closest[i]
            cumulative[i] = total
        candidates = np.minimum(np.searchsorted(cumulative, uniforms[c - 1] * potential),
                                n - 1)
        cross_t = X @ np.ascontiguousarray(X[candidates].T)  # (n, T)
        best, best_potential = 0, np.inf
        for t in range(T):
            j = candidates[t]
            p = 0.0
            for i in range(n):
                d = min(max(x_sq[i] + x_sq[j] - 2.0 * cross_t[i, t], 0.0), closest[i])
                trial[t, i] = d
                p += w[i] * d
            if p < best_potential:
                best, best_potential = t, p
        indices[c] = candidates[best]
        potential = best_potential
        closest[:] = trial[best]
    return potential


@njit(nogil=True, cache=True)
def _assign(X, centres, labels):
    """Each row's nearest centre (the first of equals) into ``labels``."""
    K = centres.shape[0]
    c_sq = np.empty(K)
    for k in range(K):
        c_sq[k] = centres[k] @ centres[k]
    cross = X @ np.ascontiguousarray(centres.T)
    for i in range(X.shape[0]):
        best, arg = np.inf, 0
        for k in range(K):
            t = c_sq[k] - 2.0 * cross[i, k]
            if t < best:
                best, arg = t, k
        labels[i] = arg


@njit(nogil=True, cache=True)
def _relocate_empty(X, w, centres, labels, sums, weight):
    """Each cluster without weight takes the row farthest from its centre (the farthest
    rows in turn), out of that row's cluster: ``sums`` and ``weight`` updated."""
    K, D = sums.shape
    empty = np.flatnonzero(weight == 0.0)
    if empty.size == 0:
        return
    gap = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        gap[i] = _sq_distance(X, i, centres, labels[i])
    for k in empty:
        row = np.argmax(gap)
        gap[row] = -1.0
        old = labels[row]
        for d in range(D):
            sums[old, d] -= w[row] * X[row, d]
            sums[k, d] = w[row] * X[row, d]
        weight[old] -= w[row]
        weight[k] = w[row]


@njit(nogil=True, cache=True, inline="always")
def _sq_distance(X, i, centres, k):
    t = 0.0
    for d in range(X.shape[1]):
        t += (X[i, d] - centres[k, d]) ** 2
    return t


@njit(nogil=True, cache=True)
def lloyd(X, w, centres, tol, max_iter, labels):
    """Lloyd's iterations from ``centres`` (K, D), updated in place, as scikit-learn's
    KMeans runs them: stop when the labels no longer change or the centres' squared
    shift totals at most ``tol``; a cluster left without weight takes the row farthest
    from its centre (the farthest rows, one per empty cluster). Leaves each row's label
    in ``labels``; returns (inertia, iterations)."""
    n, D = X.shape
    K = centres.shape[0]
    new = np.empty((K, D))
    weight = np.empty(K)
    previous = np.full(n, -1, dtype=labels.dtype)
    settled = False
    iterations = 0
    for it in range(max_iter):
        iterations = it + 1
        _assign(X, centres, labels)
        new[:] = 0.0
        weight[:] = 0.0
        for i in range(n):
            k = labels[i]
            weight[k] += w[i]
            for d in range(D):
                new[k, d] += w[i] * X[i, d]
        _relocate_empty(X, w, centres, labels, new, weight)
        shift = 0.0
        for k in range(K):
            scale = 1.0 / weight[k] if weight[k] > 0.0 else 1.0
            for d in range(D):
                value = new[k, d] * scale
                shift += (value - centres[k, d]) ** 2
                centres[k, d] = value
        same = True
        for i in range(n):
            same = same and labels[i] == previous[i]
            previous[i] = labels[i]
        if same:
            settled = True
            break
        if shift <= tol:
            break
    if not settled:  # the labels of the final centres
        _assign(X, centres, labels)
    inertia = 0.0
    for i in range(n):
        inertia += w[i] * _sq_distance(X, i, centres, labels[i])
    return inertia, iterations


# ---------------------------------------------------------------- the sparse scatter
# Moments._add_sparse's passes over a block's (K, m) pairs (mask, traces, positions,
# roots, gather indices, gathers, scaling) as two compiled loops, staging the same rows
# in the same order with the same arithmetic.


@njit(nogil=True, cache=True)
def sparse_count(resp, half_maha, tau, traces):
    """The pairs (k, i) with resp >= tau; adds per component the traces resp |y|^2 / 2
    of the pairs kept (traces[0]) and of those skipped (traces[1])."""
    K, m = resp.shape
    n = 0
    for k in range(K):
        kept = 0.0
        skipped = 0.0
        for i in range(m):
            t = resp[k, i] * half_maha[k, i]
            if resp[k, i] >= tau:
                kept += t
                n += 1
            else:
                skipped += t
        traces[0, k] += kept
        traces[1, k] += skipped
    return n


@njit(nogil=True, cache=True)
def sparse_gather(resp, tau, r, a, stage, stage_k, lo):
    """Stage the kept pairs from row ``lo`` on, by component then row: columns
    a .. a + width of a pair's row get its residuals ``r[k, :, i]`` (a band (K, width,
    m)) times sqrt(resp[k, i]); its component goes in ``stage_k``."""
    K, m = resp.shape
    width = r.shape[1]
    root = np.empty(1, dtype=stage.dtype)  # the root rounded to the data's dtype
    row = lo
    for k in range(K):
        for i in range(m):
            v = resp[k, i]
            if v >= tau:
                root[0] = np.sqrt(v)
                for j in range(width):
                    stage[row, a + j] = r[k, j, i] * root[0]
                stage_k[row] = k
                row += 1
