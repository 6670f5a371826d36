"""mclust's conjugate prior (Fraley and Raftery 2007) and its MAP M-steps.

The prior is normal on the means given the covariances, and inverse gamma / inverse
Wishart on the variances / covariances, with hyperparameters

* ``shrinkage`` kappa_P (default 0.01) and ``mean`` mu_P (default: the data mean),
* ``dof`` nu_P (default d + 2; 3 in one dimension),
* ``scale`` Lambda_P (default: var(data) / G^(2/d) for ellipsoidal models, the average
  variance times that factor for spherical and diagonal models, var / G^2 in 1-D),

exactly as mclust's ``defaultPrior``. :class:`PriorControl` (mclust's ``priorControl()``)
holds user overrides and is resolved per (data, G, model) into a :class:`Prior`.

The MAP M-steps (:func:`map_mstep`) are those of mclust's Fortran ``ms*p`` / ``me*p``
routines, quirks included (for instance mclust's EII step ignores the prior scale, and its
VEV step ignores the degrees of freedom). mclust offers no prior for EVE, VEE, VVE and EVV;
neither do we (:data:`PRIOR_MODELS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numerics import (EPS, MstepResult, _check_nk, _compose, _eee_from, _eei_from,
                       _eev_from, _eigh_desc, _evi_from, _fail, _geomean, _vei_iterate,
                       _vev_iterate, _vvv_from, map_single)
from .registry import get_model, model_names

__all__ = ["Prior", "PriorControl", "PRIOR_MODELS", "default_prior", "prior_control",
           "resolve_prior", "map_mstep", "map_single"]

_CLASSES = ("X", "XII", "XXI", "XXX")


def __getattr__(name):
    # PRIOR_MODELS is read from the registry when asked for: the models register after
    # this module is imported (their MAP steps are defined here).
    if name == "PRIOR_MODELS":
        return frozenset(m for m in model_names() if get_model(m).has_prior)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Prior:
    """Resolved hyperparameters of mclust's conjugate prior.

    Attributes
    ----------
    shrinkage : float
        kappa_P, the prior's weight on the mean (0 = no shrinkage of the means).
    mean : ndarray of shape (d,)
        mu_P.
    dof : float
        nu_P.
    scale : float or ndarray of shape (d, d)
        Lambda_P: a scalar for univariate, spherical and diagonal models, a matrix for the
        ellipsoidal ones.
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: float | np.ndarray


@dataclass(frozen=True)
class PriorControl:
    """mclust's ``priorControl()``: overrides for :func:`default_prior`, resolved per fit.

    Any field left as None takes mclust's default for the data, G and model at hand.
    """

    shrinkage: float | None = None
    mean: np.ndarray | None = None
    dof: float | None = None
    scale: float | np.ndarray | None = None

    def resolve(self, X, G: int, model_name: str) -> Prior:
        """The :class:`Prior` for data ``X``, ``G`` components and ``model_name``."""
        return default_prior(X, G, model_name, shrinkage=self.shrinkage, mean=self.mean,
                             dof=self.dof, scale=self.scale)


def prior_control(shrinkage=None, mean=None, dof=None, scale=None) -> PriorControl:
    """mclust's ``priorControl()``: the conjugate prior with its default hyperparameters.

    Examples
    --------
    >>> from gaussmix import prior_control
    >>> prior_control(shrinkage=0.05).shrinkage
    0.05
    """
    return PriorControl(shrinkage=shrinkage, mean=mean, dof=dof, scale=scale)


def default_prior(X, G: int, model_name: str, shrinkage=None, mean=None, dof=None,
                  scale=None) -> Prior:
    """mclust's ``defaultPrior(data, G, modelName, ...)``.

    Parameters
    ----------
    X : array-like of shape (n, d) or (n,), or SuffStats
        The data, or one component's statistics of all of it (a Source's pass).
    G : int
        Number of components (the default scale shrinks with G).
    model_name : str
        mclust model name, or one of the single-component classes X, XII, XXI, XXX.
    shrinkage, mean, dof, scale : optional
        Overrides. A shrinkage of 0 (or NaN) means no shrinkage of the means.
    """
    data = _DataMoments(X)
    n, d = data.n, data.d
    if shrinkage is None:
        kappa = 0.01
    elif np.isnan(shrinkage) or not shrinkage:
        kappa = 0.0
    elif shrinkage < 0:
        raise ValueError("negative value given for shrinkage")
    else:
        kappa = float(shrinkage)
    if mean is None:
        mu = data.mean()
    else:
        mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        if np.any(np.isnan(mu)):
            if kappa:
                raise ValueError("positive shrinkage with no prior mean specified")
            mu = data.mean()
        elif not kappa:
            raise ValueError("prior mean specified but not shrinkage")
    if model_name in _CLASSES:
        cls = model_name
    else:
        try:
            cls = get_model(model_name).single_class
        except ValueError:
            raise ValueError(f"no default prior for model {model_name!r}") from None
    if cls == "X":
        nu = 3.0
        lam = float(data.var()[0]) / G**2 if scale is None else float(scale)
    elif cls in ("XII", "XXI"):
        nu = d + 2.0
        if scale is None:
            fac = (1.0 / G) ** (2.0 / d)
            lam = fac * float(data.var().sum()) / d
        else:
            lam = float(scale)
    else:
        nu = d + 2.0
        if scale is None:
            fac = (1.0 / G) ** (2.0 / d)
            if n > d:
                lam = fac * data.cov()
            else:
                lam = fac * np.diag(data.var())
        else:
            lam = np.asarray(scale, dtype=np.float64).reshape(d, d)
    if dof is not None:
        nu = float(dof)
    return Prior(shrinkage=kappa, mean=mu, dof=nu, scale=lam)


class _DataMoments:
    """What the default prior reads of the data: from the rows, or from one component's
    statistics of all of them (``nk``, ``means``, ``scatter``), as a Source's pass
    leaves them."""

    def __init__(self, X):
        if hasattr(X, "scatter") and hasattr(X, "nk"):
            self.rows = None
            self.n, self.d = float(X.nk[0]), X.means.shape[1]
            self._mean, self._scatter = X.means[0], np.asarray(X.scatter[0])
        else:
            X = np.asarray(X, dtype=np.float64)
            self.rows = X.reshape(X.shape[0], -1)
            self.n, self.d = self.rows.shape

    def mean(self):
        return self.rows.mean(axis=0) if self.rows is not None else self._mean.copy()

    def var(self):
        if self.rows is not None:
            return np.var(self.rows, axis=0, ddof=1)
        return np.diag(self._scatter) / (self.n - 1)

    def cov(self):
        if self.rows is not None:
            return np.cov(self.rows, rowvar=False, ddof=1).reshape(self.d, self.d)
        return self._scatter / (self.n - 1)


def resolve_prior(prior, X, G: int, model_name: str) -> Prior:
    """A :class:`Prior` from a Prior (unchanged), a PriorControl or True (the default)."""
    if isinstance(prior, Prior):
        return prior
    if prior is True:
        prior = PriorControl()
    if isinstance(prior, PriorControl):
        return prior.resolve(X, G, model_name)
    raise TypeError("prior must be a Prior, a PriorControl or True")


# ---------------------------------------------------------------------------------------
# The MAP M-steps, one per model: (nk, xbar, scatter, prior, state) -> (means, MstepResult).
# ``scatter`` is about ``xbar`` in the model's stats layout; mclust's quirks are kept.

def _shrunk(nk, xbar, prior: Prior):
    """MAP means and the shrinkage terms kappa n_k / (kappa + n_k) (xbar_k - mu_P)."""
    _check_nk(nk)
    kappa = prior.shrinkage
    mu_p = np.broadcast_to(prior.mean, xbar.shape)
    means = (nk[:, None] * xbar + kappa * mu_p) / (nk + kappa)[:, None]
    coef = kappa * nk / (kappa + nk)
    delta = xbar - mu_p
    return means, coef, delta


def _scalar_scale(prior: Prior) -> float:
    lam = prior.scale
    return float(np.asarray(lam).reshape(-1)[0]) if np.ndim(lam) else float(lam)


def _ellipsoidal_terms(nk, xbar, prior: Prior):
    """MAP means, the prior scale as a (d, d) matrix and the shrinkage outer products."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    d = xbar.shape[1]
    lam = np.asarray(prior.scale, dtype=np.float64).reshape(d, d)
    outer = coef[:, None, None] * delta[:, :, None] * delta[:, None, :]
    return means, lam, outer


def map_e(nk, xbar, scatter, prior: Prior, state=None):
    """Univariate, equal variance."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    sq = coef[:, None] * delta**2
    K = xbar.shape[0]
    denom = prior.dof + nk.sum() + K + 2.0
    sigsq = (_scalar_scale(prior) + scatter.sum() + sq.sum()) / denom
    if not sigsq > EPS:
        _fail("sigma-squared falls below threshold")
    return means, MstepResult(np.full(K, sigsq))


def map_v(nk, xbar, scatter, prior: Prior, state=None):
    """Univariate, varying variance."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    sq = coef[:, None] * delta**2
    sigsq = (_scalar_scale(prior) + scatter[:, 0] + sq[:, 0]) / (prior.dof + nk + 3.0)
    if not sigsq.min() > EPS:
        _fail("sigma-squared falls below threshold")
    return means, MstepResult(sigsq)


def map_eii(nk, xbar, scatter, prior: Prior, state=None):
    """Spherical, equal volume (mclust's meeiip leaves out the prior scale)."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    sq = coef[:, None] * delta**2
    K, d = xbar.shape
    sigsq = (scatter.sum() + sq.sum()) / (prior.dof + (nk.sum() + K) * d + 2.0)
    if not sigsq > EPS:
        _fail("sigma-squared falls below threshold")
    return means, MstepResult(np.full(K, sigsq))


def map_vii(nk, xbar, scatter, prior: Prior, state=None):
    """Spherical, varying volume."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    sq = coef[:, None] * delta**2
    d = xbar.shape[1]
    denom = prior.dof + nk * d + 2.0 + (d if prior.shrinkage > 0 else 0.0)
    sigsq = (_scalar_scale(prior) + scatter.sum(axis=1) + sq.sum(axis=1)) / denom
    if not sigsq.min() > EPS:
        _fail("sigma-squared falls below threshold")
    return means, MstepResult(sigsq)


def map_eei(nk, xbar, scatter, prior: Prior, state=None):
    """Diagonal, equal volume and shape (mclust's meeeip does not shrink the means)."""
    _, coef, delta = _shrunk(nk, xbar, prior)
    sq = coef[:, None] * delta**2
    total = _scalar_scale(prior) + scatter.sum(axis=0) + sq.sum(axis=0)
    kappa_pos = prior.shrinkage > 0
    denom = prior.dof + 1.0 + (1.0 if kappa_pos else 0.0) + nk.sum()
    return xbar, _eei_from(total, denom, xbar.shape[0])


def map_vei(nk, xbar, scatter, prior: Prior, state=None):
    """Diagonal, varying volume, equal shape: iterative, warm-started."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    w = _scalar_scale(prior) + scatter + coef[:, None] * delta**2
    denom = xbar.shape[1] * nk + prior.dof + 2.0 + (1.0 if prior.shrinkage > 0 else 0.0)
    shape, scale = _vei_iterate(w, denom, state)
    return means, MstepResult(scale[:, None] * shape[None, :], (shape, scale))


def map_evi(nk, xbar, scatter, prior: Prior, state=None):
    """Diagonal, equal volume, varying shape."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    diag = _scalar_scale(prior) + scatter + coef[:, None] * delta**2
    denom = prior.dof + 1.0 + nk.sum() + (1.0 if prior.shrinkage > 0 else 0.0)
    return means, _evi_from(diag, denom)


def map_vvi(nk, xbar, scatter, prior: Prior, state=None):
    """Diagonal, varying volume and shape."""
    means, coef, delta = _shrunk(nk, xbar, prior)
    diag = _scalar_scale(prior) + scatter + coef[:, None] * delta**2
    g = _geomean(diag, axis=1)
    if not (diag.min() > EPS and g.min() > EPS):
        _fail("singular covariance")
    scale = g / (nk + prior.dof + 2.0 + (1.0 if prior.shrinkage > 0 else 0.0))
    shape = diag / g[:, None]
    if not (scale.min() > EPS and shape.min() > EPS):
        _fail("singular covariance")
    return means, MstepResult(scale[:, None] * shape)


def map_eee(nk, xbar, scatter, prior: Prior, state=None):
    """Ellipsoidal, equal volume, shape and orientation."""
    means, lam, outer = _ellipsoidal_terms(nk, xbar, prior)
    K, d = xbar.shape
    total = lam + scatter + outer.sum(axis=0)
    kappa_pos = prior.shrinkage > 0
    denom = prior.dof + d + 1.0 + (K if kappa_pos else 0.0) + nk.sum()
    return means, _eee_from(total / denom)


def map_vvv(nk, xbar, scatter, prior: Prior, state=None):
    """Ellipsoidal, varying volume, shape and orientation."""
    means, lam, outer = _ellipsoidal_terms(nk, xbar, prior)
    denom = prior.dof + nk + xbar.shape[1] + 2.0
    return means, _vvv_from((lam + scatter + outer) / denom[:, None, None])


def map_eev(nk, xbar, scatter, prior: Prior, state=None):
    """Ellipsoidal, equal volume and shape, varying orientation."""
    means, lam, outer = _ellipsoidal_terms(nk, xbar, prior)
    omega, vectors = _eigh_desc(lam[None] + scatter + outer)
    kappa_pos = prior.shrinkage > 0
    denom = prior.dof + xbar.shape[1] + 1.0 + (1.0 if kappa_pos else 0.0) + nk.sum()
    return means, _eev_from(omega, vectors, denom)


def map_vev(nk, xbar, scatter, prior: Prior, state=None):
    """Ellipsoidal, equal shape, varying volume and orientation.

    mclust's mevevp iterates as without the prior, on the posterior scatters, and starts
    the scales at det^(1/d) / n_k (it ignores the degrees of freedom).
    """
    means, lam, outer = _ellipsoidal_terms(nk, xbar, prior)
    omega, vectors = _eigh_desc(lam[None] + scatter + outer)
    shape, scale = _vev_iterate(omega, nk, state, lambda g: g / nk)
    return means, MstepResult(_compose(scale, shape[None, :], vectors), (shape, scale))


def map_mstep(name: str, nk, xbar, scatter, prior: Prior, state=None):
    """mclust's MAP M-step for model ``name`` (the model's ``map_mstep``).

    Parameters
    ----------
    name : str
        A model with a prior (see :data:`PRIOR_MODELS`).
    nk : ndarray (K,)
    xbar : ndarray (K, d)
        Weighted means of the components.
    scatter : ndarray
        Scatter about ``xbar`` in the model's layout (its ``stats_kind``).
    prior : Prior
    state : object, optional
        Warm start of the iterative steps (VEI, VEV).

    Returns
    -------
    (means, MstepResult)
    """
    model = get_model(name)
    if model.map_mstep is None:
        raise ValueError(f"model {name} is not available with a prior (as in mclust)")
    return model.map_mstep(nk, xbar, scatter, prior, state)
