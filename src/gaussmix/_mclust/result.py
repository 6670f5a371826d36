"""What one mclust fit leaves, the same from the engine's loop and the compiled backend."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .._engine.params import Params, params_from_covariances
from .._engine.stats import SuffStats


@dataclass(frozen=True)
class MclustParams(Params):
    """:class:`~gaussmix._engine.params.Params` plus what mclust's iterative M-steps carry.

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

    @classmethod
    def of(cls, params: Params, model: str, state=None) -> "MclustParams":
        """``params`` with the model's name and its M-step's state."""
        base = {f.name: getattr(params, f.name) for f in fields(Params)}
        return cls(**base, model=model, state=state)

    @classmethod
    def from_covariances(cls, model: str, family: str, weights, means, covariances,
                         state=None) -> "MclustParams":
        """Parameters from covariances (a singular one is a DegenerateCovarianceError)."""
        params = params_from_covariances(weights, means, covariances, family,
                                         f" (model {model})")
        return cls.of(params, model, state)


@dataclass
class MclustFit:
    """One mclust fit (mclust's ``me``; ``mvn`` for one component).

    Attributes
    ----------
    params : MclustParams
        The last parameters (with a noise component, the Gaussian weights sum to
        ``1 - noise_proportion``).
    loglik : float
        Log-likelihood of the data under ``params``.
    n_iter : int
        M-steps run, as mclust counts them (the first one from the start).
    converged : bool
    history : tuple of float
        Log-likelihood after each iteration (the last is ``loglik``); the compiled
        backend keeps the last one only.
    map_loglik : float
        ``sum_i log max_k z_ik`` under ``params``: the ICL is ``BIC + 2 map_loglik``.
    model : str
    stats : SuffStats or None
        Statistics of the final E-step (None from the compiled backend).
    z : ndarray or None
        Responsibilities of the final E-step, where the backend has them anyway.
    """

    params: MclustParams
    loglik: float
    n_iter: int
    converged: bool
    history: tuple
    map_loglik: float
    model: str
    stats: SuffStats | None = None
    z: np.ndarray | None = None

    @property
    def state(self):
        """The M-step's state after the last M-step (a warm start for one more)."""
        return self.params.state

    @property
    def noise_proportion(self) -> float | None:
        """The noise component's proportion; None without a noise component."""
        if self.params.noise_log_density is None:
            return None
        return float(self.params.noise_proportion)


def map_loglik(z) -> float:
    """``sum_i log max_k z_ik`` (0 where that z is 0, as mclust's ICL takes it)."""
    top = np.asarray(z).max(axis=1)
    with np.errstate(divide="ignore"):
        logs = np.where(top > 0, np.log(np.where(top > 0, top, 1.0)), 0.0)
    return float(logs.sum())
