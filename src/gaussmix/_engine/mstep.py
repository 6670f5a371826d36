"""The M-step: parameters from sufficient statistics. It never sees data."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._errors import (
    ILL_DEFINED_COVARIANCE,
    DegenerateCovarianceError,
    VanishingComponentError,
)
from .._models.numerics import RTEPS
from .._models.registry import CovarianceModel
from .parallel import with_single_threaded_blas
from .params import Params, params_from_covariances
from .stats import SuffStats

# Guards a component count of zero, as scikit-learn does, so an empty component
# gives a finite weight and mean instead of 0 / 0.
_NK_GUARD = 10 * np.finfo(np.float64).eps

# A component whose share of the total weight falls below this is empty.
EMPTY_SHARE = 1e-10


# Small per-component factorisations: OpenBLAS's threads cost more than the work and
# stall outright when the other core is busy (253 ms vs 2 ms per M-step on W3).
@with_single_threaded_blas
def mstep(stats: SuffStats, model: CovarianceModel, reg_covar: float,
          previous_covariances=None, error_hint: str = "") -> Params:
    """Maximise the expected complete-data log-likelihood given ``stats``."""
    nk = stats.nk + _NK_GUARD
    weights = nk / nk.sum()
    covariances = model.estimate(
        stats, nk, reg_covar, previous_covariances
    )
    return params_from_covariances(weights, stats.means, covariances, model.family,
                                   error_hint)


@dataclass(frozen=True)
class MStep:
    """The M-step in the loop's slot: ``(SuffStats, state) -> (Params, state)``.

    One adapter, three options of it:

    * ``reg_covar`` (scikit-learn's semantics, the default): counts guarded against
      zero, ``reg_covar`` on every covariance, an ill-defined covariance raised with
      scikit-learn's message; ``state`` is the current covariances.
    * ``strict`` (mclust's semantics): weights ``n_k / n``, no regularisation, one
      component in closed form (mclust's ``mvn``); a vanishing component or a singular
      covariance is a :class:`~gaussmix.FitError` (mclust's NA); ``state`` is what the
      model's iterative M-step carries over.
    * ``prior`` (with ``strict``): mclust's MAP step with its conjugate prior (resolved).

    With ``noise_log_density`` the parameters carry mclust's uniform noise component,
    its proportion the noise share of the statistics.
    """

    model: CovarianceModel
    reg_covar: float = 0.0
    prior: Any = None
    strict: bool = False
    error_hint: str = ""
    noise_log_density: float | None = None
    # strict: one component in closed form, as mclust's me (its mstep does not).
    closed_form_single: bool = True

    def __call__(self, stats: SuffStats, state=None) -> tuple[Params, Any]:
        stats = per_unit_row_weight(stats)
        # Statistics that overflowed (data at a scale near 1e160 and beyond, whose
        # squares exceed the floats) have no covariance to estimate: a typed failure,
        # not a LinAlgError from deep in a factorisation.
        if not (np.all(np.isfinite(stats.means)) and np.all(np.isfinite(stats.scatter))):
            raise DegenerateCovarianceError(
                ILL_DEFINED_COVARIANCE + self.error_hint + " (the covariances overflow "
                "the floating-point range at the data's scale: rescale the data)")
        try:
            if not self.strict:
                params = mstep(stats, self.model, self.reg_covar, state, self.error_hint)
                return params, params.covariances
            return self._strict(stats, state)
        except np.linalg.LinAlgError as exc:  # an eigen- or Cholesky step failed
            raise DegenerateCovarianceError(
                ILL_DEFINED_COVARIANCE + self.error_hint + f" ({exc})") from exc

    @with_single_threaded_blas
    def _strict(self, stats: SuffStats, state):
        model, prior = self.model, self.prior
        nk = np.asarray(stats.nk, dtype=np.float64)
        noise = self.noise_log_density is not None
        total = stats.weight if stats.weight > 0 else nk.sum() + stats.noise_nk
        if nk.size == 1 and not noise and self.closed_form_single:
            # mclust's mvn: the model's one-component class in closed form.
            if stats.kind != "full":
                raise ValueError("one component in closed form needs 'full' statistics")
            mean, covariances = model.single(nk[0], stats.means[0], stats.scatter[0], prior)
            means, state = np.asarray(mean, dtype=np.float64)[None], None
        else:
            if noise and not np.all(nk > RTEPS):
                raise VanishingComponentError("a component vanished")
            scatter = model.scatter_from(stats)
            if prior is None:
                means, result = stats.means, model.mstep(nk, stats.means, scatter, state)
            elif model.map_mstep is None:
                raise ValueError(f"a conjugate prior is not available for model "
                                 f"{model.name} (as in mclust); leave it out or drop "
                                 "the prior.")
            else:
                means, result = model.map_mstep(nk, stats.means, scatter, prior, state)
            covariances, state = result.covariances, result.state
        params = params_from_covariances(nk / total, means, covariances, model.family,
                                         f" (model {model.name})")
        if noise:
            params = replace(params, noise_log_density=self.noise_log_density,
                             noise_proportion=float(stats.noise_nk / total))
        return params, state


def per_unit_row_weight(stats: SuffStats) -> SuffStats:
    """The statistics rescaled (by a power of two, exactly) so that an average row
    weighs about 1: the M-steps' guards on the counts (scikit-learn's 10 eps, mclust's
    sqrt(eps)) are then relative to the data's weight, and a common scale of the row
    weights cannot change the fit. Unit weights are left as they are."""
    if not (stats.weight > 0 and stats.n_rows > 0):
        return stats
    exponent = round(math.log2(stats.n_rows / stats.weight))
    if exponent == 0:
        return stats
    c = math.ldexp(1.0, exponent)
    return replace(stats, nk=stats.nk * c, scatter=stats.scatter * c,
                   weight=stats.weight * c, loglik=stats.loglik * c,
                   noise_nk=stats.noise_nk * c, map_loglik=stats.map_loglik * c)


def reseed_empty(stats: SuffStats) -> tuple[SuffStats, list[int]]:
    """Re-seed one empty component at the row the mixture explains worst.

    Returns the (possibly) changed statistics and the re-seeded component indices. The
    new component carries one average row's weight and the pooled within-component
    covariance, so the next E-step gives it the rows near the badly explained point.
    """
    empty = np.flatnonzero(stats.nk <= EMPTY_SHARE * stats.weight)
    if empty.size == 0 or stats.worst_row is None or empty.size == stats.nk.size:
        return stats, []
    k = int(empty[0])
    row_weight = stats.weight / max(stats.n_rows, 1)
    occupied = stats.nk.sum()
    if stats.kind == "tied":
        pooled = np.zeros_like(stats.scatter)  # the shared scatter is unchanged
    else:
        pooled = stats.scatter.sum(axis=0) / occupied * row_weight
    return stats.with_component(k, row_weight, stats.worst_row, pooled), [k]
