"""The M-step: parameters from sufficient statistics. It never sees data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
          previous: Params | None = None, error_hint: str = "") -> Params:
    """Maximise the expected complete-data log-likelihood given ``stats``."""
    nk = stats.nk + _NK_GUARD
    weights = nk / nk.sum()
    covariances = model.estimate(
        stats, nk, reg_covar, None if previous is None else previous.covariances
    )
    return params_from_covariances(weights, stats.means, covariances, model.family,
                                   error_hint)


@dataclass(frozen=True)
class MStep:
    """The M-step in the loop's slot: ``(SuffStats, state) -> (Params, state)``.

    One adapter, three options: scikit-learn's ``reg_covar`` (counts guarded against
    zero, ``reg_covar`` on every covariance, an ill-defined covariance raised with
    scikit-learn's message), mclust's strict semantics (``strict``: weights ``n_k / n``,
    no regularisation, a vanishing component or singular covariance is a
    :class:`~gaussmix.FitError`) and mclust's conjugate ``prior`` (a MAP step). ``state``
    is what an iterative M-step carries from one iteration to the next.
    """

    model: CovarianceModel
    reg_covar: float = 0.0
    prior: Any = None
    strict: bool = False
    error_hint: str = ""

    def __call__(self, stats: SuffStats, state=None) -> tuple[Params, Any]:
        previous = None if state is None else _Previous(state)
        params = mstep(stats, self.model, self.reg_covar, previous, self.error_hint)
        return params, params.covariances


class _Previous:
    def __init__(self, covariances):
        self.covariances = covariances


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
