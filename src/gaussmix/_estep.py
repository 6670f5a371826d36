"""The E-step kernel: log-densities, responsibilities and statistics of one chunk.

Everything is in log space: log-densities come through the Cholesky factors of the
precisions and are combined across components with log-sum-exp, so no density is ever
exponentiated on its own. The kernels compute in the chunk's dtype (float32 halves the
memory traffic); every sum that leaves a chunk is float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._params import Params
from ._stats import SuffStats, stats_from_resp

LOG_2PI = math.log(2.0 * math.pi)


def _shift(params: Params) -> np.ndarray:
    """A point near the data (the mixture's mean), to centre before expanding squares."""
    return params.weights @ params.means / params.weights.sum()


def log_gaussian_prob(X: np.ndarray, params: Params) -> np.ndarray:
    """``log N(x_i | mu_k, Sigma_k)`` for every row and component, shape (n, K)."""
    dtype = X.dtype
    n, n_features = X.shape
    means = params.means
    prec_chol = params.precisions_cholesky.astype(dtype, copy=False)
    family = params.family
    if family == "full":
        maha = np.empty((n, params.n_components), dtype=dtype)
        for k in range(params.n_components):
            # Centre on the component's own mean first: X @ U - mu @ U would cancel
            # catastrophically for data far from the origin.
            y = (X - means[k].astype(dtype)) @ prec_chol[k]
            np.einsum("ij,ij->i", y, y, out=maha[:, k])
    else:
        shift = _shift(params)
        Xc = X - shift.astype(dtype)
        mc = (means - shift).astype(dtype)
        if family == "tied":
            y = Xc @ prec_chol
            m = mc @ prec_chol
            maha = np.einsum("ij,ij->i", y, y)[:, None] - 2.0 * (y @ m.T)
            maha += np.einsum("ij,ij->i", m, m)[None, :]
        elif family == "diag":
            prec = prec_chol**2
            maha = (Xc * Xc) @ prec.T - 2.0 * (Xc @ (mc * prec).T)
            maha += np.einsum("ij,ij->i", mc * mc, prec)[None, :]
        else:  # spherical
            prec = prec_chol**2
            sq = np.einsum("ij,ij->i", Xc, Xc)
            maha = (sq[:, None] - 2.0 * (Xc @ mc.T) + np.einsum("ij,ij->i", mc, mc)) * prec
        np.maximum(maha, 0.0, out=maha)  # expanded squares may round below zero
    log_det = params.log_det_cholesky.astype(dtype)
    return -0.5 * (n_features * LOG_2PI + maha) + log_det


def weighted_log_prob(X: np.ndarray, params: Params) -> np.ndarray:
    """``log pi_k + log N(x_i | mu_k, Sigma_k)``, shape (n, K)."""
    return log_gaussian_prob(X, params) + np.log(params.weights).astype(X.dtype)


def log_resp_and_norm(X: np.ndarray, params: Params):
    """Log-responsibilities (n, K) and per-row log-likelihoods (n,)."""
    wlp = weighted_log_prob(X, params)
    top = wlp.max(axis=1, keepdims=True)
    norm = top[:, 0] + np.log(np.exp(wlp - top).sum(axis=1))
    return wlp - norm[:, None], norm


def estep_chunk(X: np.ndarray, sample_weight: np.ndarray | None, params: Params,
                kind: str) -> SuffStats:
    """One chunk's E-step: the chunk's sufficient statistics under ``params``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
        Row weights (a weight w counts the row w times); None means all ones.
    params : Params
    kind : {"full", "diag", "tied"}
        Scatter layout the M-step needs.
    """
    log_resp, norm = log_resp_and_norm(X, params)
    resp = np.exp(log_resp)
    if sample_weight is None:
        resp_w = resp
        loglik = float(norm.sum(dtype=np.float64))
        weight = float(X.shape[0])
        n_rows = X.shape[0]
        worst = int(np.argmin(norm))
    else:
        w = sample_weight.astype(X.dtype, copy=False)
        resp_w = resp * w[:, None]
        loglik = float(norm.astype(np.float64) @ sample_weight.astype(np.float64))
        weight = float(sample_weight.sum(dtype=np.float64))
        positive = sample_weight > 0
        n_rows = int(positive.sum())
        worst = int(np.argmin(np.where(positive, norm, np.inf))) if n_rows else 0
    stats = stats_from_resp(X, resp_w, kind, centers=params.means if kind == "full" else None)
    return SuffStats(
        nk=stats.nk,
        means=stats.means,
        scatter=stats.scatter,
        kind=kind,
        loglik=loglik,
        weight=weight,
        n_rows=n_rows,
        worst_loglik=float(norm[worst]) if n_rows else np.inf,
        worst_row=np.asarray(X[worst], dtype=np.float64) if n_rows else None,
    )
