"""mclust's VVV agglomeration compiled: the whole merge loop of :func:`gaussmix._mclust.hc.hc` in one Numba call.

:class:`gaussmix._mclust.hc._Agglomeration` (NumPy) spends ~150 us of Python and NumPy call
overhead per merge for a few microseconds of arithmetic; this module is the same search
-- the same symmetric cost matrix, the same column minima with the same incremental
updates and rescans, the same slot layout after a merge (mclust's Fortran), the same
tie-breaking -- written as loops that Numba compiles, so the whole agglomeration is one
call. The NumPy class stays the reference and the fallback (without Numba, or with
``hc(..., backend="numpy")``); ``tests/test_hc_fast.py`` checks that both give the same
merges.

The merge order depends on the last bits of the costs only where two costs are equal in
exact arithmetic, so the arithmetic follows the NumPy code operation for operation where
that is possible:

* the starting costs (pairs of singletons) are computed by the very same NumPy
  expression (:func:`gaussmix._mclust.hc._initial_costs`), then handed over;
* factors, traces, scatter updates, the criterion and the cost differences are the same
  elementwise operations in the same order; squared distances are summed feature by
  feature (what ``np.einsum`` does for up to 4 features; beyond, NumPy's SIMD order is
  not reproduced) and ``delta @ delta`` is a chain of fused multiply-adds (what
  OpenBLAS's ``ddot`` does for fewer than 16 features);
* a cluster formed before the last merge is scored with the scatter mclust reads back
  (:func:`gaussmix._mclust.hc.stored_scatter`, the same operations);
* determinants are an LU factorisation with partial pivoting turned into
  ``sign * exp(sum(log|u_kk|))`` as ``np.linalg.det`` does, the rank-one update for a
  singleton joining a big cluster uses the same formula and the same conditioning test.

What cannot be the same is the rounding inside LAPACK (OpenBLAS's LU and Cholesky) and
inside NumPy's SIMD ``log`` and ``power`` (SVML on AVX-512 machines, last-bit
differences to the C library's): these change a cost by an ulp or so, which matters only
for two different merges whose costs are equal in exact arithmetic -- where the NumPy
code itself agrees with mclust only by chance, as its rounding differs from mclust's.
Exact ties (duplicate rows and the like) come from bitwise-equal inputs, give
bitwise-equal costs in both, and break as in mclust.

Ward's criterion (``EII``, used only when there are no more rows than columns) stays in
NumPy.

Without Numba (it is optional) :data:`AVAILABLE` is False. The compiled code is cached on
disk (``cache=True``): the first call in a fresh environment compiles for a few seconds.
"""

from __future__ import annotations

import math

import numpy as np

# The compiled Cholesky factor of the EM. Numba's on-disk cache does not follow calls
# into another module: after editing ``_chol``, clear this module's cache too.
from .fast_em import _chol

try:  # optional dependency
    import numba
    from llvmlite import ir as _llvm_ir
    from numba import njit
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "agglomerate_vvv"]

if AVAILABLE:
    _jit = njit(cache=True, nogil=True, error_model="numpy")

    @_intrinsic
    def _fma(typingctx, a, b, c):
        """Fused multiply-add ``a * b + c`` with one rounding (LLVM's ``llvm.fma``)."""
        sig = _types.float64(_types.float64, _types.float64, _types.float64)

        def codegen(context, builder, signature, args):
            dbl = _llvm_ir.DoubleType()
            fn = builder.module.declare_intrinsic(
                "llvm.fma", [dbl], _llvm_ir.FunctionType(dbl, [dbl, dbl, dbl]))
            return builder.call(fn, args)

        return sig, codegen
else:  # pragma: no cover
    def _jit(fn):
        return fn

    def _fma(a, b, c):
        return a * b + c


@_jit
def _det_lu(A, n):
    """``np.linalg.det`` of ``A[:n, :n]`` (overwritten): LU with partial pivoting, then
    ``sign * exp(sum log|u_kk|)`` as NumPy turns LAPACK's factor into a determinant."""
    sign = 1.0
    for k in range(n):
        piv = k
        best = abs(A[k, k])
        for r in range(k + 1, n):
            v = abs(A[r, k])
            if v > best:
                best = v
                piv = r
        if A[piv, k] == 0.0:  # LAPACK's info > 0: NumPy's det is 0
            return 0.0
        if piv != k:
            sign = -sign
            for c in range(n):
                t = A[k, c]
                A[k, c] = A[piv, c]
                A[piv, c] = t
        recip = 1.0 / A[k, k]
        for r in range(k + 1, n):
            A[r, k] *= recip
        for r in range(k + 1, n):
            l = A[r, k]
            for c in range(k + 1, n):
                A[r, c] -= l * A[k, c]
    logdet = 0.0
    for k in range(n):
        u = A[k, k]
        if u < 0.0:
            sign = -sign
            u = -u
        logdet += math.log(u)
    return sign * math.exp(logdet)


@_jit
def _chol_ok(S, L, p):
    """Lower Cholesky factor of ``S`` into ``L``; False if not positive definite or
    ill-conditioned (diagonal ratio below 1e-4), as ``_Agglomeration._chol``."""
    if not _chol(S, L):  # also False for a non-finite factor
        return False
    dmin = L[0, 0]
    dmax = L[0, 0]
    for j in range(p):
        v = L[j, j]
        dmin = min(dmin, v)
        dmax = max(dmax, v)
    return dmin > 1e-4 * dmax


@_jit
def _rescan_col(cost, c, colmin, colarg):
    """Minimum of column ``c`` over the rows above the diagonal; the last row wins ties."""
    best = cost[c, c - 1]
    arg = c - 1
    for r in range(c - 2, -1, -1):
        v = cost[c, r]
        if v < best:
            best = v
            arg = r
    colmin[c] = best
    colarg[c] = arg


@_jit
def _store(Wn, n_points, p, out):
    """:func:`gaussmix._mclust.hc.stored_scatter` of ``Wn`` into ``out``."""
    rows = min(int(n_points) - 1, p)
    if rows <= 1:
        for a in range(p):
            for b in range(p):
                out[a, b] = Wn[a, b]
        return
    if not Wn[0, 0] > 0.0:
        for a in range(p):
            for b in range(p):
                out[a, b] = 0.0
        return
    root = math.sqrt(Wn[0, 0])
    for a in range(p):
        for b in range(p):
            mult = min(min(a, b), rows - 1) + 1
            out[a, b] = ((Wn[0, a] / root) * (Wn[0, b] / root)) * mult


@_jit
def _merged_costs(i, m, p, count, mean, trace, scatter, Wi, term, alpha, beta, out,
                  delta, factor, nik, W, L, y):
    """Cost of merging slot ``i`` (just formed, true scatter ``Wi``) with every active
    slot (read-back scatters) into ``out[:m]`` (``out[i]``: inf)."""
    ni = count[i]
    for k in range(m):
        nik[k] = ni + count[k]
        factor[k] = ni * count[k] / nik[k]
        for a in range(p):
            delta[k, a] = mean[i, a] - mean[k, a]
    # Single-point joins to a well-conditioned big cluster i: one Cholesky factor.
    have_chol = False
    if ni > p:
        n_single = 0
        for k in range(m):
            if k != i and count[k] == 1.0 and nik[k] > p:
                n_single += 1
        if n_single > 1:
            have_chol = _chol_ok(Wi, L, p)
    det_i = 1.0
    if have_chol:
        for a in range(p):
            det_i *= L[a, a]
        det_i = det_i * det_i
    ablog_term = term[i]
    for k in range(m):
        if k == i:
            out[k] = np.inf
            continue
        sq = 0.0
        for a in range(p):
            sq += delta[k, a] * delta[k, a]
        between = factor[k] * sq
        tr = trace[i] + trace[k] + between
        nk = count[k]
        det = 0.0
        if nik[k] > p and not (ni == 1.0 and nk == 1.0):
            if have_chol and nk == 1.0:
                # det(W_i + c d d^T) = det(W_i) (1 + c |L^-1 d|^2)
                quad = 0.0
                for a in range(p):
                    s = delta[k, a]
                    for b in range(a):
                        s -= L[a, b] * y[b]
                    y[a] = s / L[a, a]
                for a in range(p):
                    quad += y[a] * y[a]
                det = det_i * (1.0 + factor[k] * quad) / math.pow(nik[k], p)
            else:
                for a in range(p):
                    da = delta[k, a] * factor[k]
                    for b in range(p):
                        W[a, b] = (scatter[k, a, b] + Wi[a, b]) + da * delta[k, b]
                det = _det_lu(W, p) / math.pow(nik[k], p)
        if tr == 0.0:
            t = nik[k] * math.log(alpha * beta / nik[k])
        else:
            t = nik[k] * math.log(max(det, 0.0) + beta * (tr + alpha) / nik[k])
        out[k] = t - (ablog_term + term[k])


@_jit
def _agglomerate(cost, Z, alpha, beta, ablog, total, pairs):
    """Run ``total`` merges on the cost matrix ``cost`` (n x n, overwritten); merges into
    ``pairs`` as (smallest row index, smallest row index), mclust's layout of slots."""
    n, p = Z.shape
    count = np.ones(n)
    mean = Z.copy()
    trace = np.zeros(n)
    scatter = np.zeros((n, p, p))
    label = np.arange(n)
    term = np.full(n, ablog)
    colmin = np.full(n, np.inf)
    colarg = np.zeros(n, dtype=np.intp)
    stale = np.zeros(n, dtype=np.bool_)
    costs = np.empty(n)
    delta = np.empty((n, p))
    factor = np.empty(n)
    nik = np.empty(n)
    W = np.empty((p, p))
    L = np.empty((p, p))
    y = np.empty(p)
    dv = np.empty(p)
    # The true scatter of the cluster formed by the last merge (slot fresh_slot); the
    # others as mclust reads them back (stored_scatter).
    fresh = np.zeros((p, p))
    fresh_slot = -1
    Wn = np.empty((p, p))
    for c in range(1, n):
        _rescan_col(cost, c, colmin, colarg)
    m = n
    for step in range(total):
        # best pair: the smallest column minimum, the last column among equals
        j = m - 1
        best = colmin[j]
        for c in range(m - 2, 0, -1):
            if colmin[c] < best:
                best = colmin[c]
                j = c
        i = colarg[j]
        a, b = label[i], label[j]
        if a < b:
            pairs[step, 0], pairs[step, 1] = a, b
        else:
            pairs[step, 0], pairs[step, 1] = b, a

        # ---- merge slots i < j
        ni, nj = count[i], count[j]
        nij = ni + nj
        f = ni * nj / nij
        for t in range(p):
            dv[t] = mean[i, t] - mean[j, t]
        dd = 0.0
        for t in range(p):
            dd = _fma(dv[t], dv[t], dd)
        new_trace = trace[i] + trace[j] + f * dd
        Wi = fresh if i == fresh_slot else scatter[i]
        Wj = fresh if j == fresh_slot else scatter[j]
        for r in range(p):
            for c in range(p):
                Wn[r, c] = (Wi[r, c] + Wj[r, c]) + f * (dv[r] * dv[c])
        for t in range(p):
            mean[i, t] = (ni * mean[i, t] + nj * mean[j, t]) / nij
        new_term = cost[i, j] + term[i] + term[j]
        new_label = min(label[i], label[j])
        last = m - 1
        if j != last:  # the last slot moves into slot j
            count[j] = count[last]
            mean[j] = mean[last]
            trace[j] = trace[last]
            scatter[j] = scatter[last]
            term[j] = term[last]
            label[j] = label[last]
            for c in range(m):
                cost[j, c] = cost[last, c]
            for r in range(m):
                cost[r, j] = cost[r, last]
            cost[j, j] = np.inf
        count[i] = nij
        fresh[:, :] = Wn
        fresh_slot = i
        _store(Wn, nij, p, scatter[i])
        trace[i] = new_trace
        term[i] = new_term
        label[i] = new_label
        m -= 1
        if m < 2:
            continue

        _merged_costs(i, m, p, count, mean, trace, scatter, fresh, term, alpha, beta,
                      costs, delta, factor, nik, W, L, y)
        for c in range(m):
            cost[i, c] = costs[c]
            cost[c, i] = costs[c]

        # Column i is new; columns whose minimum sat on a changed row, and column j,
        # are rescanned; any other column can only gain on row i or j.
        if i >= 1:
            arg = i - 1
            bv = costs[arg]
            for r in range(i - 2, -1, -1):
                if costs[r] < bv:
                    bv = costs[r]
                    arg = r
            colmin[i] = bv
            colarg[i] = arg
        for c in range(m):
            ca = colarg[c]
            stale[c] = (c > i) and (ca == i or (j < m and ca == j) or (j < m and c == j))
        for r in (i, j):
            if r >= m:
                continue
            for c in range(r + 1, m):
                if stale[c]:
                    continue
                v = cost[r, c]
                if v < colmin[c] or (v == colmin[c] and r > colarg[c]):
                    colmin[c] = v
                    colarg[c] = r
        for c in range(i + 1, m):
            if stale[c]:
                _rescan_col(cost, c, colmin, colarg)
    return pairs


def agglomerate_vvv(Z, cost, alpha, beta, ablog, total) -> np.ndarray:
    """The first ``total`` VVV merges of ``Z`` from its starting cost matrix.

    Parameters
    ----------
    Z : ndarray of shape (n, p)
    cost : ndarray of shape (n, n)
        :func:`gaussmix._mclust.hc._initial_costs` of ``Z`` (overwritten).
    alpha, beta : float
        The criterion's constants (``alpha`` already scaled, as in ``hc``).
    ablog : float
        ``np.log(alpha * beta)`` (computed by NumPy, as the reference does): the term of
        a singleton.
    total : int
        Number of merges, at most ``n - 1``.

    Returns
    -------
    pairs : ndarray of shape (total, 2), int
    """
    if not AVAILABLE:  # pragma: no cover
        raise RuntimeError("numba is not installed")
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    pairs = np.empty((int(total), 2), dtype=np.intp)
    return _agglomerate(cost, Z, float(alpha), float(beta), float(ablog), int(total),
                        pairs)
