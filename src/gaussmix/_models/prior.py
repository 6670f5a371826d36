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

from . import mclust as mm

__all__ = ["Prior", "PriorControl", "PRIOR_MODELS", "default_prior", "prior_control",
           "resolve_prior", "map_mstep", "map_single"]

PRIOR_MODELS = frozenset({"E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI",
                          "EEE", "EEV", "VEV", "VVV"})

_SPHERICAL_DIAG = {"EII", "VII", "XII", "EEI", "EVI", "VEI", "VVI", "XXI"}
_ELLIPSOIDAL = {"EEE", "EVE", "VEE", "VVE", "EEV", "VEV", "EVV", "VVV", "XXX"}


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
    >>> from gaussmix._models.prior import prior_control
    >>> prior_control(shrinkage=0.05).shrinkage
    0.05
    """
    return PriorControl(shrinkage=shrinkage, mean=mean, dof=dof, scale=scale)


def default_prior(X, G: int, model_name: str, shrinkage=None, mean=None, dof=None,
                  scale=None) -> Prior:
    """mclust's ``defaultPrior(data, G, modelName, ...)``.

    Parameters
    ----------
    X : array-like of shape (n, d) or (n,)
    G : int
        Number of components (the default scale shrinks with G).
    model_name : str
        mclust model name, or one of the single-component classes X, XII, XXI, XXX.
    shrinkage, mean, dof, scale : optional
        Overrides. A shrinkage of 0 (or NaN) means no shrinkage of the means.
    """
    X = np.asarray(X, dtype=np.float64)
    Xm = X.reshape(X.shape[0], -1)
    n, d = Xm.shape
    if shrinkage is None:
        kappa = 0.01
    elif np.isnan(shrinkage) or not shrinkage:
        kappa = 0.0
    elif shrinkage < 0:
        raise ValueError("negative value given for shrinkage")
    else:
        kappa = float(shrinkage)
    if mean is None:
        mu = Xm.mean(axis=0)
    else:
        mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        if np.any(np.isnan(mu)):
            if kappa:
                raise ValueError("positive shrinkage with no prior mean specified")
            mu = Xm.mean(axis=0)
        elif not kappa:
            raise ValueError("prior mean specified but not shrinkage")
    if model_name in ("E", "V", "X"):
        nu = 3.0
        lam = float(np.var(Xm[:, 0], ddof=1)) / G**2 if scale is None else float(scale)
    elif model_name in _SPHERICAL_DIAG:
        nu = d + 2.0
        if scale is None:
            fac = (1.0 / G) ** (2.0 / d)
            lam = fac * float(np.var(Xm, axis=0, ddof=1).sum()) / d
        else:
            lam = float(scale)
    elif model_name in _ELLIPSOIDAL:
        nu = d + 2.0
        if scale is None:
            fac = (1.0 / G) ** (2.0 / d)
            if n > d:
                lam = fac * np.cov(Xm, rowvar=False, ddof=1).reshape(d, d)
            else:
                lam = fac * np.diag(np.var(Xm, axis=0, ddof=1))
        else:
            lam = np.asarray(scale, dtype=np.float64).reshape(d, d)
    else:
        raise ValueError(f"no default prior for model {model_name!r}")
    if dof is not None:
        nu = float(dof)
    return Prior(shrinkage=kappa, mean=mu, dof=nu, scale=lam)


def resolve_prior(prior, X, G: int, model_name: str) -> Prior:
    """A :class:`Prior` from a Prior (unchanged), a PriorControl or True (the default)."""
    if isinstance(prior, Prior):
        return prior
    if prior is True:
        prior = PriorControl()
    if isinstance(prior, PriorControl):
        return prior.resolve(X, G, model_name)
    raise TypeError("prior must be a Prior, a PriorControl or True")


def _shrunk(nk, xbar, prior: Prior):
    """MAP means and the shrinkage terms kappa n_k / (kappa + n_k) (xbar_k - mu_P)."""
    kappa = prior.shrinkage
    mu_p = np.broadcast_to(prior.mean, xbar.shape)
    means = (nk[:, None] * xbar + kappa * mu_p) / (nk + kappa)[:, None]
    coef = kappa * nk / (kappa + nk)
    delta = xbar - mu_p
    return means, coef, delta


def map_mstep(name: str, nk, xbar, scatter, prior: Prior, state=None):
    """mclust's MAP M-step for model ``name``.

    Parameters
    ----------
    name : str
        One of :data:`PRIOR_MODELS`.
    nk : ndarray (K,)
    xbar : ndarray (K, d)
        Weighted means of the components.
    scatter : ndarray
        Scatter about ``xbar`` in the model's layout (see ``model_stats_kind``).
    prior : Prior
    state : object, optional
        Warm start of the iterative steps (VEI, VEV).

    Returns
    -------
    (means, MstepResult)
    """
    if name not in PRIOR_MODELS:
        raise ValueError(f"model {name} is not available with a prior (as in mclust)")
    mm._check_nk(nk)
    means, coef, delta = _shrunk(nk, xbar, prior)
    K, d = xbar.shape
    nu, kappa_pos = prior.dof, prior.shrinkage > 0
    n = nk.sum()
    lam = prior.scale
    sq = coef[:, None] * delta**2  # (K, d): diagonal of the shrinkage terms
    if name in ("E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI"):
        lam = float(np.asarray(lam).reshape(-1)[0]) if np.ndim(lam) else float(lam)
    if name == "E":
        sigsq = (lam + scatter.sum() + sq.sum()) / (nu + n + K + 2.0)
        if not sigsq > mm.EPS:
            mm._fail("sigma-squared falls below threshold")
        return means, mm.MstepResult(np.full(K, sigsq))
    if name == "V":
        sigsq = (lam + scatter[:, 0] + sq[:, 0]) / (nu + nk + 3.0)
        if not sigsq.min() > mm.EPS:
            mm._fail("sigma-squared falls below threshold")
        return means, mm.MstepResult(sigsq)
    if name == "EII":  # mclust's meeiip leaves out the prior scale
        sigsq = (scatter.sum() + sq.sum()) / (nu + (n + K) * d + 2.0)
        if not sigsq > mm.EPS:
            mm._fail("sigma-squared falls below threshold")
        return means, mm.MstepResult(np.full(K, sigsq))
    if name == "VII":
        denom = nu + nk * d + 2.0 + (d if kappa_pos else 0.0)
        sigsq = (lam + scatter.sum(axis=1) + sq.sum(axis=1)) / denom
        if not sigsq.min() > mm.EPS:
            mm._fail("sigma-squared falls below threshold")
        return means, mm.MstepResult(sigsq)
    if name == "EEI":  # mclust's meeeip does not shrink the means, only the scatter
        total = lam + scatter.sum(axis=0) + sq.sum(axis=0)
        return xbar, mm._eei_from(total, nu + 1.0 + (1.0 if kappa_pos else 0.0) + n, K)
    if name == "VEI":
        w = lam + scatter + sq
        denom = d * nk + nu + 2.0 + (1.0 if kappa_pos else 0.0)
        shape, scale = mm._vei_iterate(w, denom, state)
        return means, mm.MstepResult(scale[:, None] * shape[None, :], (shape, scale))
    if name == "EVI":
        return means, mm._evi_from(lam + scatter + sq, nu + 1.0 + n + (1.0 if kappa_pos else 0.0))
    if name == "VVI":
        diag = lam + scatter + sq
        g = mm._geomean(diag, axis=1)
        if not (diag.min() > mm.EPS and g.min() > mm.EPS):
            mm._fail("singular covariance")
        scale = g / (nk + nu + 2.0 + (1.0 if kappa_pos else 0.0))
        shape = diag / g[:, None]
        if not (scale.min() > mm.EPS and shape.min() > mm.EPS):
            mm._fail("singular covariance")
        return means, mm.MstepResult(scale[:, None] * shape)
    lam = np.asarray(lam, dtype=np.float64).reshape(d, d)
    outer = coef[:, None, None] * delta[:, :, None] * delta[:, None, :]
    if name == "EEE":
        total = lam + scatter + outer.sum(axis=0)
        return means, mm._eee_from(total / (nu + d + 1.0 + (K if kappa_pos else 0.0) + n))
    if name == "VVV":
        denom = nu + nk + d + 2.0
        return means, mm._vvv_from((lam + scatter + outer) / denom[:, None, None])
    post = lam[None] + scatter + outer
    omega, vectors = mm._eigh_desc(post)
    if name == "EEV":
        return means, mm._eev_from(omega, vectors, nu + d + 1.0 + (1.0 if kappa_pos else 0.0) + n)
    # VEV: mclust's mevevp iterates as without the prior, on the posterior scatters, and
    # starts the scales at det^(1/d) / n_k.
    shape, scale = mm._vev_iterate(omega, nk, state, lambda g: g / nk)
    return means, mm.MstepResult(mm._compose(scale, shape[None, :], vectors), (shape, scale))


def map_single(cls: str, n: int, xbar, scatter, prior: Prior):
    """mclust's MAP estimate for one component (mvnXp, mnxiip, mnxxip, mnxxxp).

    Returns the mean (d,) and the covariance as a (d, d) matrix.
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
    return mean, mm._symmetrise(post / (prior.dof + n + d + 1.0 + kappa_pos))
