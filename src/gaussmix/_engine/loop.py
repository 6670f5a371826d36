"""The EM loop: the one place that iterates.

It alternates a pass (any function that turns parameters into summed statistics: a loop
over chunks, a Dask reduction, a GPU kernel) with an M-step (any function
``(SuffStats, state) -> (Params, state)``), and owns the iteration budget, the handling
of a component that empties, callbacks, and the result. *When to stop* is a policy:

* :func:`sklearn_policy`: scikit-learn's. Iteration ``t`` runs the M-step that gives the
  parameters of step ``t`` and stops when the mean log-likelihood changed by less than
  ``tol`` between the E-steps of steps ``t - 1`` and ``t - 2``; a final E-step measures
  the returned parameters, so the reported log-likelihood is theirs (scikit-learn's
  ``lower_bound_`` is one M-step behind). Empty components are re-seeded.
* :func:`mclust_policy`: mclust's. Usually started from statistics (a partition: M-step
  first); stops when ``|l_t - l_{t-1}| / (1 + |l_t|) <= tol``; a non-finite
  log-likelihood is a :class:`~gaussmix._errors.NonFiniteLikelihoodError` (mclust's NA).
* :func:`fixed_steps_policy`: the object model's. Exactly ``max_iter`` steps, or fewer
  when the mean log-likelihood changes by less than ``tol`` from one E-step to the next.
* :func:`stepwise_policy`: stepwise (online) EM's. The pass reads the next batch of a
  stream and returns the running statistics (see :mod:`.stepwise`); the run never
  converges, it stops when the stream runs out. Empty components are re-seeded.

A pass may return None: its stream ran out. The run then stops with the parameters of
the last M-step (or the start's, when not one batch came).

A start is either :class:`Params` (an E-step first) or :class:`SuffStats` (an M-step
first, from given responsibilities).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._errors import NonFiniteLikelihoodError
from .mstep import reseed_empty
from .params import Params
from .stats import SuffStats

FLMAX = float(np.finfo(np.float64).max)


class EmptyComponentWarning(UserWarning):
    """A component lost all its weight during EM and was re-seeded."""


# ------------------------------------------------------------------------ policies
@dataclass
class Policy:
    """When EM stops, and what it does with an empty component.

    ``converged(stats, reseeded)`` is called after each iteration's E-step and returns
    ``(converged, value, change)``: the decision and the two numbers it compared, which
    the loop hands to ``on_iteration``. ``start(stats)`` sees the start's E-step.
    """

    converged: Callable[[SuffStats, bool], tuple[bool, float, float]]
    start: Callable[[SuffStats], None] = lambda stats: None
    reseed: bool = True  # re-seed an emptied component (else the M-step fails)
    require_finite: bool = False
    # The value compared last, for a warm start of the next fit (scikit-learn's).
    last: Callable[[], float] = lambda: -np.inf


def sklearn_policy(tol: float, previous_log_likelihood: float = -np.inf) -> Policy:
    """scikit-learn's rule on the mean log-likelihood, one E-step behind (see module)."""
    trace = {"prev": previous_log_likelihood, "current": None}

    def start(stats):
        trace["current"] = stats.mean_loglik

    def converged(stats, reseeded):
        # The change scikit-learn tests at this iteration: between the E-steps before
        # the M-step just run. A re-seed makes the likelihood jump: never converged.
        current = -np.inf if reseeded else trace["current"]
        change = current - trace["prev"]
        trace["prev"], trace["current"] = current, stats.mean_loglik
        # An undefined change (inf - inf, e.g. a fresh start) is not convergence.
        return bool(np.isfinite(change) and abs(change) < tol), current, change

    return Policy(converged, start=start, last=lambda: trace["prev"])


def mclust_policy(tol: float) -> Policy:
    """mclust's relative rule on the total log-likelihood; failures are errors."""
    trace = {"hold": FLMAX / 2}

    def converged(stats, reseeded):
        loglik = stats.loglik
        err = abs(trace["hold"] - loglik) / (1.0 + abs(loglik))
        trace["hold"] = loglik
        return bool(err <= tol), loglik, err

    return Policy(converged, reseed=False, require_finite=True)


def fixed_steps_policy(tol: float | None = None) -> Policy:
    """Every step, or stop when the mean log-likelihood changes by less than ``tol``."""
    trace = {"prev": None}

    def start(stats):
        trace["prev"] = stats.loglik

    def converged(stats, reseeded):
        change = (stats.loglik - trace["prev"]) / stats.weight
        trace["prev"] = stats.loglik
        return bool(tol is not None and abs(change) < tol), stats.mean_loglik, change

    return Policy(converged, start=start)


def stepwise_policy() -> Policy:
    """Online EM's: one M-step per batch until the stream runs out, never converged.

    The value handed to ``on_iteration`` is the running statistics' mean
    log-likelihood (a moving average of the batches' under their parameters).
    """

    def converged(stats, reseeded):
        return False, stats.mean_loglik, math.nan

    return Policy(converged)


# ------------------------------------------------------------------------ the loop
@dataclass
class EMResult:
    """What one EM run leaves."""

    params: Params
    # Statistics of the final E-step, under ``params``; when a stream ran out, those the
    # last M-step read (None: not one batch came).
    stats: SuffStats | None
    n_iter: int  # M-steps run
    converged: bool
    log_likelihoods: list[float] = field(default_factory=list)  # every E-step's total
    state: Any = None  # the M-step's state after the last M-step
    previous_log_likelihood: float = -np.inf  # the policy's last compared value

    @property
    def log_likelihood(self) -> float:
        """Mean log-likelihood of ``params`` (per unit of row weight)."""
        return self.stats.mean_loglik

    @property
    def loglik(self) -> float:
        """Total log-likelihood of ``params``."""
        return self.stats.loglik


def run_em(
    pass_fn: Callable[[Params], SuffStats],
    mstep: Callable[[SuffStats, Any], tuple[Params, Any]],
    start: Params | SuffStats,
    policy: Policy,
    *,
    max_iter: int,
    state: Any = None,
    on_iteration: Callable[..., None] | None = None,
    on_reseed: Callable[[int, int], None] | None = None,
) -> EMResult:
    """Run EM from ``start`` until ``policy`` says stop or ``max_iter`` M-steps ran.

    Parameters
    ----------
    pass_fn : callable Params -> SuffStats or None
        Produces the summed statistics of the whole data under the given parameters
        (stepwise EM: the running statistics after the next batch); None when a
        stream ran out, which ends the run.
    mstep : callable (SuffStats, state) -> (Params, state)
    start : Params or SuffStats
        Parameters (E-step first) or statistics of given responsibilities (M-step
        first; at least one M-step then runs).
    policy : Policy
    max_iter : int
    state : optional
        The M-step's state at the start (a warm start).
    on_iteration : callable (n_iter, value, change, stats, params) -> None, optional
        Called after each iteration with what the policy compared, and with
        ``n_iter = 0`` (value and change NaN) after the E-step of a Params start.
    on_reseed : callable (component, n_iter) -> None, optional
        Called when an emptied component was re-seeded (the face warns).

    Returns
    -------
    EMResult
    """
    if isinstance(start, Params):
        params = start
        stats = pass_fn(params)
        if stats is None:  # an empty stream: nothing to update
            return EMResult(params=params, stats=None, n_iter=0, converged=False,
                            state=state, previous_log_likelihood=policy.last())
        _check(stats, policy)
        policy.start(stats)
        log_likelihoods = [stats.loglik]
        if on_iteration is not None:
            on_iteration(0, math.nan, math.nan, stats, params)
    else:
        params, stats = None, start
        log_likelihoods = []
        max_iter = max(int(max_iter), 1)
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        reseeded = []
        if policy.reseed:
            stats, reseeded = reseed_empty(stats)
            if reseeded and on_reseed is not None:
                on_reseed(reseeded[0], n_iter)
        params, state = mstep(stats, state)
        following = pass_fn(params)
        if following is None:  # the stream ran out: this M-step's parameters are final
            break
        stats = following
        _check(stats, policy)
        log_likelihoods.append(stats.loglik)
        converged, value, change = policy.converged(stats, bool(reseeded))
        if on_iteration is not None:
            on_iteration(n_iter, value, change, stats, params)
        if converged:
            break
    return EMResult(params=params, stats=stats, n_iter=n_iter, converged=converged,
                    log_likelihoods=log_likelihoods, state=state,
                    previous_log_likelihood=policy.last())


def _check(stats, policy):
    if policy.require_finite and not math.isfinite(stats.loglik):
        raise NonFiniteLikelihoodError("cannot compute E-step (non-finite log-likelihood)")
