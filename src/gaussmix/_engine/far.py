"""Rows so far from every component that their densities underflow to zero.

For a row at 1e200 the squared Mahalanobis distance to every component overflows, so
every weighted log-density is ``-inf`` and the E-step's log-sum-exp subtracts ``-inf``
from ``-inf`` (NaN). Such a row's log-density is ``-inf`` (the true value is below the
smallest float), and its responsibilities are those of the limit: all to the nearest
component in Mahalanobis terms. The distances are compared in log space, after scaling
each residual by its largest entry, so nothing overflows.

A row far out but not that far (log-densities near -1e24) meets a milder form: the
log of the sum of its scaled densities is lost in rounding next to the largest one, so
its responsibilities sum to more than one; they are renormalised here.

The faces' per-row outputs go through :func:`log_resp_and_norm_finite`.
"""

from __future__ import annotations

import numpy as np

from .estep import log_resp_and_norm
from .params import Params


def log_mahalanobis(X: np.ndarray, params: Params) -> np.ndarray:
    """``log`` of each row's squared Mahalanobis distance to each component, (n, K),
    without overflow (``-inf`` for a row at a component's mean)."""
    n, d = X.shape
    K = params.n_components
    pc, family = params.precisions_cholesky, params.family
    out = np.empty((n, K))
    for k in range(K):
        diff = X - params.means[k]
        scale = np.max(np.abs(diff), axis=1, keepdims=True)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        unit = diff / scale
        if family == "full":
            y = unit @ pc[k]
        elif family == "tied":
            y = unit @ pc
        elif family == "diag":
            y = unit * pc[k]
        else:  # spherical
            y = unit * pc[k]
        with np.errstate(divide="ignore"):
            out[:, k] = 2.0 * np.log(scale[:, 0]) + np.log(np.einsum("ij,ij->i", y, y))
    return out


def log_resp_and_norm_finite(X, params: Params):
    """:func:`~gaussmix._engine.estep.log_resp_and_norm` with no NaN: a row whose
    density underflows under every component gets log-density ``-inf`` and all its
    responsibility on the nearest component (shared among exact ties)."""
    log_resp, norm = log_resp_and_norm(X, params)
    # Rows whose log-density is so large in magnitude that the log of the sum of their
    # scaled densities is lost in rounding when added to it (a row 1e12 standard
    # deviations away): their log-responsibilities do not sum to one. Renormalised.
    huge = np.flatnonzero(np.isfinite(norm) & (np.abs(norm) > 1e8))
    if huge.size:
        top = log_resp[huge].max(axis=1, keepdims=True)
        log_resp[huge] -= top + np.log(np.exp(log_resp[huge] - top).sum(axis=1,
                                                                         keepdims=True))
    bad = np.isnan(norm) | np.isnan(log_resp).any(axis=1)
    if bad.any():
        X = np.asarray(X, dtype=np.float64)
        rows = np.flatnonzero(bad)
        log_maha = log_mahalanobis(X[rows], params)
        nearest = log_maha == log_maha.min(axis=1, keepdims=True)
        resp = nearest / nearest.sum(axis=1, keepdims=True)
        if params.noise_log_density is not None:  # the noise column takes nothing
            resp = np.column_stack([resp, np.zeros(rows.size)])
        with np.errstate(divide="ignore"):
            log_resp[rows] = np.log(resp)
        norm[rows] = -np.inf
    return log_resp, norm
