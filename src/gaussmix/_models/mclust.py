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
raises a :class:`~gaussmix._errors.FitError` (``VanishingComponentError``,
``DegenerateCovarianceError``; ``MclustFitError`` is its old name), which mclust reports as
an NA BIC. The kernels they share with the MAP steps of :mod:`gaussmix._models.prior` are
in :mod:`gaussmix._models.numerics`.

The engine's M-step adapter (:class:`gaussmix._engine.mstep.MStep`) turns statistics
into parameters with these steps, with mclust's semantics or scikit-learn's; mclust's EM
runs on the engine's one loop (:mod:`gaussmix._mclust.em`). This package never imports
the engine.

Importing this module registers the sixteen models, each a
:class:`~gaussmix._models.registry.CovarianceModel` holding all its facts (built at the
bottom of this module), so ``GaussianMixture(covariance_type="VEV")`` works, with
scikit-learn's ``reg_covar`` semantics.
"""

from __future__ import annotations

import math
import numpy as np

from . import prior as _prior, sklearn_steps as _sklearn
from .numerics import (EPS, FLMAX, INNER_MAX_ITER, INNER_TOL, RTEPS, MstepResult,
                       _check_nk, _compose, _eee_from, _eei_from, _eev_from, _eigh_desc,
                       _evi_from, _fail, _geomean_rows, _symmetrise, _vei_iterate,
                       _vev_iterate, _vvi_from, _vvv_from)
from .registry import ALIASES, CovarianceModel, get_model, model_names, register
from .._errors import FitError

__all__ = [
    "MCLUST_MODELS",
    "UNIVARIATE_MODELS",
    "MclustFitError",
    "MstepResult",
    "model_family",
    "model_stats_kind",
    "n_var_params",
    "n_mclust_params",
    "mclust_bic",
    "unmap",
]

# mclust's name for a fit failure: a vanishing component or a singular covariance (the
# typed kinds are DegenerateCovarianceError and VanishingComponentError).
MclustFitError = FitError


def _canonical(name: str) -> str:
    """The registered model a model name or single-component class name means: mclust's
    models and any model registered with an mclust M-step (``mstep``)."""
    alias = {"X": "E", "XII": "EII", "XXI": "EEI", "XXX": "EEE"}
    if name in alias:
        return alias[name]
    try:
        model = get_model(name)
    except ValueError:
        model = None
    if model is None or model.mstep is None or name in ALIASES:
        known = ", ".join(m for m in model_names() if get_model(m).mstep is not None)
        raise ValueError(f"Unknown mclust model {name!r}; use one of {known}.") from None
    return model.name


def model_family(name: str) -> str:
    """E-step family ("spherical", "diag", "tied" or "full") of an mclust model."""
    return get_model(_canonical(name)).family


def model_stats_kind(name: str) -> str:
    """Scatter layout ("diag", "tied" or "full") the model's M-step reads."""
    return get_model(_canonical(name)).stats_kind


# ---------------------------------------------------------------------------------------
# Parameter counts (mclust's nVarParams / nMclustParams)

def n_var_params(name: str, G: int, d: int) -> int:
    """Free parameters in the covariances of ``G`` components in ``d`` dimensions."""
    return int(get_model(_canonical(name)).n_cov_parameters(G, d))


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


def mstep_eei(nk, means, scatter, state=None):
    """Diagonal, equal volume and shape: B = diag(sum_k W_k) / n."""
    _check_nk(nk)
    return _eei_from(scatter.sum(axis=0), nk.sum(), nk.shape[0])


def mstep_vei(nk, means, scatter, state=None):
    """Diagonal, varying volume, equal shape: iterative (warm-started as mclust does)."""
    _check_nk(nk)
    shape, scale = _vei_iterate(scatter, scatter.shape[-1] * nk, state)
    return MstepResult(scale[:, None] * shape[None, :], (shape, scale))


def mstep_evi(nk, means, scatter, state=None):
    """Diagonal, equal volume, varying shape: lambda = sum_k det(diag W_k)^(1/d) / n."""
    _check_nk(nk)
    return _evi_from(scatter, nk.sum())


def mstep_vvi(nk, means, scatter, state=None):
    """Diagonal, varying volume and shape: Sigma_k = diag(W_k) / n_k."""
    _check_nk(nk)
    return _vvi_from(scatter, nk)


def mstep_eee(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume, shape and orientation: Sigma = sum_k W_k / n."""
    _check_nk(nk)
    return _eee_from(scatter / nk.sum())


def mstep_vvv(nk, means, scatter, state=None):
    """Ellipsoidal, varying volume, shape and orientation: Sigma_k = W_k / n_k."""
    _check_nk(nk)
    return _vvv_from(scatter / nk[:, None, None])


def mstep_eev(nk, means, scatter, state=None):
    """Ellipsoidal, equal volume and shape, varying orientation (closed form)."""
    _check_nk(nk)
    omega, vectors = _eigh_desc(scatter)
    return _eev_from(omega, vectors, nk.sum())


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
    from scipy.linalg.lapack import dgesvd  # here: importing SciPy slows every startup

    if not f.any():
        return np.eye(f.shape[0])
    p_, _, rt, info = dgesvd(f)
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


# ---------------------------------------------------------------------------------------
# Warm-start state from plain covariances (for callers that hold Params, not MclustParams)

def _vei_state(covariances):
    covs = np.asarray(covariances, dtype=np.float64)
    try:
        scale = _geomean_rows(covs)
    except FitError:
        return None
    return covs[0] / scale[0], scale


def _vev_state(covariances):
    covs = np.asarray(covariances, dtype=np.float64)
    try:
        omega, _ = _eigh_desc(covs)
        scale = _geomean_rows(omega)
    except (FitError, np.linalg.LinAlgError):
        return None
    return omega[0] / scale[0], scale


def _common_orientation_state(covariances):
    """EVE and VVE: the first component's axes and each component's shape along them."""
    covs = np.asarray(covariances, dtype=np.float64)
    try:
        _, vectors = _eigh_desc(covs[0])
        orient = vectors.T
        diag = np.einsum("ij,kjl,il->ki", orient, covs, orient)
        return diag / _geomean_rows(diag)[:, None], orient
    except (FitError, np.linalg.LinAlgError):
        return None


# ---------------------------------------------------------------------------------------
# Partitions

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


# ---------------------------------------------------------------------------------------
# The models: every fact of each, registered. VVV, EEE, VVI and VII also carry
# scikit-learn's closed form, which GaussianMixture uses for them (with reg_covar); the
# others reach GaussianMixture through their mclust M-step on a regularised scatter.

_MODELS = (
    CovarianceModel(
        "EII", "spherical", "diag", lambda G, d: 1,
        description="spherical, equal volume",
        mclust_type="spherical, equal volume",
        mstep=mstep_eii, map_mstep=_prior.map_eii, fast_code=0),
    CovarianceModel(
        "VII", "spherical", "diag", lambda G, d: G,
        description="spherical, varying volume (scikit-learn 'spherical')",
        mclust_type="spherical, varying volume",
        mstep=mstep_vii, map_mstep=_prior.map_vii,
        sklearn_covariances=_sklearn.spherical_covariances, fast_code=1),
    CovarianceModel(
        "EEI", "diag", "diag", lambda G, d: d,
        description="diagonal, equal volume and shape",
        mclust_type="diagonal, equal volume and shape",
        mstep=mstep_eei, map_mstep=_prior.map_eei, fast_code=2),
    CovarianceModel(
        "VEI", "diag", "diag", lambda G, d: G + (d - 1),
        description="diagonal, varying volume, equal shape",
        mclust_type="diagonal, equal shape",
        mstep=mstep_vei, map_mstep=_prior.map_vei, state_from_covariances=_vei_state,
        fast_code=3),
    CovarianceModel(
        "EVI", "diag", "diag", lambda G, d: 1 + G * (d - 1),
        description="diagonal, equal volume, varying shape",
        mclust_type="diagonal, equal volume, varying shape",
        mstep=mstep_evi, map_mstep=_prior.map_evi, fast_code=4),
    CovarianceModel(
        "VVI", "diag", "diag", lambda G, d: G * d,
        description="diagonal, varying volume and shape (scikit-learn 'diag')",
        mclust_type="diagonal, varying volume and shape",
        mstep=mstep_vvi, map_mstep=_prior.map_vvi,
        sklearn_covariances=_sklearn.diag_covariances, fast_code=5),
    CovarianceModel(
        "EEE", "tied", "tied", lambda G, d: d * (d + 1) // 2,
        description="ellipsoidal, equal volume, shape and orientation (scikit-learn 'tied')",
        mclust_type="ellipsoidal, equal volume, shape and orientation",
        mstep=mstep_eee, map_mstep=_prior.map_eee,
        sklearn_covariances=_sklearn.tied_covariances, fast_code=6),
    CovarianceModel(
        "VEE", "full", "full", lambda G, d: G + (d - 1) + d * (d - 1) // 2,
        description="ellipsoidal, varying volume, equal shape and orientation",
        mclust_type="ellipsoidal, equal shape and orientation",
        mstep=mstep_vee, fast_code=7),
    CovarianceModel(
        "EVE", "full", "full", lambda G, d: 1 + G * (d - 1) + d * (d - 1) // 2,
        description="ellipsoidal, equal volume and orientation, varying shape",
        mclust_type="ellipsoidal, equal volume and orientation",
        mstep=mstep_eve, state_from_covariances=_common_orientation_state, fast_code=8),
    CovarianceModel(
        "VVE", "full", "full", lambda G, d: G + G * (d - 1) + d * (d - 1) // 2,
        description="ellipsoidal, equal orientation, varying volume and shape",
        mclust_type="ellipsoidal, equal orientation",
        mstep=mstep_vve, state_from_covariances=_common_orientation_state, fast_code=9),
    CovarianceModel(
        "EEV", "full", "full", lambda G, d: 1 + (d - 1) + G * d * (d - 1) // 2,
        description="ellipsoidal, equal volume and shape, varying orientation",
        mclust_type="ellipsoidal, equal volume and shape",
        mstep=mstep_eev, map_mstep=_prior.map_eev, fast_code=10),
    CovarianceModel(
        "VEV", "full", "full", lambda G, d: G + (d - 1) + G * d * (d - 1) // 2,
        description="ellipsoidal, equal shape, varying volume and orientation",
        mclust_type="ellipsoidal, equal shape",
        mstep=mstep_vev, map_mstep=_prior.map_vev, state_from_covariances=_vev_state,
        fast_code=11),
    CovarianceModel(
        "EVV", "full", "full", lambda G, d: 1 - G + G * d * (d + 1) // 2,
        description="ellipsoidal, equal volume, varying shape and orientation",
        mclust_type="ellipsoidal, equal volume",
        mstep=mstep_evv, fast_code=12),
    CovarianceModel(
        "VVV", "full", "full", lambda G, d: G * d * (d + 1) // 2,
        description="ellipsoidal, varying volume, shape and orientation (scikit-learn 'full')",
        mclust_type="ellipsoidal, varying volume, shape, and orientation",
        mstep=mstep_vvv, map_mstep=_prior.map_vvv,
        sklearn_covariances=_sklearn.full_covariances, fast_code=13),
    # One dimension: the compiled code runs E and V as EII and VII.
    CovarianceModel(
        "E", "spherical", "diag", lambda G, d: 1,
        description="univariate, equal variance",
        mclust_type="univariate, equal variance",
        mstep=mstep_e, map_mstep=_prior.map_e, univariate=True, fast_code=0),
    CovarianceModel(
        "V", "spherical", "diag", lambda G, d: G,
        description="univariate, varying variance",
        mclust_type="univariate, unequal variance",
        mstep=mstep_v, map_mstep=_prior.map_v, univariate=True, fast_code=1),
)

# scikit-learn's four first (full, tied, diag, spherical), then mclust's order: the order
# model_names() lists them in.
_SKLEARN_FIRST = list(ALIASES.values())
for _model in sorted(_MODELS, key=lambda m: (_SKLEARN_FIRST + [m.name]).index(m.name)):
    register(_model)

MCLUST_MODELS = tuple(m.name for m in _MODELS if not m.univariate)
UNIVARIATE_MODELS = tuple(m.name for m in _MODELS if m.univariate)
