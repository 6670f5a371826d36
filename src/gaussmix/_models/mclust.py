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

:func:`mclust_mstep` turns statistics into :class:`~gaussmix._engine.params.Params`
(weights n_k / n, no ``reg_covar``), optionally with mclust's conjugate prior (see
:mod:`gaussmix._models.prior`); :func:`mclust_em` runs mclust's EM (M-step first from a
partition, stop when |l_t - l_{t-1}| / (1 + |l_t|) <= tol) on the engine's E-step.

Importing this module registers the sixteen models, each a
:class:`~gaussmix._models.registry.CovarianceModel` holding all its facts (built at the
bottom of this module), so ``GaussianMixture(covariance_type="VEV")`` works, with
scikit-learn's ``reg_covar`` semantics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg.lapack import dgesvd as _dgesvd

from . import prior as _prior, sklearn_steps as _sklearn
from .numerics import (EPS, FLMAX, INNER_MAX_ITER, INNER_TOL, RTEPS, MstepResult,
                       _check_nk, _compose, _eee_from, _eei_from, _eev_from, _eigh_desc,
                       _evi_from, _fail, _geomean_rows, _symmetrise, _vei_iterate,
                       _vev_iterate, _vvi_from, _vvv_from)
from .registry import ALIASES, CovarianceModel, get_model, register
from .._errors import DegenerateCovarianceError, FitError, NonFiniteLikelihoodError
# The EM below (mclust_em, mclust_mstep, single_component) runs on the engine; MclustParams
# subclasses its Params. The engine imports only the registry from this package.
from .._engine.estep import log_resp_and_norm, weighted_log_prob
from .._engine.params import Params
from .._engine.stats import SuffStats, stats_from_resp

__all__ = [
    "MCLUST_MODELS",
    "UNIVARIATE_MODELS",
    "MclustFitError",
    "MclustParams",
    "MclustEMResult",
    "MstepResult",
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

# mclust's name for a fit failure: a vanishing component or a singular covariance (the
# typed kinds are DegenerateCovarianceError and VanishingComponentError).
MclustFitError = FitError


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
    """mclust's model name from a model or single-component class name."""
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
# Statistics -> Params with mclust's conventions

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
    family = get_model(name).family
    covariances = np.ascontiguousarray(covariances, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    try:
        prec, log_det = _precision_factors(covariances, family)
    except np.linalg.LinAlgError as exc:
        raise DegenerateCovarianceError(f"singular covariance ({name})") from exc
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
    model = get_model(name)
    nk = np.asarray(stats.nk, dtype=np.float64)
    state = None
    if previous is not None:
        state = getattr(previous, "state", None)
        if (state is None and getattr(previous, "model", name) == name
                and model.state_from_covariances is not None):
            state = model.state_from_covariances(previous.covariances)
    scatter = model.scatter_from(stats)
    if prior is None:
        means = stats.means
        result = model.mstep(nk, means, scatter, state)
    else:
        means, result = _prior.map_mstep(name, nk, stats.means, scatter, prior, state)
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
    model = get_model(name)
    X = _as_2d(X)
    n, d = X.shape
    mean = X.mean(axis=0)
    centred = X - mean
    scatter = _symmetrise(centred.T @ centred)
    if prior is not None:
        prior = _prior.resolve_prior(prior, X, 1, model.one_component_class(d))
    mean, covariances = model.single(n, mean, scatter, prior)
    params = _to_params(name, np.ones(1), mean[None, :], covariances, None)
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
    if get_model(name).univariate and d != 1:
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
        prior = _prior.resolve_prior(prior, X, G, name)
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
            _fail("cannot compute E-step (non-finite log-likelihood)",
                  NonFiniteLikelihoodError)
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
