"""Variational Bayes for Gaussian mixtures, as an M-step in the loop's slot.

The model is scikit-learn's ``BayesianGaussianMixture``: a Dirichlet (or stick-breaking
Dirichlet-process) prior on the weights and a Gaussian-Wishart prior on each component's
mean and precision. Its variational E-step is the ordinary kernel fed with different
numbers: the posterior means, the precisions ``nu_k W_k`` and, per component, a
log-weight that holds the expected log-weight and the expected log-determinant's
corrections (:func:`estep_params`). So it reads the same :class:`SuffStats` from every
producer, and the update (:func:`update`) is a pure function of them.

The objective is the evidence lower bound, computed as scikit-learn computes it (its
constant terms left out): the responsibilities' entropy (from the statistics and the
E-step's parameters, :func:`resp_entropy`), the Wishart and Dirichlet normalisers and
the mean precisions' term (:func:`lower_bound`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .estep import LOG_2PI
from .params import Params, _log_det_cholesky, _precision_cholesky, make_params
from .stats import SuffStats

# scikit-learn's guard on the counts (10 eps), so an empty component stays finite.
_NK_GUARD = 10 * np.finfo(np.float64).eps

DIRICHLET_PROCESS = "dirichlet_process"
DIRICHLET_DISTRIBUTION = "dirichlet_distribution"


@dataclass(frozen=True)
class Priors:
    """The resolved priors (scikit-learn's ``*_prior_`` attributes)."""

    weight_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray  # (D,)
    degrees_of_freedom: float
    covariance: Any  # (D, D) full and tied, (D,) diag, a float spherical


@dataclass(frozen=True)
class Posterior:
    """The variational posterior (scikit-learn's fitted attributes of the same names)."""

    weight_concentration: Any  # (K,), or a pair of (K,) for the Dirichlet process
    mean_precision: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    degrees_of_freedom: Any  # (K,), a float for tied
    covariances: np.ndarray  # the family's layout
    precisions_cholesky: np.ndarray
    family: str


def update(stats: SuffStats, priors: Priors, family: str, reg_covar: float) -> Posterior:
    """The variational update of every factor from the statistics of an E-step."""
    nk = np.asarray(stats.nk, dtype=np.float64) + _NK_GUARD
    k, d = stats.means.shape
    # The component means and scatters as scikit-learn forms them from guarded counts:
    # nk * xk and nk * sk stay the sums they are, whatever the guard.
    xk = stats.means * (stats.nk / nk)[:, None]
    if priors.weight_type == DIRICHLET_PROCESS:
        later = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
        weight_concentration = (1.0 + nk, priors.weight_concentration + later)
    else:
        weight_concentration = priors.weight_concentration + nk
    beta = priors.mean_precision + nk
    means = (priors.mean_precision * priors.mean + nk[:, None] * xk) / beta[:, None]
    diff = xk - priors.mean
    shrink = priors.mean_precision / beta  # how far the prior pulls each mean
    if family == "full":
        sk = stats.scatter / nk[:, None, None] + reg_covar * np.eye(d)
        dof = priors.degrees_of_freedom + nk
        cov = (priors.covariance + nk[:, None, None] * sk
               + (nk * shrink)[:, None, None] * (diff[:, :, None] * diff[:, None, :]))
        cov = cov / dof[:, None, None]
    elif family == "tied":
        total = nk.sum()
        sk = stats.scatter / total + reg_covar * np.eye(d)
        dof = priors.degrees_of_freedom + total / k
        cov = (priors.covariance + sk * total / k
               + priors.mean_precision / k * ((nk / beta) * diff.T) @ diff)
        cov = cov / dof
    else:
        sk = stats.scatter / nk[:, None] + reg_covar
        dof = priors.degrees_of_freedom + nk
        if family == "diag":
            cov = priors.covariance + nk[:, None] * (sk + shrink[:, None] * diff**2)
            cov = cov / dof[:, None]
        else:
            cov = priors.covariance + nk * (sk.mean(axis=1) + shrink * np.mean(diff**2, 1))
            cov = cov / dof
    return Posterior(weight_concentration, beta, means, dof, cov,
                     _precision_cholesky(cov, family), family)


def expected_log_weights(post: Posterior, weight_type: str) -> np.ndarray:
    """E[log pi_k] under the posterior on the weights."""
    if weight_type == DIRICHLET_PROCESS:
        a, b = post.weight_concentration
        total = digamma(a + b)
        stick = np.concatenate([[0.0], np.cumsum(digamma(b) - total)[:-1]])
        return digamma(a) - total + stick
    alpha = post.weight_concentration
    return digamma(alpha) - digamma(np.sum(alpha))


def mean_weights(post: Posterior, weight_type: str) -> np.ndarray:
    """The posterior mean weights (scikit-learn's ``weights_``)."""
    if weight_type == DIRICHLET_PROCESS:
        a, b = post.weight_concentration
        total = a + b
        w = a / total * np.concatenate([[1.0], np.cumprod(b / total)[:-1]])
        return w / w.sum()
    alpha = post.weight_concentration
    return alpha / np.sum(alpha)


def estep_params(post: Posterior, weight_type: str) -> Params:
    """Parameters whose E-step is the variational one: the kernel's weighted
    log-density of component k at x is then E[log pi_k] + E[log N(x | mu_k, Lambda_k)]
    (scikit-learn's ``_estimate_weighted_log_prob``)."""
    n_features = post.means.shape[1]
    dof = np.asarray(post.degrees_of_freedom, dtype=np.float64)
    log_lambda = n_features * math.log(2.0) + np.sum(
        digamma(0.5 * (dof - np.arange(n_features)[:, None])), axis=0)
    # The kernel adds log det of the factor of nu W; E[log det Lambda] wants that of W.
    log_weights = (expected_log_weights(post, weight_type)
                   - 0.5 * n_features * np.log(dof)
                   + 0.5 * (log_lambda - n_features / post.mean_precision))
    params = make_params(mean_weights(post, weight_type), post.means, post.covariances,
                         post.precisions_cholesky, post.family)
    return replace(params, log_weights=np.broadcast_to(log_weights, post.mean_precision.shape))


def resp_entropy(stats: SuffStats, params: Params) -> float:
    """sum_i w_i sum_k r_ik log r_ik of the E-step under ``params`` that gave ``stats``.

    log r_ik = wlp_ik - log sum_k exp(wlp_ik), and sum_i r_ik wlp_ik is a quadratic form
    of the statistics: n_k c_k - (tr(P_k S_k) + n_k d_k' P_k d_k) / 2, with S_k the
    scatter about the weighted mean and d_k its distance to the component's mean.
    """
    n_features = params.means.shape[1]
    nk = np.asarray(stats.nk, dtype=np.float64)
    const = params.log_weights + params.log_det_cholesky - 0.5 * n_features * LOG_2PI
    delta = stats.means - params.means
    pc = params.precisions_cholesky
    family = params.family
    if family == "full":
        prec = pc @ np.swapaxes(pc, 1, 2)
        quad = np.einsum("kij,kji->k", prec, stats.scatter)
        quad += nk * np.sum((np.einsum("ki,kij->kj", delta, pc)) ** 2, axis=1)
    elif family == "tied":
        prec = pc @ pc.T
        quad = np.zeros_like(nk)
        quad[0] = np.sum(prec * stats.scatter)  # the pooled scatter, once
        quad += nk * np.sum((delta @ pc) ** 2, axis=1)
    else:
        prec = pc**2 if family == "diag" else (pc**2)[:, None]
        quad = np.sum(prec * (stats.scatter + nk[:, None] * delta**2), axis=1)
    return float(np.dot(nk, const) - 0.5 * quad.sum() - stats.loglik)


def lower_bound(post: Posterior, priors: Priors, entropy: float) -> float:
    """scikit-learn's evidence lower bound (constants left out, as it does)."""
    n_features = post.means.shape[1]
    k = post.means.shape[0]
    dof = post.degrees_of_freedom
    log_det_w = (_log_det_cholesky(post.precisions_cholesky, post.family, k, n_features)
                 - 0.5 * n_features * np.log(dof))
    if post.family == "tied":
        log_det_w = log_det_w[0]
    log_wishart = -(dof * log_det_w + dof * n_features * 0.5 * math.log(2.0)
                    + np.sum(gammaln(0.5 * (np.asarray(dof) - np.arange(n_features)[:, None])),
                             axis=0))
    log_wishart = float(np.sum(log_wishart)) * (k if post.family == "tied" else 1)
    if priors.weight_type == DIRICHLET_PROCESS:
        log_norm_weight = -float(np.sum(betaln(*post.weight_concentration)))
    else:
        alpha = post.weight_concentration
        log_norm_weight = float(gammaln(np.sum(alpha)) - np.sum(gammaln(alpha)))
    return (-entropy - log_wishart - log_norm_weight
            - 0.5 * n_features * float(np.sum(np.log(post.mean_precision))))


@dataclass
class VariationalStep:
    """The update in the loop's slot: ``(SuffStats, state) -> (Params, state)``.

    ``state`` is the E-step parameters that gave the statistics (None for statistics of
    given responsibilities, the start); each call with them appends the lower bound of
    the new posterior to ``lower_bounds`` (scikit-learn's, one per iteration) and keeps
    the posterior in ``posterior``.
    """

    priors: Priors
    family: str
    reg_covar: float
    posterior: Posterior | None = None
    lower_bounds: list = None

    def __post_init__(self):
        if self.lower_bounds is None:
            self.lower_bounds = []

    def __call__(self, stats: SuffStats, state=None):
        post = update(stats, self.priors, self.family, self.reg_covar)
        if state is not None:
            self.lower_bounds.append(lower_bound(post, self.priors, resp_entropy(stats, state)))
        self.posterior = post
        params = estep_params(post, self.priors.weight_type)
        return params, params
