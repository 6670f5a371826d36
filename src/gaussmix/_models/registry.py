"""Covariance models: one object each, holding every fact of the model, found by name.

A :class:`CovarianceModel` knows which E-step family reads its covariances, which scatter
layout its M-step needs, how many free parameters it has, its M-steps (mclust's maximum
likelihood one, the MAP one with mclust's prior, scikit-learn's closed form) and how mclust
names and summarises it. mclust's names are canonical; scikit-learn's are aliases
(full = VVV, tied = EEE, diag = VVI, spherical = VII).

This module holds no model: the model modules build theirs and :func:`register` them
(importing :mod:`gaussmix._models` imports them all). A model defined anywhere, even in
user code, needs one ``register(CovarianceModel(...))`` call to work in
``GaussianMixture(covariance_type=name)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from .._errors import ILL_DEFINED_COVARIANCE, DegenerateCovarianceError, FitError
from .._names import ALIASES, case_hint, covariance_names
from .numerics import RTEPS, MstepResult, single_class_fit

if TYPE_CHECKING:  # annotations only: the models package does not import the engine
    from .._engine.stats import SuffStats

__all__ = ["CovarianceModel", "MstepResult", "ALIASES", "ACCEPTED_NAMES", "register",
           "unregister", "get_model", "model_names"]

FAMILIES = ("full", "tied", "diag", "spherical")
STATS_KINDS = ("full", "tied", "diag")
# The closed-form class of one component (mclust's X models), by E-step family.
_SINGLE_CLASS = {"spherical": "XII", "diag": "XXI", "tied": "XXX", "full": "XXX"}
# A (d, d) covariance in each family's layout, for one component.
_ONE_COMPONENT_LAYOUT = {
    "spherical": lambda c: c[:1, 0], "diag": lambda c: np.diag(c)[None, :],
    "tied": lambda c: c, "full": lambda c: c[None],
}


@dataclass(frozen=True)
class CovarianceModel:
    """A covariance parametrisation of a Gaussian mixture, with every fact about it.

    Attributes
    ----------
    name : str
        mclust's name, e.g. ``"VVV"``.
    family : {"full", "tied", "diag", "spherical"}
        Layout of the covariances and the E-step kernel that reads them.
    stats_kind : {"full", "tied", "diag"}
        Scatter layout the M-step reads (see :mod:`gaussmix._engine.stats`).
    n_cov_parameters : callable (K, d) -> int
        Free parameters in the covariances of K components in d dimensions (mclust's
        ``nVarParams``).
    description : str
        What the constraints are, in words.
    mclust_type : str
        mclust's wording of the model in ``summary(Mclust(...))``.
    single_class : {"X", "XII", "XXI", "XXX"}
        The closed-form class the model falls into with one component; by default the
        family's ("X" for a univariate model).
    mstep : callable (nk, means, scatter, state) -> MstepResult, optional
        mclust's maximum-likelihood M-step: covariances in the family layout from the
        scatter in the ``stats_kind`` layout, and the warm start of the next one. It
        raises a :class:`~gaussmix._errors.FitError` where mclust reports NA.
    map_mstep : callable (nk, xbar, scatter, prior, state) -> (means, MstepResult), optional
        mclust's MAP M-step with its conjugate prior; None where mclust has none.
    state_from_covariances : callable (covariances) -> state, optional
        Warm start of an iterative ``mstep`` from plain covariances (None: none needed).
    sklearn_covariances : callable (stats, nk, reg_covar, previous) -> covariances, optional
        scikit-learn's closed form with ``reg_covar``; where set, :meth:`estimate` uses it.
    univariate : bool
        A model for one-dimensional data only (mclust's E and V).
    fast_code : int, optional
        The model's code in the compiled mclust EM (:mod:`gaussmix._mclust.fast_em`), or
        None if it has no compiled code.
    """

    name: str
    family: str
    stats_kind: str
    n_cov_parameters: Callable[[int, int], int]
    description: str = ""
    mclust_type: str = ""
    single_class: str = ""
    mstep: Optional[Callable[..., MstepResult]] = None
    map_mstep: Optional[Callable[..., tuple]] = None
    state_from_covariances: Optional[Callable[[np.ndarray], object]] = None
    sklearn_covariances: Optional[Callable[..., np.ndarray]] = None
    univariate: bool = False
    fast_code: Optional[int] = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.stats_kind not in STATS_KINDS:
            raise ValueError(f"stats_kind must be one of {STATS_KINDS}, got "
                             f"{self.stats_kind!r}")
        if self.mstep is None and self.sklearn_covariances is None:
            raise ValueError(f"model {self.name!r} needs an mstep or sklearn_covariances")
        if not self.single_class:
            default = "X" if self.univariate else _SINGLE_CLASS[self.family]
            object.__setattr__(self, "single_class", default)

    @property
    def has_prior(self) -> bool:
        """Whether the model has a MAP M-step (mclust's prior)."""
        return self.map_mstep is not None

    @property
    def is_diagonal(self) -> bool:
        """Spherical or diagonal covariances (all mclust fits with no more rows than dims)."""
        return self.family in ("spherical", "diag")

    def scatter_from(self, stats: SuffStats) -> np.ndarray:
        """The scatter in the layout :attr:`mstep` reads, converted from a richer layout."""
        need = self.stats_kind
        if stats.kind == need:
            return stats.scatter
        if need == "diag" and stats.kind == "full":
            return np.diagonal(stats.scatter, axis1=1, axis2=2).copy()
        if need == "tied" and stats.kind == "full":
            return stats.scatter.sum(axis=0)
        raise ValueError(f"model {self.name} needs {need!r} statistics, got {stats.kind!r}")

    def estimate(self, stats: SuffStats, nk, reg_covar, previous_covariances=None):
        """The covariance M-step with scikit-learn's semantics (``reg_covar``).

        scikit-learn's closed form where the model has one; otherwise mclust's M-step on
        the regularised scatter ``W_k + n_k reg I`` (so the result keeps the model's
        constraint, which adding ``reg`` to Sigma_k afterwards would not), warm-started
        from ``previous_covariances``.

        Parameters
        ----------
        stats : SuffStats
        nk : ndarray of shape (K,)
            The (guarded) component counts.
        reg_covar : float
        previous_covariances : ndarray, optional
            The current covariances, for the iterative M-steps.

        Returns
        -------
        ndarray
            Covariances in the family layout.

        Raises
        ------
        ValueError
            scikit-learn's ill-defined covariance message, where the M-step fails.
        """
        if self.sklearn_covariances is not None:
            return self.sklearn_covariances(stats, nk, reg_covar, previous_covariances)
        d = stats.means.shape[1]
        if self.univariate and d != 1:
            raise ValueError(f"covariance model {self.name!r} is for one-dimensional data")
        scatter = self.scatter_from(stats)
        if scatter.ndim == 3:
            scatter = scatter + (nk * reg_covar)[:, None, None] * np.eye(d)
        elif self.stats_kind == "tied":
            scatter = scatter + nk.sum() * reg_covar * np.eye(d)
        else:
            scatter = scatter + (nk * reg_covar)[:, None]
        state = None
        if previous_covariances is not None and self.state_from_covariances is not None:
            state = self.state_from_covariances(previous_covariances)
        nk_safe = np.maximum(nk, 2 * RTEPS)
        try:
            return self.mstep(nk_safe, stats.means, scatter, state).covariances
        except FitError as exc:
            raise DegenerateCovarianceError(ILL_DEFINED_COVARIANCE) from exc

    def one_component_class(self, d: int) -> str:
        """The closed-form class of one component in ``d`` dimensions ("X" if d = 1)."""
        return "X" if d == 1 else self.single_class

    def single(self, n: int, mean, scatter, prior=None):
        """One component in closed form, as mclust fits G = 1 (``mvn``).

        Parameters
        ----------
        n : int
            Number of rows.
        mean : ndarray of shape (d,)
            Their mean.
        scatter : ndarray of shape (d, d)
            Their scatter about ``mean``.
        prior : gaussmix._models.prior.Prior, optional
            A resolved prior (for the class, see :meth:`one_component_class`): mclust's
            MAP estimate.

        Returns
        -------
        (ndarray of shape (d,), ndarray)
            The mean and the covariances in the family layout, for one component.

        Raises
        ------
        DegenerateCovarianceError
            The covariance is singular.
        """
        cls = self.one_component_class(mean.shape[0])
        mean, cov = single_class_fit(cls, n, mean, scatter, prior)
        return mean, _ONE_COMPONENT_LAYOUT[self.family](cov)


_REGISTRY: dict[str, CovarianceModel] = {}
# Every name get_model accepts, kept up to date in place (a live set for validators).
ACCEPTED_NAMES: set[str] = set(ALIASES)


def register(model: CovarianceModel) -> CovarianceModel:
    """Add a model to the registry (overwrites one of the same name).

    Returns the model, so ``register`` can wrap its construction.
    """
    if model.name in ALIASES:
        raise ValueError(f"{model.name!r} is an alias of {ALIASES[model.name]!r}")
    _REGISTRY[model.name] = model
    ACCEPTED_NAMES.add(model.name)
    return model


def unregister(name: str) -> CovarianceModel:
    """Remove the model called ``name`` (its canonical name) and return it."""
    model = _REGISTRY.pop(name)
    ACCEPTED_NAMES.discard(name)
    return model


def get_model(name: str) -> CovarianceModel:
    """The model called ``name`` (mclust's name or a scikit-learn alias)."""
    key = ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        known = covariance_names()
        raise ValueError(f"Unknown covariance model {name!r}; use one of "
                         f"{', '.join(known)}.{case_hint(name, known)}") from None


def model_names() -> list[str]:
    """Names of the registered models (canonical names only)."""
    return list(_REGISTRY)
