"""Stepwise (online) EM: running statistics, moved towards each batch's in turn.

Cappé & Moulines (2009), Liang & Klein (2009). After the E-step of batch t the running
statistics become

    s_t = (1 - eta_t) s_{t-1} + eta_t ŝ_t,

where ŝ_t is the batch's statistics per unit of row weight (its raw moments E[1],
E[x], E[xxᵀ] divided by its total weight), so batches of any size or weight mix by
``eta`` alone, and the M-step reads s_t. The running statistics therefore always
weigh 1. The first update takes eta = 1: it replaces what came before (a start has
no statistics to blend with), so it is one EM iteration on that batch. The t-th update
after it takes eta_t = (t + t0)^(-alpha), 0.5 < alpha <= 1 (then sum eta = inf and
sum eta^2 < inf, Robbins-Monro's conditions).

Small functions over explicit state; :class:`StepwisePass` puts them in the EM loop's
pass slot (``Params -> SuffStats``, None when the stream runs out), so the loop owns the
M-step, re-seeding and the budget as for every other policy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from .params import Params
from .producers import sum_stats
from .stats import SuffStats


@dataclass(frozen=True)
class StepwiseState:
    """Where a stream of updates stands.

    Attributes
    ----------
    stats : SuffStats or None
        Running statistics per unit of row weight; None before the first update.
    n_updates : int
        Updates so far.
    """

    stats: SuffStats | None = None
    n_updates: int = 0


def step_size(n_updates: int, exponent: float, offset: float) -> float:
    """eta of the update that follows ``n_updates`` updates: 1 for the first, then
    ``(t + offset) ** -exponent`` for the t-th after it (t = n_updates)."""
    if n_updates == 0:
        return 1.0
    return float((n_updates + offset) ** -exponent)


def blend(running: SuffStats | None, batch: SuffStats, eta: float) -> SuffStats:
    """``(1 - eta) running + eta batch / batch.weight`` (a ``batch.weight > 0``).

    The result counts the batch's rows (``n_rows``: the M-step's guards and a re-seeded
    component's "one row" are relative to a batch) and keeps the batch's worst row: a
    re-seed must use a row measured under the current parameters.
    """
    new = batch.scaled(eta / batch.weight)
    if running is not None and eta < 1:
        new = running.scaled(1.0 - eta) + new
    return replace(new, n_rows=batch.n_rows, worst_loglik=batch.worst_loglik,
                   worst_row=batch.worst_row)


def update(state: StepwiseState, batch: SuffStats, exponent: float,
           offset: float) -> StepwiseState:
    """The state after one batch's statistics (under the current parameters)."""
    eta = step_size(state.n_updates, exponent, offset)
    return StepwiseState(blend(state.stats, batch, eta), state.n_updates + 1)


class StepwisePass:
    """The loop's pass for stepwise EM over a stream of batches, each read once.

    Each call runs the E-step of the next batch with a positive weight under the given
    parameters, updates :attr:`state` and returns its running statistics; None once the
    batches are spent.

    Parameters
    ----------
    batches : iterable of Source
        One Source per batch (its chunks bound the E-step's memory).
    kind : {"full", "diag", "tied"}
        Scatter layout the M-step reads.
    state : StepwiseState
    exponent, offset : float
        alpha and t0 of the step sizes (see :func:`step_size`).

    Attributes
    ----------
    state : StepwiseState
    batch_log_likelihoods : list of float
        Mean log-likelihood of each batch read, under the parameters of its E-step.
    """

    def __init__(self, batches: Iterable, kind: str, state: StepwiseState,
                 exponent: float, offset: float):
        self._batches = iter(batches)
        self.kind, self.state = kind, state
        self.exponent, self.offset = exponent, offset
        self.batch_log_likelihoods: list[float] = []

    def __call__(self, params: Params) -> SuffStats | None:
        for batch in self._batches:
            stats = sum_stats(batch, params, self.kind)
            if not stats.weight > 0:  # only rows of weight 0: as if absent
                continue
            self.batch_log_likelihoods.append(stats.mean_loglik)
            self.state = update(self.state, stats, self.exponent, self.offset)
            return self.state.stats
        return None
