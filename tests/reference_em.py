"""A slow EM written the obvious way (dense, float64, SciPy densities): the reference."""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def reference_em(X, weights, means, covs, covariance_type, n_steps, reg_covar=1e-6,
                 sample_weight=None):
    """Run ``n_steps`` EM iterations; covs given as (K, D, D). Returns the final params
    (weights, means, covs in the model's layout) and the mean log-likelihood of each
    parameter set visited (before each step and after the last)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    k = len(weights)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    lls = []
    cov_out = None
    for _ in range(n_steps + 1):
        logp = np.column_stack([
            np.log(weights[j]) + multivariate_normal(means[j], covs[j]).logpdf(X)
            for j in range(k)
        ])
        norm = logsumexp(logp, axis=1)
        lls.append(float(w @ norm / w.sum()))
        if len(lls) == n_steps + 1:
            break
        resp = np.exp(logp - norm[:, None]) * w[:, None]
        nk = resp.sum(axis=0)
        weights = nk / nk.sum()
        means = resp.T @ X / nk[:, None]
        scat = np.stack([(resp[:, j, None] * (X - means[j])).T @ (X - means[j])
                         for j in range(k)])
        if covariance_type == "full":
            cov_out = scat / nk[:, None, None] + reg_covar * np.eye(d)
            covs = cov_out
        elif covariance_type == "tied":
            cov_out = scat.sum(axis=0) / nk.sum() + reg_covar * np.eye(d)
            covs = np.repeat(cov_out[None], k, axis=0)
        elif covariance_type == "diag":
            cov_out = np.stack([np.diag(s) for s in scat]) / nk[:, None] + reg_covar
            covs = np.stack([np.diag(c) for c in cov_out])
        else:
            cov_out = np.stack([np.trace(s) for s in scat]) / nk / d + reg_covar
            covs = np.stack([np.eye(d) * c for c in cov_out])
    return weights, means, cov_out, lls


def direct_stats(X, resp_w, kind, dtype=np.float64):
    """Sufficient statistics from their definition: weight sums, weighted means and
    scatters about them (two passes), in the "full", "diag" or "tied" layout, computed
    in ``dtype`` (``np.longdouble`` where float64's own sums would lose digits) and
    returned in float64."""
    X = np.asarray(X, dtype=dtype)
    resp_w = np.asarray(resp_w, dtype=dtype)
    nk = resp_w.sum(axis=0)
    means = resp_w.T @ X / nk[:, None]
    scat = np.stack([(resp_w[:, j, None] * (X - means[j])).T @ (X - means[j])
                     for j in range(len(nk))])
    if kind == "diag":
        scat = np.stack([np.diag(s) for s in scat])
    elif kind == "tied":
        scat = scat.sum(axis=0)
    return nk.astype(np.float64), means.astype(np.float64), scat.astype(np.float64)
