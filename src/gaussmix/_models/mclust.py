"""mclust's covariance models: M-steps, parameter counts and mclust's EM conventions.

The fourteen multivariate parametrisations Sigma_k = lambda_k D_k A_k D_k^T of Celeux and
Govaert (1995) -- EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV, VVV --
and the univariate E and V, each with the M-step that R's mclust (version 6) computes:

* closed form for EII, VII, EEI, EVI, VVI, EEE, EEV, EVV, VVV, E and V;
* iterative, exactly as mclust iterates, for VEI and VEV (alternating scale / shape,
  warm-started from the previous EM iteration), VEE (alternating C / scales, restarted
  each M-step) and EVE, VVE (the MM algorithms of Browne and McNicholas (2014) on the
  common orientation, warm-started).

Each ``mstep_<model>`` function takes the sufficient statistics (n_k, means, scatter W_k
about each component's own mean) and an optional warm-start state, and returns the
covariances in the layout of the model's E-step family plus the new state. They follow
mclust's failure rules: a vanishing component or a (numerically) singular covariance
raises :class:`MclustFitError`, which mclust reports as an NA BIC.

:func:`mclust_mstep` turns statistics into :class:`~gaussmix._engine.params.Params` (weights
n_k / n, no ``reg_covar``), optionally with mclust's conjugate prior (see
:mod:`gaussmix._models.prior`); :func:`mclust_em` runs mclust's EM (M-step first from a partition,
stop when |l_t - l_{t-1}| / (1 + |l_t|) <= tol) on the engine's E-step. Importing this
module registers the models that the engine's registry did not already hold, with
scikit-learn's ``reg_covar`` semantics, so ``GaussianMixture(covariance_type="VEV")`` works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy.linalg.lapack import dgesvd as _dgesvd

from .registry import CovarianceModel, _REGISTRY, register
from .._engine.estep import log_resp_and_norm, weighted_log_prob
from .._engine.params import ILL_DEFINED_COVARIANCE, Params
from .._engine.stats import SuffStats, stats_from_resp

__all__ = [
    "MCLUST_MODELS",
    "UNIVARIATE_MODELS",
    "MclustFitError",
    "MclustParams",
    "MclustEMResult",
    "MstepResult",
    "MSTEPS",
    "model_family",
    "model_stats_kind",
    "n_var_params",
    "n_mclust_params",
    "mclust_bic",
    "mclust_mstep",
    "mclust_em",
    "single_component",
    "unmap",
]

MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
                 "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
UNIVARIATE_MODELS = ("E", "V")

# mclust's numerical constants (emControl(): eps = machine epsilon, inner tol = sqrt(eps)).
EPS = float(np.finfo(np.float64).eps)
RTEPS = math.sqrt(EPS)
FLMAX = float(np.finfo(np.float64).max)
SMALOG, BIGLOG = -708.0, 709.0
INNER_TOL = RTEPS
# mclust's inner limit is .Machine$integer.max; a finite cap keeps a pathological MM from
# spinning for hours (it is never reached on data where mclust itself returns).
INNER_MAX_ITER = 100_000

_FAMILY = {
    "EII": "spherical", "VII": "spherical", "E": "spherical", "V": "spherical",
    "EEI": "diag", "VEI": "diag", "EVI": "diag", "VVI": "diag",
    "EEE": "tied",
}
_STATS_KIND = {"EEE": "tied"}
for _name in ("EII", "VII", "E", "V", "EEI", "VEI", "EVI", "VVI"):
    _STATS_KIND[_name] = "diag"

# The closed-form class a model falls into with a single component (mclust's X models).
_SINGLE = {"E": "X", "V": "X", "EII": "XII", "VII": "XII",
           "EEI": "XXI", "VEI": "XXI", "EVI": "XXI", "VVI": "XXI"}


class MclustFitError(ValueError):
    """An mclust-style fit failed: a vanishing component or a singular covariance.

    mclust reports such a fit as NA (its BIC cell is empty); the model-selection face turns
    this exception into NaN. It subclasses ValueError, scikit-learn's error for an
    ill-defined covariance.
    """


class MstepResult(NamedTuple):
    """What a covariance M-step returns: covariances in the family layout, and its state."""

    covariances: np.ndarray
    state: Any = None


@dataclass(frozen=True)
class MclustParams(Params):
    """:class:`~gaussmix._engine.params.Params` plus what mclust's iterative M-steps carry over.

    Attributes
    ----------
    model : str
        mclust's model name.
    state : object
        The warm start of the next M-step (VEI, VEV: shape and scales; EVE, VVE: shapes
        and the common orientation), or None.
    """

    model: str = ""
    state: Any = None


class MclustEMResult(NamedTuple):
    """Result of :func:`mclust_em`.

    Attributes
    ----------
    params : MclustParams
        The last parameters.
    loglik : float
        Log-likelihood of the data under ``params`` (mclust's reported loglik).
    n_iter : int
        EM iterations as mclust counts them (M-steps performed, the first one from z_init).
    z : ndarray of shape (n, G)
        Responsibilities under ``params``.
    converged : bool
        Whether the relative change fell to ``tol`` before ``max_iter``.
    model : str
    history : tuple of float
        Log-likelihood after each iteration (its last entry is ``loglik``).
    noise_proportion : float or None
        The noise component's mixing proportion (None without a noise component); the
        Gaussian weights in ``params`` then sum to ``1 - noise_proportion``, and ``z``
        has the noise column last.
    """

    params: MclustParams
    loglik: float
    n_iter: int
    z: np.ndarray
    converged: bool
    model: str
    history: tuple = ()
    noise_proportion: float | None = None


def _canonical(name: str) -> str:
    if name in MCLUST_MODELS or name in UNIVARIATE_MODELS:
        return name
    alias = {"X": "E", "XII": "EII", "XXI": "EEI", "XXX": "EEE"}
    if name in alias:
        return alias[name]
    raise ValueError(
        f"Unknown mclust model {name!r}; use one of {', '.join(MCLUST_MODELS + UNIVARIATE_MODELS)}."
    )


def model_family(name: str) -> str:
    """E-step family ("spherical", "diag", "tied" or "full") of an mclust model."""
    return _FAMILY.get(_canonical(name), "full")


def model_stats_kind(name: str) -> str:
    """Scatter layout ("diag", "tied" or "full") the model's M-step reads."""
    return _STATS_KIND.get(_canonical(name), "full")


# ---------------------------------------------------------------------------------------
# Parameter counts (mclust's nVarParams / nMclustParams)

def n_var_params(name: str, G: int, d: int) -> int:
    """Free parameters in the covariances of ``G`` components in ``d`` dimensions."""
    name = _canonical(name)
    counts: dict[str, Callable[[], float]] = {
        "E": lambda: 1, "V": lambda: G,
        "EII": lambda: 1, "VII": lambda: G,
        "EEI": lambda: d, "VEI": lambda: G + (d - 1),
        "EVI": lambda: 1 + G * (d - 1), "VVI": lambda: G * d,
        "EEE": lambda: d * (d + 1) / 2,
        "EVE": lambda: 1 + G * (d - 1) + d * (d - 1) / 2,
        "VEE": lambda: G + (d - 1) + d * (d - 1) / 2,
        "VVE": lambda: G + G * (d - 1) + d * (d - 1) / 2,
        "EEV": lambda: 1 + (d - 1) + G * d * (d - 1) / 2,
        "VEV": lambda: G + (d - 1) + G * d * (d - 1) / 2,
        "EVV": lambda: 1 - G + G * d * (d + 1) / 2,
        "VVV": lambda: G * d * (d + 1) / 2,
    }
    return int(round(counts[name]()))


def n_mclust_params(name: str, G: int, d: int, noise: bool = False,
                    equal_pro: bool = False) -> int:
    """Free parameters of an mclust model, as mclust's ``nMclustParams`` counts them.

    Covariance parameters, ``G * d`` means and ``G - 1`` mixing proportions (none with
    ``equal_pro``); a noise component adds 2 (its proportion and, as mclust counts it, its
    volume). ``G = 0`` with ``noise`` is the noise-only model (1 parameter).
    """
    if G == 0:
        if not noise:
            raise ValueError("G = 0 needs a noise component")
        return 1
    count = n_var_params(name, G, d) + G * d
    if not equal_pro:
        count += G - 1
    if noise:
        count += 2
    return count


def mclust_bic(loglik: float, name: str, G: int, n: int, d: int, noise: bool = False,
               equal_pro: bool = False) -> float:
    """mclust's BIC, ``2 loglik - npar log(n)`` (larger is better; NaN stays NaN)."""
    return 2.0 * loglik - n_mclust_params(name, G, d, noise, equal_pro) * math.log(n)


# ---------------------------------------------------------------------------------------
# Small numerical helpers, with mclust's thresholds

def _fail(message: str):
    raise MclustFitError(message)


def _check_nk(nk):
    # mclust: "mixing proportion fell below threshold" when min_k n_k <= sqrt(eps)
    if not np.all(nk > RTEPS):
        _fail("mixing proportion fell below threshold (a component vanished)")


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


# ---------------------------------------------------------------------------------------
# The M-steps, one per model. ``scatter`` is in the layout of model_stats_kind(name):
# (K, D) diagonals for the spherical and diagonal models, (D, D) pooled for EEE, else
# (K, D, D). ``means`` are unused by the maximum-likelihood M-steps (the covariance M-step
# only needs the scatter about each mean) but kept so every M-step reads the same triple.

def mstep_e(nk, means, scatter, state=None):
    """Univariate, equal variance: sigma^2 = sum_k W_k / n."""
    _check_nk(nk)
    sigsq = scatter.sum() / nk.sum()
    if not sigsq > EPS:
        _fail("sigma-squared falls below threshold")
    return MstepResult(np.full(nk.shape[0], sigsq))


def mstep_v(nk, means, scatter, state=None):
    """Univariate, varying variance: sigma_k^2 = W_k / n_k."""
    _check_nk(nk)
    sigsq = scatter.sum(axis=1) / nk
    if not np.all(sigsq > EPS):
        _fail("sigma-squared falls below threshold")
    return MstepResult(sigsq)


def mstep_eii(nk, means, scatter, state=None):
    """Spherical, equal volume: lambda = sum_k tr W_k / (n d)."""
    _check_nk(nk)
    sigsq = scatter.sum() / (nk.sum() * scatter.shape[-1])
    if not sigsq > EPS:
        _fail("sigma-squared falls below threshold")
    return MstepResult(np.full(nk.shape[0], sigsq))


def mstep_vii(nk, means, scatter, state=None):
    """Spherical, varying volume: lambda_k = tr W_k / (n_k d)."""
    _check_nk(nk)
    sigsq = scatter.sum(axis=1) / (nk * scatter.shape[-1])
    if not np.all(sigsq > EPS):
        _fail("sigma-squared falls below threshold")
    return MstepResult(sigsq)


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


def mstep_eei(nk, means, scatter, state=None):
    """Diagonal, equal volume and shape: B = diag(sum_k W_k) / n."""
    _check_nk(nk)
    return _eei_from(scatter.sum(axis=0), nk.sum(), nk.shape[0])


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


def mstep_vei(nk, means, scatter, state=None):
    """Diagonal, varying volume, equal shape: iterative (warm-started as mclust does)."""
    _check_nk(nk)
    shape, scale = _vei_iterate(scatter, scatter.shape[-1] * nk, state)
    return MstepResult(scale[:, None] * shape[None, :], (shape, scale))


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


def mstep_evi(nk, means, scatter, state=None):
    """Diagonal, equal volume, varying shape: lambda = sum_k det(diag W_k)^(1/d) / n."""
    _check_nk(nk)
    return _evi_from(scatter, nk.sum())


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


def mstep_vvi(nk, means, scatter, state=None):
    """Diagonal, varying volume and shape: Sigma_k = diag(W_k) / n_k."""
    _check_nk(nk)
    return _vvi_from(scatter, nk)


def _eee_from(pooled_cov):
    cov = _symmetrise(pooled_cov)
    if not _chol_rcond(cov)[0] > RTEPS:
        _fail("singular covariance")
    return MstepResult(cov)


def mstep_eee(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume, shape and orientation: Sigma = sum_k W_k / n."""
    _check_nk(nk)
    return _eee_from(scatter / nk.sum())


def _vvv_from(covs):
    covs = _symmetrise(covs)
    if not _chol_rcond(covs).min() > RTEPS:
        _fail("singular covariance")
    return MstepResult(covs)


def mstep_vvv(nk, means, scatter, state=None):
    """Ellipsoidal, varying volume, shape and orientation: Sigma_k = W_k / n_k."""
    _check_nk(nk)
    return _vvv_from(scatter / nk[:, None, None])


def _eev_from(omega, vectors, denom):
    scale, shape = _scale_and_shape(omega.sum(axis=0), denom)
    if not np.sqrt(scale * shape).min() > RTEPS:
        _fail("singular covariance")
    return MstepResult(_compose(np.full(omega.shape[0], scale), shape[None, :], vectors))


def mstep_eev(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume and shape, varying orientation (closed form)."""
    _check_nk(nk)
    omega, vectors = _eigh_desc(scatter)
    return _eev_from(omega, vectors, nk.sum())


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


def mstep_vev(nk, means, scatter, state=None):
    """Ellipsoidal, varying volume and orientation, equal shape: iterative (as mclust)."""
    _check_nk(nk)
    omega, vectors = _eigh_desc(scatter)
    n = nk.sum()
    shape, scale = _vev_iterate(omega, nk, state,
                                lambda g: np.full(nk.shape[0], g / n))
    return MstepResult(_compose(scale, shape[None, :], vectors), (shape, scale))


def mstep_evv(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume, varying shape and orientation (closed form).

    C_k = W_k / det(W_k)^(1/d) and lambda = sum_k det(W_k)^(1/d) / n.
    """
    _check_nk(nk)
    omega = np.linalg.eigvalsh(scatter)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.exp(np.log(omega).mean(axis=1))
        shape = omega / g[:, None]
        lam = g.sum() / nk.sum()
    if not (np.all(np.isfinite(shape)) and np.isfinite(lam)):
        _fail("singular covariance")
    if not (shape.min() > RTEPS and lam > RTEPS):
        _fail("singular covariance")
    return MstepResult(_symmetrise(scatter * (lam / g)[:, None, None]))


def _vee_iterate(scatter, nk):
    """mclust's VEE loop: C = sum_k W_k / lambda_k (det 1), lambda_k = tr(W_k C^-1)/(d n_k).

    Restarted from lambda = 1 at every M-step; stops when the relative change of
    d sum_k n_k (1 + log lambda_k) falls below sqrt(eps).
    """
    n_components, d = scatter.shape[0], scatter.shape[-1]
    try:
        np.linalg.cholesky(scatter)
    except np.linalg.LinAlgError:
        _fail("singular covariance (a scatter matrix is not positive definite)")
    scale = np.ones(n_components)
    n_total = nk.sum()
    target_prev = FLMAX / 2
    inner = 0
    eye = np.eye(d)
    while True:
        inner += 1
        c = np.tensordot(1.0 / scale, scatter, axes=1)
        try:
            chol = np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            _fail("singular covariance")
        log_g = 2.0 * np.log(np.diagonal(chol)).sum() / d  # log det(C)^(1/d)
        g = math.exp(log_g)
        c = c / g
        chol_inv = np.linalg.solve(chol, eye) * math.sqrt(g)  # inverse factor of C / g
        c_inv = chol_inv.T @ chol_inv
        scale = np.einsum("kij,ji->k", scatter, c_inv) / (d * nk)
        if not scale.min() > 0.0:
            _fail("singular covariance")
        target = n_total * d + d * float(np.log(scale) @ nk)
        err = abs(target - target_prev) / (1.0 + abs(target))
        target_prev = target
        if not (err > INNER_TOL and inner < INNER_MAX_ITER):
            break
    shape = np.linalg.eigvalsh(c)
    if not (shape.min() > RTEPS and scale.min() > RTEPS):
        _fail("singular covariance")
    return _symmetrise(c), scale


def mstep_vee(nk, means, scatter, state=None):
    """Ellipsoidal, varying volume, equal shape and orientation: iterative (as mclust)."""
    _check_nk(nk)
    c, scale = _vee_iterate(scatter, nk)
    return MstepResult(scale[:, None, None] * c[None, :, :])


def _mm_orientation(scatter, omega, shape, orient):
    """One MM-1 + MM-2 sweep of Browne and McNicholas (2014) for the common orientation.

    ``orient`` holds D^T (rows are the directions), ``shape`` (K, D) the det-1 shapes
    A_k it is paired with, ``omega`` (K,) each scatter's largest eigenvalue. Each
    component's term is formed before the sum over components, as mclust does, so a
    spherical A_k contributes an exact zero to MM-2 (and an all-zero F gives D = I, as
    LAPACK's SVD of a zero matrix does in mclust).
    """
    # MM 1: F = sum_k (A_k^-1 D^T W_k - omega_k A_k^-1 D^T); D^T <- P R^T.
    t = orient[None, :, :] / shape[:, :, None]
    f = (t @ scatter - omega[:, None, None] * t).sum(axis=0)
    d_mat = _polar(f).T  # D
    # MM 2: F = sum_k (W_k D A_k^-1 - max(1/A_k) W_k D); D <- P R^T.
    wd = scatter @ d_mat
    inv_max = (1.0 / shape).max(axis=1)
    f = (wd / shape[:, None, :] - inv_max[:, None, None] * wd).sum(axis=0)
    return _polar(f).T  # D^T


def _polar(f):
    """P R^T from the SVD F = P B R^T, by LAPACK's dgesvd as mclust computes it (the
    identity for F = 0, as dgesvd returns). SciPy's direct LAPACK call costs a third of
    numpy.linalg.svd on these tiny matrices, and the MM loop makes many of them."""
    if not f.any():
        return np.eye(f.shape[0])
    p_, _, rt, info = _dgesvd(f)
    if info != 0:
        _fail("LAPACK DGESVD fails to converge")
    return p_ @ rt


def _eve_vve_iterate(scatter, nk, state, varying_volume):
    n_components, d = scatter.shape[0], scatter.shape[-1]
    eig = np.linalg.eigvalsh(scatter)
    if not eig.min() >= RTEPS:
        _fail("singular covariance (a scatter matrix is near singular)")
    omega = eig[:, -1]
    if state is None:
        shape, orient = np.ones((n_components, d)), np.eye(d)
    else:
        shape, orient = (np.array(s, dtype=np.float64) for s in state)
    target_prev = FLMAX / 2
    inner = 0
    while True:
        inner += 1
        orient = _mm_orientation(scatter, omega, shape, orient)
        diag = ((orient @ scatter) * orient).sum(axis=2)  # diag(D^T W_k D), (K, d)
        if varying_volume:
            diag_n = diag / nk[:, None]
            scale = _geomean_rows(diag_n)
            shape = diag_n / scale[:, None]
            if not (shape.min() >= RTEPS and scale.min() >= RTEPS):
                _fail("singular covariance")
        else:
            shape = diag / _geomean_rows(diag)[:, None]
            if not shape.min() >= RTEPS:
                _fail("singular covariance")
        target = float(np.sum(diag / shape))
        err = abs(target - target_prev) / (1.0 + abs(target))
        target_prev = target
        if not (err > INNER_TOL and inner < INNER_MAX_ITER):
            break
    if varying_volume:
        scale_out = scale
    else:
        scale_out = np.full(n_components, target / (nk.sum() * d))
    return shape, orient, scale_out


def _geomean_rows(x):
    if not x.min() > 0.0:
        _fail("singular covariance")
    g = np.exp(np.log(x).mean(axis=1))
    if not np.all(np.isfinite(g)):
        _fail("singular covariance")
    return g


def mstep_eve(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume and orientation, varying shape: MM (as mclust)."""
    _check_nk(nk)
    shape, orient, scale = _eve_vve_iterate(scatter, nk, state, varying_volume=False)
    covs = _compose(scale, shape, np.broadcast_to(orient.T, scatter.shape))
    return MstepResult(covs, (shape, orient))


def mstep_vve(nk, means, scatter, state=None):
    """Ellipsoidal, equal orientation, varying volume and shape: MM (as mclust).

    mclust's MM sweeps on the orientation weigh each component by its det-1 shape only
    (not by 1 / lambda_k); we do the same so the numbers match mclust.
    """
    _check_nk(nk)
    shape, orient, scale = _eve_vve_iterate(scatter, nk, state, varying_volume=True)
    covs = _compose(scale, shape, np.broadcast_to(orient.T, scatter.shape))
    return MstepResult(covs, (shape, orient))


MSTEPS: dict[str, Callable[..., MstepResult]] = {
    "E": mstep_e, "V": mstep_v,
    "EII": mstep_eii, "VII": mstep_vii, "EEI": mstep_eei, "VEI": mstep_vei,
    "EVI": mstep_evi, "VVI": mstep_vvi, "EEE": mstep_eee, "VEE": mstep_vee,
    "EVE": mstep_eve, "VVE": mstep_vve, "EEV": mstep_eev, "VEV": mstep_vev,
    "EVV": mstep_evv, "VVV": mstep_vvv,
}


# ---------------------------------------------------------------------------------------
# Warm-start state from plain covariances (for callers that hold Params, not MclustParams)

def _state_from_covariances(name, covariances):
    covs = np.asarray(covariances, dtype=np.float64)
    try:
        if name == "VEI":
            scale = _geomean_rows(covs)
            return covs[0] / scale[0], scale
        if name == "VEV":
            omega, _ = _eigh_desc(covs)
            scale = _geomean_rows(omega)
            return omega[0] / scale[0], scale
        if name in ("EVE", "VVE"):
            _, vectors = _eigh_desc(covs[0])
            orient = vectors.T
            diag = np.einsum("ij,kjl,il->ki", orient, covs, orient)
            return diag / _geomean_rows(diag)[:, None], orient
    except (MclustFitError, np.linalg.LinAlgError):
        return None
    return None


# ---------------------------------------------------------------------------------------
# Statistics -> Params with mclust's conventions

def _scatter_for(name, stats: SuffStats):
    """The scatter in the layout the model reads, converting from a richer layout."""
    need = model_stats_kind(name)
    if stats.kind == need:
        return stats.scatter
    if need == "diag" and stats.kind == "full":
        return np.diagonal(stats.scatter, axis1=1, axis2=2).copy()
    if need == "tied" and stats.kind == "full":
        return stats.scatter.sum(axis=0)
    raise ValueError(f"model {name} needs {need!r} statistics, got {stats.kind!r}")


def _precision_factors(covariances, family):
    """Upper-triangular U with U U^T = Sigma^-1, and log det U, per component (batched).

    Same convention as :func:`gaussmix._engine.params.params_from_covariances`, computed with
    NumPy's stacked LAPACK calls: one call for all components, and no SciPy triangular
    solve (slow for tiny matrices when OpenBLAS runs threaded on a busy machine).
    """
    if family in ("full", "tied"):
        stacked = covariances if family == "full" else covariances[None]
        if not np.all(np.isfinite(stacked)):
            raise np.linalg.LinAlgError("non-finite covariance")
        chol = np.linalg.cholesky(stacked)
        prec = np.swapaxes(np.linalg.inv(chol), -1, -2)
        prec = np.triu(prec)  # exact zeros below the diagonal, as a triangular solve gives
        log_det = np.log(np.diagonal(prec, axis1=-2, axis2=-1)).sum(axis=-1)
        return (prec, log_det) if family == "full" else (prec[0], log_det[0])
    if not (np.all(np.isfinite(covariances)) and np.all(covariances > 0.0)):
        raise np.linalg.LinAlgError("non-positive variance")
    prec = 1.0 / np.sqrt(covariances)
    if family == "diag":
        return prec, np.log(prec).sum(axis=1)
    return prec, None


def _to_params(name, weights, means, covariances, state) -> MclustParams:
    family = model_family(name)
    covariances = np.ascontiguousarray(covariances, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    try:
        prec, log_det = _precision_factors(covariances, family)
    except np.linalg.LinAlgError as exc:
        raise MclustFitError(f"singular covariance ({name})") from exc
    if family == "tied":
        log_det = np.full(n_components, log_det)
    elif family == "spherical":
        log_det = n_features * np.log(prec)
    return MclustParams(weights=np.asarray(weights, dtype=np.float64), means=means,
                        covariances=covariances, precisions_cholesky=prec,
                        log_det_cholesky=log_det, family=family, model=name, state=state)


def mclust_mstep(name: str, stats: SuffStats, prior=None, previous: Params | None = None
                 ) -> MclustParams:
    """mclust's M-step: parameters from sufficient statistics, no ``reg_covar``.

    Parameters
    ----------
    name : str
        mclust model name ("EII" ... "VVV", "E", "V").
    stats : SuffStats
        Statistics of the E-step (or of a partition), in the model's layout
        (:func:`model_stats_kind`) or a richer one ("full" serves every model).
    prior : gaussmix._models.prior.Prior, optional
        A resolved conjugate prior (see :func:`gaussmix._models.prior.default_prior`): the M-step
        is then mclust's MAP step. Not available for EVE, VEE, VVE, EVV (as in mclust).
    previous : Params, optional
        The current parameters: warm start of the iterative M-steps (VEI, VEV, EVE, VVE),
        exactly as mclust carries it over when ``previous`` is an :class:`MclustParams`.

    Returns
    -------
    MclustParams
        Weights ``n_k / stats.weight`` (``n_k / sum n_k`` when the weight is unknown), so
        with a noise component the Gaussian weights leave the noise share; means and
        covariances per mclust.

    Raises
    ------
    MclustFitError
        A vanishing component or a singular covariance (mclust's NA).
    """
    name = _canonical(name)
    nk = np.asarray(stats.nk, dtype=np.float64)
    state = None
    if previous is not None:
        state = getattr(previous, "state", None)
        if state is None and getattr(previous, "model", name) == name:
            state = _state_from_covariances(name, previous.covariances)
    scatter = _scatter_for(name, stats)
    if prior is None:
        means = stats.means
        result = MSTEPS[name](nk, means, scatter, state)
    else:
        from .prior import map_mstep  # the MAP steps reuse this module's kernels

        means, result = map_mstep(name, nk, stats.means, scatter, prior, state)
    total = stats.weight if stats.weight > 0 else nk.sum()
    return _to_params(name, nk / total, means, result.covariances, result.state)


# ---------------------------------------------------------------------------------------
# Single component (mclust's mvnX, mvnXII, mvnXXI, mvnXXX), closed form

def single_component(X, name: str, prior=None) -> tuple[MclustParams, float]:
    """Fit one Gaussian in closed form, as mclust does for G = 1.

    The model's single-component class is used (XII for EII/VII, XXI for the diagonal
    models, XXX for the ellipsoidal ones, X in one dimension); with a prior, mclust's MAP
    estimates for those classes (``mvnXII`` etc. with ``defaultPrior(G = 1)``).

    Returns
    -------
    (MclustParams, float)
        The parameters and the log-likelihood of ``X``.

    Raises
    ------
    MclustFitError
        The covariance is singular.
    """
    name = _canonical(name)
    X = _as_2d(X)
    n, d = X.shape
    cls = "X" if d == 1 else _SINGLE.get(name, "XXX")
    mean = X.mean(axis=0)
    centred = X - mean
    scatter = _symmetrise(centred.T @ centred)
    if prior is not None:
        from .prior import map_single, resolve_prior

        prior = resolve_prior(prior, X, 1, cls)
        mean, cov = map_single(cls, n, mean, scatter, prior)
    elif cls in ("X", "XII"):
        cov = np.eye(d) * (np.trace(scatter) / (n * d))
    elif cls == "XXI":
        cov = np.diag(np.diag(scatter) / n)
    else:
        cov = scatter / n
    if not np.all(np.isfinite(cov)) or not np.all(np.diag(cov) > 0.0):
        _fail("singular covariance")
    family = model_family(name)
    layout = {"spherical": lambda c: c[:1, 0], "diag": lambda c: np.diag(c)[None, :],
              "tied": lambda c: c, "full": lambda c: c[None]}[family]
    params = _to_params(name, np.ones(1), mean[None, :], layout(cov), None)
    _, norm = log_resp_and_norm(X, params)
    loglik = float(norm.sum())
    if not np.isfinite(loglik):
        _fail("singular covariance")
    return params, loglik


# ---------------------------------------------------------------------------------------
# mclust's EM

def _as_2d(X):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError("X must be a 1-D or 2-D array")
    return X


def unmap(labels, n_groups: int | None = None) -> np.ndarray:
    """Indicator matrix of integer class labels ``0 .. G-1`` (mclust's ``unmap``)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a 1-D integer array")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    G = int(labels.max()) + 1 if n_groups is None else int(n_groups)
    z = np.zeros((labels.size, G))
    z[np.arange(labels.size), labels] = 1.0
    return z


def _as_z(z_init, n):
    z = np.asarray(z_init)
    if z.ndim == 1:
        z = unmap(z)
    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] != n:
        raise ValueError("z_init and X must have the same number of rows")
    if np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > 1):
        raise ValueError("improper specification of z (values must lie in [0, 1])")
    return z


def mclust_em(X, model_name: str, z_init, tol: float = 1e-5, max_iter: int | None = None,
              prior=None, noise_vinv: float | None = None) -> MclustEMResult:
    """EM for one mclust model from a partition or responsibilities, as mclust's ``me``.

    Starts with an M-step from ``z_init``, then alternates E- and M-steps; stops when
    ``|l_t - l_{t-1}| / (1 + |l_t|) <= tol`` or after ``max_iter`` M-steps. One component
    (without noise) is fitted in closed form (mclust's ``mvn``).

    Parameters
    ----------
    X : array-like of shape (n, d) or (n,)
    model_name : str
        mclust model name; "E"/"V" for one-dimensional data.
    z_init : array-like of shape (n, G), or (n,) integer labels 0 .. G-1
        Starting responsibilities (a hard partition for mclust's default start). With
        ``noise_vinv`` the last column (label G) is the noise component.
    tol : float, default 1e-5
        mclust's ``emControl()$tol[1]``.
    max_iter : int, optional
        Limit on EM iterations (mclust's default is effectively unlimited).
    prior : gaussmix._models.prior.Prior or PriorControl, optional
        Conjugate prior; a :class:`~gaussmix._models.prior.PriorControl` is resolved on
        ``(X, G, model_name)`` as mclust's ``priorControl()`` is.
    noise_vinv : float, optional
        Density of mclust's uniform noise component (``Vinv``, the reciprocal of the data's
        hypervolume); None for no noise component.

    Returns
    -------
    MclustEMResult

    Raises
    ------
    MclustFitError
        mclust would return NA: a component vanished or a covariance became singular.
    """
    name = _canonical(model_name)
    X = _as_2d(X)
    n, d = X.shape
    if name in UNIVARIATE_MODELS and d != 1:
        raise ValueError(f"model {name} is for one-dimensional data")
    z = _as_z(z_init, n)
    noise = noise_vinv is not None
    if noise and not noise_vinv > 0:
        raise ValueError("noise_vinv must be positive")
    G = z.shape[1] - noise
    if G < 1:
        raise ValueError("z_init needs at least one Gaussian component")
    if G == 1 and not noise:
        params, loglik = single_component(X, name, prior)
        return MclustEMResult(params, loglik, 1, np.ones((n, 1)), True, name, (loglik,))
    if prior is not None:
        from .prior import resolve_prior

        prior = resolve_prior(prior, X, G, name)
    max_iter = np.iinfo(np.int32).max if max_iter is None else int(max_iter)
    kind = model_stats_kind(name)
    log_vinv = math.log(noise_vinv) if noise else 0.0
    stats = _with_weight(stats_from_resp(X, z[:, :G] if noise else z, kind), n)
    params = mclust_mstep(name, stats, prior)
    noise_pro = float(z[:, G].sum() / n) if noise else None
    n_iter = 1
    hold = FLMAX / 2
    history = []
    while True:
        if noise:
            log_resp, norm = _log_resp_with_noise(X, params, noise_pro, log_vinv)
        else:
            log_resp, norm = log_resp_and_norm(X, params)
        loglik = float(norm.sum())
        if not np.isfinite(loglik):
            _fail("cannot compute E-step (non-finite log-likelihood)")
        history.append(loglik)
        err = abs(hold - loglik) / (1.0 + abs(loglik))
        hold = loglik
        if err <= tol or n_iter >= max_iter:
            break
        resp = np.exp(log_resp)
        if noise:
            noise_pro = float(resp[:, G].sum() / n)
            resp = np.ascontiguousarray(resp[:, :G])
        stats = _with_weight(
            stats_from_resp(X, resp, kind, centers=params.means if kind == "full" else None), n)
        params = mclust_mstep(name, stats, prior, previous=params)
        n_iter += 1
    return MclustEMResult(params, loglik, n_iter, np.exp(log_resp), err <= tol, name,
                          tuple(history), noise_pro)


def _log_resp_with_noise(X, params, noise_pro, log_vinv):
    """Log-responsibilities (n, G + 1) and row log-likelihoods with mclust's noise term."""
    wlp = weighted_log_prob(X, params)
    if noise_pro > 0.0:
        noise_col = np.full((X.shape[0], 1), math.log(noise_pro) + log_vinv)
    else:  # mclust drops a component whose proportion is exactly zero
        noise_col = np.full((X.shape[0], 1), -np.inf)
    wlp = np.concatenate([wlp, noise_col], axis=1)
    top = wlp.max(axis=1, keepdims=True)
    norm = top[:, 0] + np.log(np.exp(wlp - top).sum(axis=1))
    return wlp - norm[:, None], norm


def _with_weight(stats: SuffStats, n: int) -> SuffStats:
    return SuffStats(nk=stats.nk, means=stats.means, scatter=stats.scatter, kind=stats.kind,
                     weight=float(n), n_rows=n)


# ---------------------------------------------------------------------------------------
# Registry entries for the engine (scikit-learn semantics: reg_covar, no mclust failures)

def _registry_estimate(name):
    mstep_fn = MSTEPS[name]

    def estimate(stats: SuffStats, nk, reg_covar, previous=None):
        d = stats.means.shape[1]
        if name in UNIVARIATE_MODELS and d != 1:
            raise ValueError(f"covariance model {name!r} is for one-dimensional data")
        scatter = _scatter_for(name, stats)
        # Regularise the scatter (W_k + n_k reg I) before the constrained step, so the
        # result keeps the model's constraint (adding reg to Sigma_k afterwards would not).
        if scatter.ndim == 3:
            scatter = scatter + (nk * reg_covar)[:, None, None] * np.eye(d)
        elif model_stats_kind(name) == "tied":
            scatter = scatter + nk.sum() * reg_covar * np.eye(d)
        else:
            scatter = scatter + (nk * reg_covar)[:, None]
        state = None if previous is None else _state_from_covariances(name, previous)
        nk_safe = np.maximum(nk, 2 * RTEPS)
        try:
            return mstep_fn(nk_safe, stats.means, scatter, state).covariances
        except MclustFitError as exc:
            raise ValueError(ILL_DEFINED_COVARIANCE) from exc

    return estimate


_DESCRIPTIONS = {
    "E": "univariate, equal variance",
    "V": "univariate, varying variance",
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, varying volume, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "VEE": "ellipsoidal, varying volume, equal shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation, varying shape",
    "VVE": "ellipsoidal, equal orientation, varying volume and shape",
    "EEV": "ellipsoidal, equal volume and shape, varying orientation",
    "VEV": "ellipsoidal, equal shape, varying volume and orientation",
    "EVV": "ellipsoidal, equal volume, varying shape and orientation",
    "VVV": "ellipsoidal, varying volume, shape and orientation",
}


def _register_missing():
    for name in MCLUST_MODELS + UNIVARIATE_MODELS:
        if name in _REGISTRY:  # VVV, EEE, VVI, VII keep scikit-learn's M-steps
            continue
        register(CovarianceModel(
            name, model_family(name), model_stats_kind(name),
            (lambda nm: (lambda k, d: n_var_params(nm, k, d)))(name),
            _registry_estimate(name), _DESCRIPTIONS[name],
        ))


_register_missing()
