"""The EM loop: the one place that iterates.

It alternates a pass (any function that turns parameters into summed statistics: a loop
over chunks, a Dask reduction, a GPU kernel) with the M-step, and owns convergence, the
iteration budget and progress callbacks.

Convergence follows scikit-learn so that fits agree iteration for iteration: iteration
``t`` runs the E-step on the parameters of step ``t - 1`` and the M-step that gives the
parameters of step ``t``; it stops when the mean log-likelihood changed by less than
``tol`` between the last two E-steps. A final E-step then measures the returned
parameters, so the reported log-likelihood is that of the returned parameters (not one
M-step behind, as scikit-learn's ``lower_bound_`` is).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._models.registry import CovarianceModel
from .mstep import mstep, reseed_empty
from .params import Params
from .stats import SuffStats, empty_stats
from .estep import estep_chunk


class EmptyComponentWarning(UserWarning):
    """A component lost all its weight during EM and was re-seeded."""


@dataclass
class EMResult:
    """What one EM run leaves."""

    params: Params
    stats: SuffStats  # statistics of the final E-step, under ``params``
    n_iter: int
    converged: bool
    log_likelihood: float  # mean log-likelihood of ``params``
    history: list[float] = field(default_factory=list)  # after each iteration
    previous_log_likelihood: float = -np.inf  # before the last M-step


def sum_stats(source, params: Params, kind: str) -> SuffStats:
    """One E-step pass over every chunk of ``source``, statistics summed."""
    total = empty_stats(params.n_components, params.n_features, kind)
    for X, w in source.chunks():
        total = total + estep_chunk(X, w, params, kind)
    return total


def run_em(
    pass_fn: Callable[[Params], SuffStats],
    params: Params,
    model: CovarianceModel,
    *,
    reg_covar: float,
    tol: float,
    max_iter: int,
    previous_log_likelihood: float = -np.inf,
    on_iteration: Callable[[int, float, float], None] | None = None,
    error_hint: str = "",
) -> EMResult:
    """Run EM from ``params``.

    Parameters
    ----------
    pass_fn : callable Params -> SuffStats
        Produces the summed statistics of the whole data under the given parameters.
    params : Params
        Starting parameters.
    model : CovarianceModel
    reg_covar, tol, max_iter :
        As in scikit-learn's GaussianMixture.
    previous_log_likelihood : float
        Mean log-likelihood before ``params`` (for warm starts); -inf for a fresh start.
    on_iteration : callable (n_iter, log_likelihood, change) -> None, optional
        Called after each iteration with the mean log-likelihood of the E-step of that
        iteration and its change.

    Returns
    -------
    EMResult
    """
    stats = pass_fn(params)
    history: list[float] = []
    prev = previous_log_likelihood
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        current = stats.mean_loglik
        if n_iter > 1:
            history.append(current)
        seeded, reseeded = reseed_empty(stats)
        if reseeded:
            warnings.warn(
                f"Component {reseeded[0]} became empty at iteration {n_iter}; it was "
                "re-seeded at the sample the mixture explained worst. Consider fewer "
                "components.",
                EmptyComponentWarning,
                stacklevel=5,  # run_em < _fit < fit context < fit < caller
            )
            current = -np.inf  # the likelihood will jump: never call this converged
        params = mstep(seeded, model, reg_covar, previous=params, error_hint=error_hint)
        change = current - prev
        if on_iteration is not None:
            on_iteration(n_iter, current, change)
        prev = current
        # An undefined change (inf - inf, e.g. a fresh start) is not convergence.
        if np.isfinite(change) and abs(change) < tol:
            converged = True
            stats = pass_fn(params)
            break
        stats = pass_fn(params)
    final = stats.mean_loglik
    if max_iter > 0:
        history.append(final)
    return EMResult(
        params=params,
        stats=stats,
        n_iter=n_iter,
        converged=converged,
        log_likelihood=final,
        history=history,
        previous_log_likelihood=prev,
    )
