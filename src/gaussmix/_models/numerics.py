"""Numerical kernels shared by mclust's maximum-likelihood and MAP M-steps.

mclust's thresholds, its failure rules (each failure raises a typed
:class:`~gaussmix._errors.FitError`, which mclust reports as an NA BIC), and the pieces
both :mod:`gaussmix._models.mclust` and :mod:`gaussmix._models.prior` build their M-steps
from: geometric means, eigen-decompositions, the scale / shape sweeps of VEI and VEV, the
closed forms behind EEI, EVI, VVI, EEE, VVV and EEV, and the single-component classes
(mclust's mvnX, mvnXII, mvnXXI, mvnXXX and their MAP versions).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._errors import DegenerateCovarianceError, VanishingComponentError

# mclust's numerical constants (emControl(): eps = machine epsilon, inner tol = sqrt(eps)).
EPS = float(np.finfo(np.float64).eps)
RTEPS = math.sqrt(EPS)
FLMAX = float(np.finfo(np.float64).max)
SMALOG, BIGLOG = -708.0, 709.0
INNER_TOL = RTEPS
# mclust's inner limit (emControl()$itmax[2] = .Machine$integer.max): the inner loops of
# VEI, VEV, VEE, EVE and VVE stop only at sqrt(eps), as mclust's, so every cell is
# mclust's. A lower cap changes the cells wherever it is reached (issue 19: the EVE / VVE
# MM on raw breast cancer needs 619 081 inner iterations in its first M-step).
INNER_MAX_ITER = 2**31 - 1
# The iteration cap of a fit when none is given. mclust's default is none at all
# (``emControl(itmax = .Machine$integer.max)``); a fit that really needs this many
# iterations at mclust's tolerance does not occur in practice, so the cap changes no
# result and only guarantees that every fit (the compiled one included, which Ctrl-C
# cannot interrupt) returns.
MCLUST_MAX_ITER = 10_000


class MstepResult(NamedTuple):
    """What a covariance M-step returns: covariances in the family layout, and its state."""

    covariances: np.ndarray
    state: Any = None


def _fail(message: str, kind: type = DegenerateCovarianceError):
    """Raise mclust's failure (an NA fit); a singular covariance unless ``kind`` says."""
    raise kind(message)


def _check_nk(nk):
    # mclust: "mixing proportion fell below threshold" when min_k n_k <= sqrt(eps)
    if not np.all(nk > RTEPS):
        _fail("mixing proportion fell below threshold (a component vanished)",
              VanishingComponentError)


def _geomean(x, axis=-1):
    """Geometric mean as mclust computes it: 0 below exp(-708), failure above exp(709)."""
    if x.min() > 0.0:
        lg = np.log(x).mean(axis=axis)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log(x).mean(axis=axis)
        if np.any(np.isnan(lg)):
            _fail("singular covariance (negative variance)")
    if np.max(lg) > BIGLOG:
        _fail("singular covariance (shape overflows)")
    if np.min(lg) > SMALOG:
        return np.exp(lg)
    return np.where(lg > SMALOG, np.exp(np.maximum(lg, SMALOG)), 0.0)


def _geomean_rows(x):
    if not x.min() > 0.0:
        _fail("singular covariance")
    g = np.exp(np.log(x).mean(axis=1))
    if not np.all(np.isfinite(g)):
        _fail("singular covariance")
    return g


def _eigh_desc(matrices):
    """Eigenvalues (descending) and matching eigenvectors (columns) of symmetric matrices."""
    values, vectors = np.linalg.eigh(matrices)
    return values[..., ::-1], vectors[..., ::-1]


def _chol_rcond(covariances):
    """mclust's rc = min |diag U| / (1 + max |diag U|) of each Cholesky factor; 0 if not PD."""
    stacked = covariances if covariances.ndim == 3 else covariances[None]
    if not np.all(np.isfinite(stacked)):
        return np.zeros(stacked.shape[0])
    try:
        diag = np.abs(np.diagonal(np.linalg.cholesky(stacked), axis1=1, axis2=2))
    except np.linalg.LinAlgError:
        return np.zeros(stacked.shape[0])  # one of them is not positive definite
    return diag.min(axis=1) / (1.0 + diag.max(axis=1))


def _compose(scale, shape, vectors):
    """Sigma_k = scale_k V_k diag(shape_k) V_k^T, broadcasting over components."""
    scaled = vectors * (np.asarray(scale)[..., None, None] * shape[..., None, :])
    out = scaled @ np.swapaxes(vectors, -1, -2)
    return 0.5 * (out + np.swapaxes(out, -1, -2))


def _symmetrise(a):
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _scale_and_shape(diag, denom, vanish_message="singular covariance"):
    """Volume and unit-determinant shape of a pooled diagonal, with mclust's checks."""
    if not diag.min() > 0.0:
        _fail(vanish_message)
    g = float(_geomean(diag))
    if not g > EPS:
        _fail("singular covariance")
    scale = g / denom
    shape = diag / g
    if not (shape.min() > EPS and scale > EPS):
        _fail("singular covariance")
    return scale, shape


def _eei_from(total_diag, denom, n_components):
    scale, shape = _scale_and_shape(total_diag, denom,
                                    "singular covariance (a variance vanishes)")
    return MstepResult(np.tile(scale * shape, (n_components, 1)))


def _vei_iterate(w, denom, state):
    """mclust's VEI inner loop: scale_k = sum_j w_kj / shape_j / denom_k, then
    shape_j ∝ sum_k w_kj / scale_k (det 1), until the relative change is below sqrt(eps).

    ``w`` (K, D) diagonals, ``denom`` (K,) = d n_k (plus prior terms). ``state`` is
    (shape, scale) from the previous EM iteration, or None for mclust's start (all ones).
    """
    n_components, d = w.shape
    if state is None:
        shape, scale = np.ones(d), np.ones(n_components)
    else:
        shape, scale = (np.array(s, dtype=np.float64) for s in state)
    inner = 0
    while True:
        if not shape.min() > EPS:
            _fail("singular covariance (shape falls below threshold)")
        inner += 1
        shape, scale, err = _scale_shape_sweep(w, shape, scale, denom, EPS)
        if not (err > INNER_TOL and inner <= INNER_MAX_ITER):
            break
    return shape, scale


def _scale_shape_sweep(w, shape, scale, denom, shape_floor):
    """One sweep of the VEI / VEV alternation: scale_k = sum_j w_kj / shape_j / denom_k,
    then shape_j ∝ sum_k w_kj / scale_k (det 1), with mclust's checks.

    Returns the new (shape, scale) and their largest relative change.
    """
    old_shape, old_scale = shape, scale
    scale = (w / shape).sum(axis=1) / denom
    if not scale.min() > EPS:
        _fail("singular covariance (scale falls below threshold)")
    shape = (w / scale[:, None]).sum(axis=0)
    if not shape.min() > shape_floor:
        _fail("singular covariance (shape falls below threshold)")
    g = float(_geomean(shape))
    if not g > EPS:
        _fail("singular covariance")
    shape = shape / g
    err = max(np.max(np.abs(old_scale - scale) / (1.0 + scale)),
              np.max(np.abs(old_shape - shape) / (1.0 + shape)))
    return shape, scale, err


def _evi_from(diag, denom):
    n_components = diag.shape[0]
    shape = np.array(diag, dtype=np.float64)
    total = 0.0
    for k in range(n_components):
        if shape[k].min() > 0.0:
            g = float(_geomean(shape[k]))
            if g < EPS:
                _fail("singular covariance")
            total += g
            shape[k] /= g
    scale = total / denom
    if not scale > EPS:
        _fail("singular covariance (scale falls below threshold)")
    if not shape.min() > EPS:
        _fail("singular covariance (shape falls below threshold)")
    return MstepResult(scale * shape)


def _vvi_from(diag, denom):
    if not diag.min() > EPS:
        _fail("singular covariance (a variance falls below threshold)")
    g = _geomean(diag, axis=1)
    if not g.min() > EPS:
        _fail("singular covariance")
    scale = g / denom
    shape = diag / g[:, None]
    if not (scale.min() > EPS and shape.min() > EPS):
        _fail("singular covariance")
    return MstepResult(scale[:, None] * shape)


def _eee_from(pooled_cov):
    cov = _symmetrise(pooled_cov)
    if not _chol_rcond(cov)[0] > RTEPS:
        _fail("singular covariance")
    return MstepResult(cov)


def _vvv_from(covs):
    covs = _symmetrise(covs)
    if not _chol_rcond(covs).min() > RTEPS:
        _fail("singular covariance")
    return MstepResult(covs)


def _eev_from(omega, vectors, denom):
    scale, shape = _scale_and_shape(omega.sum(axis=0), denom)
    if not np.sqrt(scale * shape).min() > RTEPS:
        _fail("singular covariance")
    return MstepResult(_compose(np.full(omega.shape[0], scale), shape[None, :], vectors))


def _vev_iterate(omega, nk, state, first_scale):
    """mclust's VEV loop on the eigenvalues omega (K, D, descending) of each scatter.

    Given the shape A (sorted to match), the best orientation of component k is its
    scatter's eigenvectors; scales and shape then alternate as for VEI. The first M-step
    starts from the summed eigenvalues (shape) and ``first_scale``; later ones carry
    (shape, scale) over from the previous EM iteration.
    """
    d = omega.shape[1]
    if state is None:
        shape = omega.sum(axis=0)
        if not shape.min() > 0.0:
            _fail("singular covariance")
        g = float(_geomean(shape))
        if not g > EPS:
            _fail("singular covariance")
        scale = first_scale(g)
        shape = shape / g
    else:
        shape, scale = (np.array(s, dtype=np.float64) for s in state)
    denom = nk * d
    inner = 0
    while True:
        inner += 1
        shape, scale, err = _scale_shape_sweep(omega, shape, scale, denom, 0.0)
        if not (err >= INNER_TOL and inner < INNER_MAX_ITER):
            break
    if not (shape.min() > EPS and scale.min() > EPS):
        _fail("singular covariance")
    if not np.sqrt(shape).min() > RTEPS:
        _fail("singular covariance")
    return shape, scale


# ---------------------------------------------------------------------------------------
# One component (mclust's mvnX, mvnXII, mvnXXI, mvnXXX and their MAP versions)

def map_single(cls: str, n: int, xbar, scatter, prior):
    """mclust's MAP estimate for one component (mvnXp, mnxiip, mnxxip, mnxxxp).

    ``prior`` is a resolved :class:`gaussmix._models.prior.Prior`. Returns the mean (d,)
    and the covariance as a (d, d) matrix.
    """
    d = xbar.shape[0]
    kappa = prior.shrinkage
    kappa_pos = kappa > 0
    coef = kappa * n / (kappa + n)
    delta = xbar - prior.mean
    mean = (n * xbar + kappa * prior.mean) / (n + kappa)
    if cls == "X":
        lam = float(np.asarray(prior.scale).reshape(-1)[0])
        sigsq = (scatter[0, 0] + lam + coef * delta[0] ** 2) / (prior.dof + n + 2.0 + kappa_pos)
        return mean, np.array([[sigsq]])
    if cls == "XII":
        lam = float(np.asarray(prior.scale).reshape(-1)[0])
        sigsq = (lam + coef * float(delta @ delta) + np.trace(scatter))
        sigsq /= prior.dof + n * d + 2.0 + (d if kappa_pos else 0.0)
        return mean, np.eye(d) * sigsq
    if cls == "XXI":
        lam = float(np.asarray(prior.scale).reshape(-1)[0])
        shape = np.diag(scatter) + coef * delta**2 + lam
        return mean, np.diag(shape / (prior.dof + n + 2.0 + kappa_pos))
    lam = np.asarray(prior.scale, dtype=np.float64).reshape(d, d)
    post = lam + scatter + coef * np.outer(delta, delta)
    return mean, _symmetrise(post / (prior.dof + n + d + 1.0 + kappa_pos))


def single_class_fit(cls: str, n: int, mean, scatter, prior=None):
    """One Gaussian of class ``cls`` ("X", "XII", "XXI", "XXX") in closed form.

    ``scatter`` is the full (d, d) scatter about ``mean``; with a resolved ``prior`` the
    estimate is mclust's MAP one. Returns the mean (d,) and the covariance (d, d).

    Raises
    ------
    DegenerateCovarianceError
        The covariance is singular.
    """
    d = mean.shape[0]
    if prior is None:
        mean, scatter = _mvn_constant_columns(n, mean, scatter)
    if prior is not None:
        mean, cov = map_single(cls, n, mean, scatter, prior)
    elif cls in ("X", "XII"):
        cov = np.eye(d) * (np.trace(scatter) / (n * d))
    elif cls == "XXI":
        cov = np.diag(np.diag(scatter) / n)
    else:
        cov = scatter / n
    if not np.all(np.isfinite(cov)) or not np.all(np.diag(cov) > 0.0):
        _fail("singular covariance")
    if cls == "XXI" and prior is None:
        # mvnxxi's rule: the geometric mean of the column scatters within exp(+-708)
        log_mean = float(np.log(np.diag(scatter)).mean())
        if not SMALOG <= log_mean <= BIGLOG:
            _fail("singular covariance (the variances underflow or overflow)")
    return mean, cov


def _mvn_constant_columns(n, mean, scatter):
    """The mean and scatter of one component as mclust's ``mvn`` computes them.

    mclust's mean is the sum of ``(1 / n) * x_i`` (BLAS ``ddot`` with a zero stride,
    added in order by the reference BLAS R ships with). On a constant column c that sum
    is not c but c + delta (a few ulps), so the column's scatter is n delta^2 > 0 and
    mclust's G = 1 cells are finite; where the sum is exactly c, they are singular (NA).
    Only the constant columns (a zero scatter) are redone: on the others mclust's mean
    differs from the engine's by a rounding error that changes nothing.
    """
    constant = np.flatnonzero(np.diag(scatter) == 0.0)
    if constant.size == 0 or n != int(n) or n < 1:
        return mean, scatter
    mean, scatter = np.array(mean, dtype=np.float64), np.array(scatter, dtype=np.float64)
    step = 1.0 / n
    for j in constant:
        c = mean[j]
        # mclust's sum, in order (np.cumsum adds sequentially)
        mean[j] = np.cumsum(np.full(int(n), step * c))[-1]
        scatter[j, :] = scatter[:, j] = 0.0
        scatter[j, j] = n * (c - mean[j]) ** 2
    return mean, scatter
