"""mclust's EM compiled: the whole loop of one fit in one Numba call, for model selection.

The compiled backend of :func:`gaussmix._mclust.em.fit_mclust` (``backend="numba"``),
honouring the same contract as the engine's loop with mclust's policy: the same inputs,
the same result (:class:`~gaussmix._mclust.result.MclustFit`), the same failures. On the
small data sets mclust is mostly used on (a few hundred rows, a few columns), each
iteration of the engine's loop costs a fraction of a millisecond of Python and NumPy call
overhead for a few microseconds of arithmetic, and ``select``'s default grid runs some
five thousand of them. This module is the same algorithm -- the same M-steps with the
same inner iterations, warm starts and failure rules, the same E-step, the same stopping
rule -- written as loops that Numba compiles, so one fit is one call. It has no prior, no
noise component and needs the rows in memory; those fits run on the engine's loop.

The engine's loop stays the reference: ``tests/test_mclust_fast.py`` checks that both
give the same log-likelihoods (to rounding), the same iteration counts and the same
failed cells for every model on iris and faithful. Rounding differs only in the order of
sums and products and in the exp (here: statistics about the current means, vectorised
sums along the rows and the inverse Cholesky factor's products for full covariances, the
engine kernels' exp, Jacobi rotations for the small eigen- and polar decompositions;
there: shifted, blocked statistics by BLAS, NumPy's exp, LAPACK's decompositions).

Without Numba (it is optional) :data:`AVAILABLE` is False and ``backend="auto"`` means
the engine's loop. The compiled code is cached on disk (``cache=True``): the first call
in a fresh environment compiles for a while, later processes load it in well under a
second.
"""

from __future__ import annotations

import math

import numpy as np

# mclust's thresholds, shared with the NumPy reference (frozen into the compiled code).
from .._models.numerics import (BIGLOG, EPS, FLMAX, INNER_MAX_ITER, INNER_TOL,
                               MCLUST_MAX_ITER, RTEPS, SMALOG)
from .._errors import (ILL_DEFINED_COVARIANCE, DegenerateCovarianceError,
                       NonFiniteLikelihoodError)
from .._models.mclust import _canonical
from .result import MclustFit, MclustParams
from .._models.registry import get_model, model_names

try:  # optional dependency
    import numba
    from numba import njit
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "FAST_MODELS", "fast_mclust_em"]

LOG_2PI = math.log(2.0 * math.pi)

# The models with compiled code (each model's ``fast_code`` picks its branch in _em).
FAST_MODELS = tuple(m for m in model_names() if get_model(m).fast_code is not None)

if AVAILABLE:
    _jit = njit(cache=True, nogil=True, error_model="numpy")
    # the engine's compiled E-step pieces: its diagonal log-densities, maxima and exps
    from .._engine._compiled_kernels import _diag_log_densities, _exp_about_max
else:  # pragma: no cover
    def _jit(fn):
        return fn


# ---------------------------------------------------------------- small numerical helpers
@_jit
def _geomean(x):
    """mclust's geometric mean of a vector; (value, ok). 0 below exp(-708)."""
    m = x.size
    lg = 0.0
    for j in range(m):
        lg += math.log(x[j]) if x[j] > 0.0 else (-np.inf if x[j] == 0.0 else np.nan)
    lg /= m
    if np.isnan(lg) or lg > BIGLOG:
        return 0.0, False
    if lg > SMALOG:
        return math.exp(lg), True
    return 0.0, True


@_jit
def _geomean_plain(x):
    """exp(mean(log x)) with NaN for non-positive entries (mclust's _geomean_rows)."""
    lg = 0.0
    for j in range(x.size):
        lg += math.log(x[j])
    return math.exp(lg / x.size)


@_jit
def _chol(a, out):
    """Lower Cholesky factor of the symmetric ``a`` (its lower triangle) into ``out``."""
    d = a.shape[0]
    for j in range(d):
        s = a[j, j]
        for m in range(j):
            s -= out[j, m] * out[j, m]
        if not (s > 0.0 and s < np.inf):
            return False
        ljj = math.sqrt(s)
        out[j, j] = ljj
        for i in range(j + 1, d):
            t = a[i, j]
            for m in range(j):
                t -= out[i, m] * out[j, m]
            t /= ljj
            if not np.isfinite(t):
                return False
            out[i, j] = t
        for i in range(j):
            out[i, j] = 0.0
    return True


@_jit
def _rcond_ok(cov, work):
    """mclust's test min|diag U| / (1 + max|diag U|) > sqrt(eps) of a Cholesky factor."""
    if not _chol(cov, work):
        return False
    d = cov.shape[0]
    lo, hi = np.inf, 0.0
    for j in range(d):
        v = abs(work[j, j])
        lo = min(lo, v)
        hi = max(hi, v)
    return lo / (1.0 + hi) > RTEPS


@_jit
def _eigh_desc(a):
    """Eigenvalues (descending) and eigenvectors (columns, matching) of a symmetric
    positive semi-definite a (a scatter). Up to d = 6 by the polar factor's Jacobi
    sweeps (a V's column norms are the eigenvalues, V the eigenvectors): LAPACK's
    dsyevd costs 1.9 us at d = 4, the sweeps 0.6. LAPACK where a is near singular or
    two eigenvalues lie within 1e-4 of the largest (their vectors are then a basis
    choice, or uncertain beyond 1e-12, and LAPACK's is the reference's)."""
    d = a.shape[0]
    if d <= _SMALL_D:
        work = np.empty((d, d))
        v = np.empty((d, d))
        out = np.empty((d, d))
        _jacobi_rotate(a, out, work, v, False)
        sigma = np.empty(d)
        for j in range(d):
            t = 0.0
            for i in range(d):
                t += work[j, i] * work[j, i]
            sigma[j] = math.sqrt(t)
        order = np.argsort(-sigma)
        vals = sigma[order]
        clear = vals[d - 1] > 1e-8 * vals[0]
        for j in range(d - 1):
            if not vals[j] - vals[j + 1] > 1e-4 * vals[0]:
                clear = False
        if clear:
            vecs = np.empty((d, d))
            for j in range(d):
                for i in range(d):
                    vecs[i, j] = v[order[j], i]
            return vals, vecs
    vals, vecs = np.linalg.eigh(a)
    return vals[::-1].copy(), vecs[:, ::-1].copy()


@_jit
def _compose(scale, shape, vectors, out):
    """out = scale * V diag(shape) V^T, symmetrised."""
    d = shape.size
    for a in range(d):
        for b in range(d):
            s = 0.0
            for j in range(d):
                s += vectors[a, j] * (scale * shape[j]) * vectors[b, j]
            out[a, b] = s
    for a in range(d):
        for b in range(a):
            v = 0.5 * (out[a, b] + out[b, a])
            out[a, b] = v
            out[b, a] = v


@_jit
def _symmetrise_into(src, factor, out):
    d = src.shape[0]
    for a in range(d):
        for b in range(d):
            out[a, b] = 0.5 * (src[a, b] * factor + src[b, a] * factor)


@_jit
def _scale_shape_sweep(w, nk, shape_d, scale, old_shape, old_scale, shape_floor):
    """One sweep of the VEI / VEV alternation in place (as ``_mclust_models``'s):
    scale_k = sum_j w_kj / shape_j / (d n_k), then shape_j ∝ sum_k w_kj / scale_k
    (det 1). Returns (ok, largest relative change); ok False where mclust fails."""
    K, d = w.shape
    old_scale[:] = scale
    old_shape[:] = shape_d
    for k in range(K):
        s = 0.0
        for j in range(d):
            s += w[k, j] / shape_d[j]
        scale[k] = s / (d * nk[k])
    if not scale.min() > EPS:
        return False, 0.0
    for j in range(d):
        s = 0.0
        for k in range(K):
            s += w[k, j] / scale[k]
        shape_d[j] = s
    if not shape_d.min() > shape_floor:
        return False, 0.0
    g, ok = _geomean(shape_d)
    if not ok or not g > EPS:
        return False, 0.0
    for j in range(d):
        shape_d[j] /= g
    err = 0.0
    for k in range(K):
        err = max(err, abs(old_scale[k] - scale[k]) / (1.0 + scale[k]))
    for j in range(d):
        err = max(err, abs(old_shape[j] - shape_d[j]) / (1.0 + shape_d[j]))
    return True, err


# ----------------------------------------------------------------------- the M-steps
# Every M-step reads n_k (K,), the scatters W (K, d, d) about each component's mean and
# the warm-start state (shape_d (d,), scale (K,), shape_kd (K, d), orient (d, d)); it
# writes variances (K, d) for the diagonal models or covariances (K, d, d) for the
# others, and returns False where mclust reports NA.

@_jit
def _mstep(code, nk, W, var, cov, shape_d, scale, shape_kd, orient, has_state, work,
           inner_max):
    K, d = W.shape[0], W.shape[1]
    for k in range(K):
        if not nk[k] > RTEPS:
            return False
    ntot = nk.sum()
    if code == 0:  # EII (and E)
        s = 0.0
        for k in range(K):
            for j in range(d):
                s += W[k, j, j]
        sigsq = s / (ntot * d)
        if not sigsq > EPS:
            return False
        var[:, :] = sigsq
        return True
    if code == 1:  # VII (and V)
        for k in range(K):
            s = 0.0
            for j in range(d):
                s += W[k, j, j]
            sigsq = s / (nk[k] * d)
            if not sigsq > EPS:
                return False
            var[k, :] = sigsq
        return True
    if code == 2:  # EEI
        tot = np.zeros(d)
        for k in range(K):
            for j in range(d):
                tot[j] += W[k, j, j]
        if not tot.min() > 0.0:
            return False
        g, ok = _geomean(tot)
        if not ok or not g > EPS:
            return False
        sc = g / ntot
        for j in range(d):
            tot[j] /= g
        if not (tot.min() > EPS and sc > EPS):
            return False
        for k in range(K):
            for j in range(d):
                var[k, j] = sc * tot[j]
        return True
    if code == 3:  # VEI
        w = np.empty((K, d))
        for k in range(K):
            for j in range(d):
                w[k, j] = W[k, j, j]
        if not has_state:
            shape_d[:] = 1.0
            scale[:] = 1.0
        inner = 0
        old_scale = np.empty(K)
        old_shape = np.empty(d)
        while True:
            if not shape_d.min() > EPS:
                return False
            inner += 1
            ok, err = _scale_shape_sweep(w, nk, shape_d, scale, old_shape, old_scale, EPS)
            if not ok:
                return False
            if not (err > INNER_TOL and inner <= inner_max):
                break
        for k in range(K):
            for j in range(d):
                var[k, j] = scale[k] * shape_d[j]
        return True
    if code == 4:  # EVI
        sh = np.empty((K, d))
        for k in range(K):
            for j in range(d):
                sh[k, j] = W[k, j, j]
        total = 0.0
        for k in range(K):
            if sh[k].min() > 0.0:
                g, ok = _geomean(sh[k])
                if not ok or g < EPS:
                    return False
                total += g
                for j in range(d):
                    sh[k, j] /= g
        sc = total / ntot
        if not sc > EPS:
            return False
        if not sh.min() > EPS:
            return False
        for k in range(K):
            for j in range(d):
                var[k, j] = sc * sh[k, j]
        return True
    if code == 5:  # VVI
        for k in range(K):
            for j in range(d):
                if not W[k, j, j] > EPS:
                    return False
        for k in range(K):
            g, ok = _geomean(np.diag(W[k]).copy())
            if not ok or not g > EPS:
                return False
            sc = g / nk[k]
            if not sc > EPS:
                return False
            for j in range(d):
                shp = W[k, j, j] / g
                if not shp > EPS:
                    return False
                var[k, j] = sc * shp
        return True
    if code == 6:  # EEE
        pooled = np.zeros((d, d))
        for k in range(K):
            pooled += W[k]
        _symmetrise_into(pooled, 1.0 / ntot, cov[0])
        if not _rcond_ok(cov[0], work):
            return False
        for k in range(1, K):
            cov[k] = cov[0]
        return True
    if code == 13:  # VVV
        for k in range(K):
            _symmetrise_into(W[k], 1.0 / nk[k], cov[k])
            if not _rcond_ok(cov[k], work):
                return False
        return True
    if code == 10 or code == 11:  # EEV, VEV
        omega = np.empty((K, d))
        vectors = np.empty((K, d, d))
        for k in range(K):
            vals, vecs = _eigh_desc(W[k])
            omega[k] = vals
            vectors[k] = vecs
        if code == 10 or not has_state:
            shp = np.zeros(d)
            for k in range(K):
                shp += omega[k]
            if not shp.min() > 0.0:
                return False
            g, ok = _geomean(shp)
            if not ok or not g > EPS:
                return False
            for j in range(d):
                shp[j] /= g
            if code == 10:
                sc = g / ntot
                if not (shp.min() > EPS and sc > EPS):
                    return False
                for j in range(d):
                    if not math.sqrt(sc * shp[j]) > RTEPS:
                        return False
                for k in range(K):
                    _compose(sc, shp, vectors[k], cov[k])
                return True
            shape_d[:] = shp
            scale[:] = g / ntot
        inner = 0
        old_scale = np.empty(K)
        old_shape = np.empty(d)
        while True:
            inner += 1
            ok, err = _scale_shape_sweep(omega, nk, shape_d, scale, old_shape, old_scale,
                                         0.0)
            if not ok:
                return False
            if not (err >= INNER_TOL and inner < inner_max):
                break
        if not (shape_d.min() > EPS and scale.min() > EPS):
            return False
        for j in range(d):
            if not math.sqrt(shape_d[j]) > RTEPS:
                return False
        for k in range(K):
            _compose(scale[k], shape_d, vectors[k], cov[k])
        return True
    if code == 12:  # EVV
        gs = np.empty(K)
        lam = 0.0
        for k in range(K):
            omega = np.linalg.eigvalsh(W[k])
            lg = 0.0
            for j in range(d):
                lg += math.log(omega[j]) if omega[j] > 0.0 else (
                    -np.inf if omega[j] == 0.0 else np.nan)
            g = math.exp(lg / d)
            gs[k] = g
            lam += g
            for j in range(d):
                shp = omega[j] / g
                if not np.isfinite(shp):
                    return False
                if not shp > RTEPS:
                    return False
        lam /= ntot
        if not (np.isfinite(lam) and lam > RTEPS):
            return False
        for k in range(K):
            _symmetrise_into(W[k], lam / gs[k], cov[k])
        return True
    if code == 7:  # VEE
        for k in range(K):
            if not _chol(W[k], work):
                return False
        sc = np.ones(K)
        target_prev = FLMAX / 2
        inner = 0
        c = np.empty((d, d))
        low = np.empty((d, d))
        inv = np.empty((d, d))
        c_inv = np.empty((d, d))
        while True:
            inner += 1
            c[:, :] = 0.0
            for k in range(K):
                r = 1.0 / sc[k]
                for a in range(d):
                    for b in range(d):
                        c[a, b] += W[k, a, b] * r
            if not _chol(c, low):
                return False
            log_g = 0.0
            for j in range(d):
                log_g += math.log(low[j, j])
            log_g = 2.0 * log_g / d
            g = math.exp(log_g)
            c /= g
            # inverse of the lower factor (forward substitution), scaled to C / g
            rg = math.sqrt(g)
            for col in range(d):
                for i in range(d):
                    t = 1.0 if i == col else 0.0
                    for m in range(i):
                        t -= low[i, m] * inv[m, col]
                    inv[i, col] = t / low[i, i]
            inv *= rg
            # (C / g)^-1 = inv^T inv, once per inner iteration (not once per component)
            _transpose_times(inv, inv, c_inv)
            for k in range(K):
                s = 0.0
                for i in range(d):
                    for j in range(d):
                        s += W[k, i, j] * c_inv[i, j]
                sc[k] = s / (d * nk[k])
            if not sc.min() > 0.0:
                return False
            target = ntot * d
            acc = 0.0
            for k in range(K):
                acc += math.log(sc[k]) * nk[k]
            target = target + d * acc
            err = abs(target - target_prev) / (1.0 + abs(target))
            target_prev = target
            if not (err > INNER_TOL and inner < inner_max):
                break
        shp = np.linalg.eigvalsh(c)
        if not (shp.min() > RTEPS and sc.min() > RTEPS):
            return False
        csym = np.empty((d, d))
        _symmetrise_into(c, 1.0, csym)
        for k in range(K):
            cov[k] = sc[k] * csym
        return True
    # EVE (8), VVE (9): MM on the common orientation
    return _mstep_eve_vve(code == 9, nk, W, cov, shape_kd, orient, has_state, inner_max)


# Up to this d the polar factor comes from a one-sided Jacobi SVD and the products
# from plain loops: LAPACK's and BLAS's per-call costs exceed the arithmetic there
# (a 4 x 4 polar factor: 4.8 us by dgesdd, 1.2 us by Jacobi; equal to 1e-15).
_SMALL_D = 6


@_jit
def _times_scatters(o, scatters, out):
    """out = O [W_1 | ... | W_K] (d x Kd) (plain loops for small d, the inner one along
    the Kd contiguous entries, which the compiler vectorises)."""
    d, kd = scatters.shape
    if d > _SMALL_D:
        np.dot(o, scatters, out)
        return
    for a in range(d):
        for c in range(kd):
            out[a, c] = 0.0
        for m in range(d):
            oam = o[a, m]
            for c in range(kd):
                out[a, c] += oam * scatters[m, c]


def _round_robin(d_max):
    """The pairs of each dimension's Jacobi sweep in rounds of disjoint pairs (the
    circle method; -1 pads): [d, round, slot] = (p, q). A round's rotations touch
    different columns, so their angles are computed side by side (their chains of
    divisions and square roots overlap in the processor) before they are applied."""
    out = np.full((d_max + 1, d_max, (d_max + 1) // 2, 2), -1, dtype=np.int64)
    for d in range(2, d_max + 1):
        m = d + d % 2
        order = list(range(m))
        for r in range(m - 1):
            for slot in range(m // 2):
                a, b = order[slot], order[m - 1 - slot]
                if a < d and b < d:
                    out[d, r, slot] = (min(a, b), max(a, b))
            order = [order[0], order[-1]] + order[1:-1]
    return out


_PAIRS = _round_robin(_SMALL_D)


@_jit
def _jacobi_rotate(f, out, work, v, warm):
    """One-sided Jacobi: rotate F's columns until orthogonal (F V = U S); on return
    work = (F V)^T and v = V^T (``out`` is scratch). The columns live in rows so that
    each rotation runs along contiguous memory; a sweep takes the pairs in rounds of
    disjoint pairs (``_PAIRS``): 1.8-1.9 -> 1.3-1.5 us for a warm 6 x 6 polar factor of
    the MM loop, in fewer sweeps. With ``warm`` the rotations start from ``v`` (an
    orthogonal V0^T left by a previous call: F V0's columns are rotated on), else from
    the identity."""
    d = f.shape[0]
    if warm:  # work[j] = (F v_j)^T
        for j in range(d):
            for i in range(d):
                t = 0.0
                for m in range(d):
                    t += f[i, m] * v[j, m]
                work[j, i] = t
    else:
        for j in range(d):
            for i in range(d):
                work[j, i] = f[i, j]
                v[j, i] = 1.0 if i == j else 0.0
    total = 0.0
    for i in range(d):
        for j in range(d):
            total += work[j, i] * work[j, i]
    negligible = 1e-24 * total  # a column this small is null: rotating it is noise
    pairs = _PAIRS[d]
    rounds, slots = d - 1 + d % 2, (d + 1) // 2
    rotation = out.reshape(d * d)  # a round's (cos, sin); out is written last
    for _ in range(60):
        rotated = False
        largest = 0.0  # the sweep's largest |sin|
        for r in range(rounds):
            for slot in range(slots):
                p, q = pairs[r, slot, 0], pairs[r, slot, 1]
                rotation[2 * slot] = 0.0  # no rotation
                if p < 0:
                    continue
                alpha = 0.0
                beta = 0.0
                gamma = 0.0
                for i in range(d):
                    alpha += work[p, i] * work[p, i]
                    beta += work[q, i] * work[q, i]
                    gamma += work[p, i] * work[q, i]
                if alpha <= negligible or beta <= negligible:
                    continue
                # (alpha beta would overflow for columns past 1e77)
                if abs(gamma) <= 1e-15 * (np.sqrt(alpha) * np.sqrt(beta)):
                    continue
                # The rotation (c, s) from r = sqrt(u^2 + 4 gamma^2), u = beta - alpha:
                # c = sqrt((r + |u|) / 2r), s = sign(u) 2 gamma / sqrt(2r (r + |u|)),
                # Rutishauser's t = tan(theta) and c = 1 / sqrt(1 + t^2) with the
                # divisions folded in: two square roots and a division in a row, not
                # three divisions between them (this chain sets a sweep's pace).
                u = beta - alpha
                root = np.sqrt(u * u + 4.0 * gamma * gamma)
                h = root + abs(u)
                q = np.sqrt(2.0 * root * h)
                if q < np.inf:
                    rotation[2 * slot] = h / q
                    rotation[2 * slot + 1] = (2.0 * gamma if u >= 0.0 else -2.0 * gamma) / q
                else:  # u^2 overflowed: Rutishauser's form, which scales by gamma first
                    zeta = u / (2.0 * gamma)
                    sign = 1.0 if zeta >= 0.0 else -1.0
                    t = sign / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
                    c = 1.0 / np.sqrt(1.0 + t * t)
                    rotation[2 * slot] = c
                    rotation[2 * slot + 1] = c * t
            for slot in range(slots):
                c = rotation[2 * slot]
                if c == 0.0:
                    continue
                rotated = True
                s = rotation[2 * slot + 1]
                largest = max(largest, abs(s))
                p, q = pairs[r, slot, 0], pairs[r, slot, 1]
                for i in range(d):
                    wp = work[p, i]
                    wq = work[q, i]
                    work[p, i] = c * wp - s * wq
                    work[q, i] = s * wp + c * wq
                for i in range(d):
                    vp = v[p, i]
                    vq = v[q, i]
                    v[p, i] = c * vp - s * vq
                    v[q, i] = s * vp + c * vq
        # Quadratic convergence: after a sweep that turned no pair by more than 1e-9,
        # the next one's turns are of the order of 1e-18, below rounding; it is not run.
        if not rotated or largest < 1e-9:
            break


@_jit
def _jacobi_polar_into(f, out, work, v, warm):
    """The polar factor of a small F by one-sided Jacobi (:func:`_jacobi_rotate`,
    ``warm`` and ``v`` as there): F V = U S, then out = U V^T.

    F of rank d - 1 is common: MM-2's F has an exact zero column whenever every
    component's largest 1 / shape lies in one direction. Its polar factor is then
    unique but for the sign of U's null column, completed here as the unit vector
    orthogonal to the others (that sign flips one direction of the orientation, which
    no covariance sees). False for a lower rank (the null space's basis is LAPACK's
    choice, and the orientation depends on it): the caller takes LAPACK's SVD then."""
    _jacobi_rotate(f, out, work, v, warm)
    d = f.shape[0]
    # U's columns are F V's, normalised: accurate while F is far from singular (a
    # column norm below 1e-6 of the largest would leave U short of orthogonal, and is
    # taken as null). The squared norms go in out's first row, which the product below
    # overwrites last.
    norms = out[0]
    for j in range(d):
        norm = 0.0
        for i in range(d):
            norm += work[j, i] * work[j, i]
        norms[j] = norm
    largest = norms.max()
    null = -1
    for j in range(d):
        if not norms[j] > 1e-12 * largest:
            if null >= 0:
                return False
            null = j
    for j in range(d):
        if j != null:
            norm = np.sqrt(norms[j])
            for i in range(d):
                work[j, i] /= norm
    if null >= 0:
        _complete_basis(work, null)
    _transpose_times(work, v, out)  # U V^T: work holds U^T, v V^T
    return True


@_jit
def _transpose_times(a, b, out):
    """out = a^T b for small square matrices (plain loops)."""
    d = a.shape[0]
    for i in range(d):
        for j in range(d):
            t = 0.0
            for m in range(d):
                t += a[m, i] * b[m, j]
            out[i, j] = t


@_jit
def _complete_basis(u, null):
    """Row ``null`` of ``u`` set to the unit vector orthogonal to the other rows
    (orthonormal): the unit vector e_i that lies least in their span, orthogonalised
    twice against them (classical Gram-Schmidt, repeated for accuracy)."""
    d = u.shape[0]
    best, least = 0, np.inf
    for i in range(d):
        inside = 0.0  # |projection of e_i on the span|^2
        for c in range(d):
            if c != null:
                inside += u[c, i] * u[c, i]
        if inside < least:
            best, least = i, inside
    for a in range(d):
        u[null, a] = 1.0 if a == best else 0.0
    for _ in range(2):
        for c in range(d):
            if c == null:
                continue
            dot = 0.0
            for a in range(d):
                dot += u[c, a] * u[null, a]
            for a in range(d):
                u[null, a] -= dot * u[c, a]
    norm = 0.0
    for a in range(d):
        norm += u[null, a] * u[null, a]
    norm = np.sqrt(norm)
    for a in range(d):
        u[null, a] /= norm


@_jit
def _polar_into(f, out, work, v, warm=False):
    """out = P R^T from the SVD F = P B R^T; the identity for F = 0 (as LAPACK's dgesvd).
    ``work`` and ``v`` are d x d scratch arrays. Returns whether ``v`` holds the
    rotations of a one-sided Jacobi for F, which a next call for a nearby F can start
    from (``warm``): in the MM loop F moves little from sweep to sweep, and a warm
    Jacobi takes two or three sweeps instead of five or six."""
    d = f.shape[0]
    nonzero = False
    for a in range(d):
        for b in range(d):
            if f[a, b] != 0.0:
                nonzero = True
                break
        if nonzero:
            break
    if not nonzero:
        out[:, :] = 0.0
        for a in range(d):
            out[a, a] = 1.0
        return False
    if d <= _SMALL_D and _jacobi_polar_into(f, out, work, v, warm):
        return True
    u, _, vt = np.linalg.svd(f)
    np.dot(u, vt, out)
    return False


@_jit
def _mstep_eve_vve(varying, nk, W, cov, shape_kd, orient, has_state, inner_max):
    """EVE / VVE: the MM algorithm of Browne and McNicholas on the common orientation.

    Each inner iteration is what its linear algebra needs: two products of the d x d
    orientation with the K scatters side by side, and two polar factors; every work
    array is allocated once per M-step, not per inner iteration. The results equal
    mclust's to rounding: MM 1 scales O W_k's rows by 1 / A_k where mclust scales O's
    before the product, and up to d = 6 the products and the polar factors (Jacobi,
    each warm-started from its previous sweep's rotations) are computed here, not by
    BLAS and LAPACK.
    """
    K, d = W.shape[0], W.shape[1]
    ntot = nk.sum()
    omega = np.empty(K)
    for k in range(K):
        eig = np.linalg.eigvalsh(W[k])
        if not eig.min() >= RTEPS:
            return False
        omega[k] = eig[d - 1]
    if not has_state:
        shape_kd[:, :] = 1.0
        orient[:, :] = 0.0
        for a in range(d):
            orient[a, a] = 1.0
    target_prev = FLMAX / 2
    inner = 0
    diag = np.empty((K, d))
    diag_n = np.empty((K, d))
    sc_v = np.empty(K)
    inv_shape = np.empty((K, d))  # 1 / A_k: products in the loop, not divisions
    inv_max = np.empty(K)
    f = np.empty((d, d))
    polar = np.empty((d, d))
    scratch = np.empty((d, d))
    rotations_1 = np.empty((d, d))  # each polar factor's last Jacobi rotations
    rotations_2 = np.empty((d, d))
    warm_1 = warm_2 = False
    target = 0.0
    # The scatters side by side, [W_1 | ... | W_K] (d x Kd): each step's K products
    # O W_k are one product along Kd contiguous entries, and MM 2's W_k D is
    # (D^T W_k)^T (W_k is symmetric). MM 1 reuses the products of the previous
    # iteration's last step (O is unchanged between them): two products per
    # iteration instead of three.
    scatters = np.empty((d, K * d))
    for k in range(K):
        for a in range(d):
            for b in range(d):
                scatters[a, k * d + b] = W[k, a, b]
    prods = np.empty((d, K * d))
    _times_scatters(orient, scatters, prods)
    while True:
        inner += 1
        for k in range(K):
            m = 0.0
            for j in range(d):
                inv_shape[k, j] = 1.0 / shape_kd[k, j]
                m = max(m, inv_shape[k, j])
            inv_max[k] = m
        # MM 1: F = sum_k (A_k^-1 D^T W_k - omega_k A_k^-1 D^T); D = (P R^T)^T
        f[:, :] = 0.0
        for k in range(K):
            om = omega[k]
            for a in range(d):
                ia = inv_shape[k, a]
                for b in range(d):
                    f[a, b] += (prods[a, k * d + b] - om * orient[a, b]) * ia
        warm_1 = _polar_into(f, polar, scratch, rotations_1, warm_1)
        # MM 2: F = sum_k (W_k D A_k^-1 - max(1/A_k) W_k D); D^T = (P R^T)^T
        _times_scatters(polar, scatters, prods)  # prods[b, kd + a] = (W_k D)[a, b]
        f[:, :] = 0.0
        for k in range(K):
            m = inv_max[k]
            for b in range(d):
                ib = inv_shape[k, b] - m  # exactly 0 in the direction of the largest
                for a in range(d):
                    f[a, b] += prods[b, k * d + a] * ib
        warm_2 = _polar_into(f, polar, scratch, rotations_2, warm_2)
        for a in range(d):
            for b in range(d):
                orient[a, b] = polar[b, a]
        _times_scatters(orient, scatters, prods)
        for k in range(K):
            for a in range(d):
                s = 0.0
                for b in range(d):
                    s += prods[a, k * d + b] * orient[a, b]
                diag[k, a] = s
        if varying:
            for k in range(K):
                inv_n = 1.0 / nk[k]
                for j in range(d):
                    diag_n[k, j] = diag[k, j] * inv_n
            if not diag_n.min() > 0.0:
                return False
            for k in range(K):
                g = _geomean_plain(diag_n[k])
                if not np.isfinite(g):
                    return False
                sc_v[k] = g
            for k in range(K):
                for j in range(d):
                    shape_kd[k, j] = diag_n[k, j] / sc_v[k]
            if not (shape_kd.min() >= RTEPS and sc_v.min() >= RTEPS):
                return False
        else:
            if not diag.min() > 0.0:
                return False
            for k in range(K):
                g = _geomean_plain(diag[k])
                if not np.isfinite(g):
                    return False
                for j in range(d):
                    shape_kd[k, j] = diag[k, j] / g
            if not shape_kd.min() >= RTEPS:
                return False
        target = 0.0
        for k in range(K):
            for j in range(d):
                target += diag[k, j] / shape_kd[k, j]
        err = abs(target - target_prev) / (1.0 + abs(target))
        target_prev = target
        if not (err > INNER_TOL and inner < inner_max):
            break
    if not varying:
        sc_v[:] = target / (ntot * d)
    vt = orient.T.copy()
    for k in range(K):
        _compose(sc_v[k], shape_kd[k], vt, cov[k])
    return True


# -------------------------------------------------------------- statistics and E-step
@_jit
def _stats(X, z, nk, means, W):
    """n_k, weighted means and scatters about them (two passes)."""
    n, d = X.shape
    K = z.shape[1]
    nk[:] = 0.0
    means[:, :] = 0.0
    W[:, :, :] = 0.0
    for i in range(n):
        for k in range(K):
            r = z[i, k]
            if r == 0.0:
                continue
            nk[k] += r
            for a in range(d):
                means[k, a] += r * X[i, a]
    for k in range(K):
        for a in range(d):
            means[k, a] /= nk[k]
    diff = np.empty(d)
    for i in range(n):
        for k in range(K):
            r = z[i, k]
            if r == 0.0:
                continue
            for a in range(d):
                diff[a] = X[i, a] - means[k, a]
            for a in range(d):
                ra = r * diff[a]
                for b in range(a + 1):
                    W[k, a, b] += ra * diff[b]
    for k in range(K):
        for a in range(d):
            for b in range(a):
                W[k, b, a] = W[k, a, b]


@_jit
def _responsibilities(zt, top, total, scratch, bits):
    """Log-densities log(w_k N(x_i | k)) in zt (K, n), component-major, into the
    responsibilities; returns the log-likelihood. The maxima, exps and sums by the
    engine kernels' ``_exp_about_max``, whose exps run along the rows in vector
    registers (Numba's exp calls the C library one value at a time: 4x slower on 500
    values, 40% of a full-covariance E-step at n = 100, d = 6, K = 5) and take results
    below exp(-708) as 0: they cannot move any sum they enter (n_k > sqrt(eps) or the
    fit fails), and subnormal arithmetic is some hundred times slower (well separated
    clusters make many). ``top``, ``total``, ``scratch``: (n,) float64, ``bits`` (n,)
    int64. A row whose every density is 0 gives a log-likelihood of -inf."""
    K, n = zt.shape
    _exp_about_max(zt, 0, n, zt, top, total, scratch, bits)
    loglik = 0.0
    for i in range(n):
        loglik += top[i] + math.log(total[i])
        total[i] = 1.0 / total[i]
    for k in range(K):
        for i in range(n):
            zt[k, i] *= total[i]
    return loglik


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _estep(Xt, weights, means, var, zt, nk, sums, S):
    """Responsibilities into zt (K, n) under diagonal covariances (variances ``var``),
    the rows feature-major (``Xt``, d x n), and in the same pass the next M-step's
    statistics about the current means: n_k, sums of z (x - mu_k) and the diagonals of
    the scatters z (x - mu_k)(x - mu_k)^T, all their M-steps read;
    :func:`_shifted_to_scatter` turns them into means and scatters (the engine's
    shifted statistics; the shift, mu_k, sits near the new mean, so nothing cancels).
    Returns (loglik, ok). Along the rows, as :func:`_estep_along_rows` (full
    covariances), whose sums are reassociated the same way: n = 100, d = 6, K = 5,
    10.2 us a row at a time, 3.1 along the rows."""
    d, n = Xt.shape
    K = weights.size
    const = np.empty(K)
    half_log_2pi = 0.5 * d * LOG_2PI
    inv_diag = np.empty((K, d))  # 1 / variances
    for k in range(K):
        s = 0.0
        for j in range(d):
            v = var[k, j]
            if not (v > 0.0 and v < np.inf):
                return 0.0, False
            s += math.log(v)
            inv_diag[k, j] = 1.0 / v
        const[k] = math.log(weights[k]) - 0.5 * s - half_log_2pi
    scratch = np.empty(n)
    _diag_log_densities(Xt, n, means, inv_diag, const, scratch, zt)
    loglik = _responsibilities(zt, np.empty(n), np.empty(n), scratch, np.empty(n, np.int64))
    S[:, :, :] = 0.0
    for k in range(K):
        t = 0.0
        for i in range(n):
            t += zt[k, i]
        nk[k] = t
        for a in range(d):
            mu = means[k, a]
            t1 = 0.0
            t2 = 0.0
            for i in range(n):
                dev = Xt[a, i] - mu
                r = zt[k, i] * dev
                t1 += r
                t2 += r * dev
            sums[k, a] = t1
            S[k, a, a] = t2
    return loglik, True


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _estep_along_rows(Xt, weights, means, cov, zt, nk, sums, S):
    """:func:`_estep` under full covariances (``cov``): the whole lower triangles of the
    scatters. Each component's densities and statistics run along the rows,
    y = L_k^-1 (x - mu_k) as products of the inverse factor and the sums as dot products
    over the rows: loops the compiler vectorises (its sums reassociated, a rounding of
    their order, as the NumPy reference's BLAS). One E-step, n = 100, d = 6, K = 5: 25
    us a row at a time, 10 along the rows, 7.0 with the responsibilities along the rows
    too; n = 50, d = 4, K = 3: 6.6, 3.7 and 2.7 us."""
    d, n = Xt.shape
    K = weights.size
    const = np.empty(K)
    half_log_2pi = 0.5 * d * LOG_2PI
    factor = np.empty((K, d, d))  # U_k = L_k^-T: y = U_k^T (x - mu_k)
    if not _precision_factors(cov, factor):
        return 0.0, False
    for k in range(K):
        s = 0.0  # log det U_k = -log det L_k
        for j in range(d):
            s += math.log(factor[k, j, j])
        const[k] = math.log(weights[k]) + s - half_log_2pi
    dev = np.empty((d, n))  # x - mu_k, feature-major
    y = np.empty(n)
    maha = np.empty(n)
    for k in range(K):  # log(w_k N(x | mu_k, Sigma_k)) of every row into z
        for j in range(d):
            mu = means[k, j]
            for i in range(n):
                dev[j, i] = Xt[j, i] - mu
        maha[:] = 0.0
        for j in range(d):
            y[:] = 0.0
            for m in range(j + 1):
                c = factor[k, m, j]
                for i in range(n):
                    y[i] += c * dev[m, i]
            for i in range(n):
                maha[i] += y[i] * y[i]
        for i in range(n):
            zt[k, i] = const[k] - 0.5 * maha[i]
    loglik = _responsibilities(zt, np.empty(n), maha, y, np.empty(n, np.int64))
    for k in range(K):  # the statistics, a component at a time along the rows
        t = 0.0
        for i in range(n):
            t += zt[k, i]
        nk[k] = t
        for j in range(d):
            mu = means[k, j]
            for i in range(n):
                dev[j, i] = Xt[j, i] - mu
        for a in range(d):
            for i in range(n):
                y[i] = zt[k, i] * dev[a, i]
            t = 0.0
            for i in range(n):
                t += y[i]
            sums[k, a] = t
            for b in range(a + 1):
                t = 0.0
                for i in range(n):
                    t += y[i] * dev[b, i]
                S[k, a, b] = t
    return loglik, True


@_jit
def _shifted_to_scatter(nk, sums, S, means, W):
    """Means and scatters about them from statistics about the old means (in place)."""
    K, d = means.shape
    for k in range(K):
        for a in range(d):
            means[k, a] += sums[k, a] / nk[k]
        for a in range(d):
            da = sums[k, a] / nk[k]
            for b in range(a + 1):
                v = S[k, a, b] - nk[k] * da * (sums[k, b] / nk[k])
                W[k, a, b] = v
                W[k, b, a] = v


@_jit
def _em(X, z, code, tol, max_iter, weights, means, var, cov, shape_d, scale, shape_kd,
        orient, inner_max):
    """mclust's ``me``: M-step from z, then E and M until the relative change <= tol.

    Returns (status, loglik, n_iter, err): status 0 ok, 1 M-step failure (NA),
    2 E-step failure (singular covariance), 3 non-finite log-likelihood.
    z is overwritten with the last responsibilities; the parameter arrays hold the last
    parameters, and the state arrays their warm start.
    """
    n, d = X.shape
    K = z.shape[1]
    nk = np.empty(K)
    W = np.empty((K, d, d))
    work = np.empty((d, d))
    sums = np.empty((K, d))
    S = np.empty((K, d, d))
    diagonal = code <= 5
    Xt = np.ascontiguousarray(X.T)  # the E-steps run along the rows
    zt = np.empty((K, n))  # their responsibilities, component-major
    _stats(X, z, nk, means, W)
    # has_state as a runtime bool (n_iter > 0), not the constants False and True: Numba
    # would compile the large _mstep twice, once per literal, doubling the first run.
    n_iter = 0
    if not _mstep(code, nk, W, var, cov, shape_d, scale, shape_kd, orient, n_iter > 0,
                  work, inner_max):
        return 1, 0.0, 1, 0.0
    for k in range(K):
        weights[k] = nk[k] / n
    n_iter = 1
    hold = FLMAX / 2
    loglik = 0.0
    err = 0.0
    while True:
        if diagonal:
            loglik, ok = _estep(Xt, weights, means, var, zt, nk, sums, S)
        else:
            loglik, ok = _estep_along_rows(Xt, weights, means, cov, zt, nk, sums, S)
        if not ok:
            return 2, 0.0, n_iter, 0.0
        if not np.isfinite(loglik):
            return 3, 0.0, n_iter, 0.0
        err = abs(hold - loglik) / (1.0 + abs(loglik))
        hold = loglik
        if err <= tol or n_iter >= max_iter:
            break
        _shifted_to_scatter(nk, sums, S, means, W)
        if not _mstep(code, nk, W, var, cov, shape_d, scale, shape_kd, orient, n_iter > 0,
                      work, inner_max):
            return 1, 0.0, n_iter, 0.0
        for k in range(K):
            weights[k] = nk[k] / n
        n_iter += 1
    for i in range(n):
        for k in range(K):
            z[i, k] = zt[k, i]
    return 0, loglik, n_iter, err


# ------------------------------------------------------------------------- the face
_FAILURES = {
    1: (DegenerateCovarianceError,
        "mclust M-step failed (a component vanished or a covariance is singular)"),
    2: (DegenerateCovarianceError, "singular covariance"),
    3: (NonFiniteLikelihoodError, "cannot compute E-step (non-finite log-likelihood)"),
}


def fast_mclust_em(X, model_name: str, z_init, tol: float = 1e-5,
                   max_iter: int | None = None, inner_max_iter: int | None = None):
    """mclust's EM from responsibilities without prior or noise, compiled.

    The compiled backend of :func:`gaussmix._mclust.em.fit_mclust`: the rows ``X``
    (n, d), starting responsibilities ``z_init`` (n, G) with G >= 2, and the same result,
    an :class:`~gaussmix._mclust.result.MclustFit` (its ``history`` holds only the last
    log-likelihood, its ``z`` the final responsibilities, its ``stats`` None).
    ``inner_max_iter`` caps the inner iterations of the iterative M-steps (VEI, VEV,
    VEE, EVE, VVE); None: ``INNER_MAX_ITER``, the cap the NumPy reference uses (tests
    lower both to compare the two paths quickly where the cap is reached).

    Raises
    ------
    FitError
        Where mclust reports NA.
    """
    if not AVAILABLE:  # pragma: no cover
        raise RuntimeError("numba is not installed")
    name = _canonical(model_name)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n, d = X.shape
    z = np.array(z_init, dtype=np.float64, order="C")
    K = z.shape[1]
    model = get_model(name)
    if model.fast_code is None:
        raise ValueError(f"model {name} has no compiled code")
    code = model.fast_code
    weights, means = np.empty(K), np.empty((K, d))
    var, cov = np.empty((K, d)), np.empty((K, d, d))
    shape_d, scale = np.empty(d), np.empty(K)
    shape_kd, orient = np.empty((K, d)), np.empty((d, d))
    if max_iter is None:  # mclust has no cap; ours is large and finite
        max_iter = MCLUST_MAX_ITER
    if inner_max_iter is None:
        inner_max_iter = INNER_MAX_ITER
    status, loglik, n_iter, err = _em(X, z, code, float(tol), max_iter, weights, means,
                                      var, cov, shape_d, scale, shape_kd, orient,
                                      int(inner_max_iter))
    if status:
        error, message = _FAILURES[status]
        raise error(message)
    family = model.family
    matrices = family in ("full", "tied")
    factors = np.empty((1 if family == "tied" else K, d, d) if matrices else (0, d, d))
    roots = np.empty((0 if matrices else K, d))  # diag, spherical: 1 / sqrt(variances)
    log_det = np.empty(K)
    ok, map_loglik = _finish(_FAMILY_CODES[family], var, cov, z, factors, roots, log_det)
    if not ok:
        raise DegenerateCovarianceError(ILL_DEFINED_COVARIANCE + f" (model {name})")
    if family == "full":
        covariances, precision = cov, factors
    elif family == "tied":
        covariances, precision = cov[0], factors[0]
    elif family == "diag":
        covariances, precision = var, roots
    else:
        covariances, precision = var[:, 0].copy(), roots[:, 0].copy()
    state = None
    if name in ("VEI", "VEV"):
        state = (shape_d, scale)
    elif name in ("EVE", "VVE"):
        state = (shape_kd, orient)
    # Built field by field (not by params_from_covariances): a select grid builds one
    # per cell, and the compiled _finish has checked and factored them already.
    params = MclustParams(weights=weights, means=means, covariances=covariances,
                          precisions_cholesky=precision, log_det_cholesky=log_det,
                          family=family, model=name, state=state)
    return MclustFit(params, float(loglik), int(n_iter), bool(err <= tol),
                     (float(loglik),), map_loglik, name, None, z)


_FAMILY_CODES = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}


@_jit
def _finish(family, var, cov, z, factors, roots, log_det):
    """What a fit's parameters derive, in one call (a grid makes one per cell): the
    precision factors (``params._precision_cholesky``'s: full and tied into
    ``factors``, diag and spherical 1 / sqrt(variances) into ``roots``), their
    log-determinants (K,) and ``map_loglik`` of the responsibilities z. Returns
    (ok, map_loglik); ok False where a covariance is not positive definite."""
    K, d = var.shape
    if family <= 1:  # full, tied: U from the Cholesky factor
        if not _precision_factors(cov[: factors.shape[0]], factors):
            return False, 0.0
        for k in range(K):
            u = factors[k if family == 0 else 0]
            s = 0.0
            for j in range(d):
                s += math.log(u[j, j])
            log_det[k] = s
    else:
        for k in range(K):
            s = 0.0
            for j in range(d):
                v = var[k, j]
                if not (v > 0.0 and v < np.inf):
                    return False, 0.0
                roots[k, j] = 1.0 / math.sqrt(v)
                s += math.log(roots[k, j])
            log_det[k] = d * math.log(roots[k, 0]) if family == 3 else s
    return True, _map_loglik(z)


@_jit
def _precision_factors(covariances, out):
    """Each covariance's upper-triangular precision factor U (U U^T its inverse,
    ``params._precision_cholesky``'s): the transposed inverse of its lower Cholesky
    factor, by forward substitution. False where one is not positive definite."""
    d = covariances.shape[1]
    lower = np.empty((d, d))
    for k in range(covariances.shape[0]):
        if not _chol(covariances[k], lower):
            return False
        for j in range(d):  # column j of L^-1 (row j of U)
            out[k, j, j] = 1.0 / lower[j, j]
            for i in range(j + 1, d):
                t = 0.0
                for m in range(j, i):
                    t -= lower[i, m] * out[k, j, m]
                out[k, j, i] = t / lower[i, i]
            for i in range(j):
                out[k, j, i] = 0.0
    return True


@_jit
def _map_loglik(z):
    """``result.map_loglik``: sum_i log max_k z_ik, 0 where that z is 0."""
    total = 0.0
    for i in range(z.shape[0]):
        top = 0.0
        for k in range(z.shape[1]):
            top = max(top, z[i, k])
        if top > 0.0:
            total += math.log(top)
    return total
