"""The E-step of rows with missing coordinates (NaN), missing at random.

A row with observed coordinates ``o`` and missing ones ``m`` is scored by the marginal
density of ``x_o`` under each component, and contributes to the statistics the
conditional expectation of the whole row and of its outer product: the filled row
``x_hat = (x_o, E[x_m | x_o, k])`` and, in the missing block of the scatter, the
conditional covariance. With those, every covariance model's M-step works unchanged
(the EM of Little & Rubin, *Statistical Analysis with Missing Data*, ch. 11).

Everything comes from the precision ``P = Sigma^-1`` of each component, so no
sub-matrix of the covariance is factorised per row:

* the conditional covariance of ``x_m`` is ``C = P_mm^-1`` (``q x q``, ``q`` missing);
* with ``d`` the residual ``x - mu`` set to 0 at the missing coordinates and
  ``g = (P d)_m``, the conditional mean is ``mu_m + delta``, ``delta = -C g``;
* the observed coordinates' Mahalanobis distance is that of the filled residual,
  ``d^T P d + g^T delta``, and ``log det Sigma_oo = log det P_mm - log det P``.

Rows are taken in blocks and, inside a block, grouped by their number of missing
coordinates, so every step is one batched NumPy call over rows and components; ``C``
and ``log det P_mm`` are computed once per missingness pattern and component.
Computation is in float64.
"""

from __future__ import annotations

import math

import numpy as np

from .params import Params
from .stats import SuffStats

LOG_2PI = math.log(2.0 * math.pi)

# Rows per block: the (K, rows, D) work arrays stay a few megabytes.
_BLOCK_ELEMENTS = 1 << 19


def missing_rows(X) -> np.ndarray | None:
    """Boolean mask of the rows of ``X`` with a NaN, or None when there is none.

    A sum first: for data without NaN (the usual case) one pass and no mask.
    """
    if not np.isnan(np.sum(X, dtype=np.float64)):
        return None
    mask = np.isnan(X).any(axis=1)
    return mask if mask.any() else None


def check_rows_observed(X, first_row=0, columns=False):
    """Refuse rows with every coordinate missing (they carry no information), and with
    ``columns`` (a fit) a column with no observed value (nothing to estimate it from)."""
    nan = np.isnan(X)
    empty = nan.all(axis=1)
    if X.shape[1] and empty.any():
        rows = np.flatnonzero(empty)[:5] + first_row
        listed = ", ".join(str(r) for r in rows) + (", ..." if empty.sum() > 5 else "")
        raise ValueError(
            f"row {listed} has every coordinate missing (NaN) and carries no "
            "information: drop such rows before fitting or scoring.")
    if columns and X.shape[0]:
        unseen = np.flatnonzero(nan.all(axis=0))
        if unseen.size:
            raise ValueError(
                f"column {', '.join(map(str, unseen[:5]))} has no observed value (every "
                "entry NaN): drop it before fitting.")


def mean_filled(X, fill=None) -> np.ndarray:
    """A copy of ``X`` with each NaN replaced by its column's mean over the observed
    entries (or by ``fill``): the starting clustering's view of incomplete rows."""
    X = np.array(X, dtype=np.float64 if X.dtype.kind != "f" else X.dtype)
    nan = np.isnan(X)
    if nan.any():
        if fill is None:
            fill = column_means(X)
        X[nan] = np.broadcast_to(fill, X.shape)[nan]
    return X


def column_means(X) -> np.ndarray:
    """Each column's mean over its observed entries (0 for a column with none)."""
    observed = ~np.isnan(X)
    counts = observed.sum(axis=0)
    sums = np.where(observed, X, 0.0).sum(axis=0, dtype=np.float64)
    return np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)


class _Model:
    """The parameters as the missing-data E-step reads them: full precisions."""

    def __init__(self, params: Params, with_weights=True):
        if params.noise_log_density is not None:
            raise ValueError(
                "a noise component cannot be combined with missing values: its density "
                "is defined over all coordinates. Drop the incomplete rows or the noise.")
        k, d = params.means.shape
        pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
        family = params.family
        if family == "full":
            prec = pc @ np.swapaxes(pc, 1, 2)
        elif family == "tied":
            prec = np.broadcast_to(pc @ pc.T, (k, d, d))
        elif family == "diag":
            prec = np.zeros((k, d, d))
            prec[:, np.arange(d), np.arange(d)] = pc**2
        else:
            prec = (pc**2)[:, None, None] * np.eye(d)
        self.prec = np.ascontiguousarray(prec)
        self.log_det_prec = 2.0 * np.asarray(params.log_det_cholesky, dtype=np.float64)
        self.means = np.asarray(params.means, dtype=np.float64)
        self.log_weights = np.zeros(k)
        if with_weights:
            self.log_weights = (np.log(params.weights) if params.log_weights is None
                                else np.asarray(params.log_weights, dtype=np.float64))
        self.n_components, self.n_features = k, d
        self.rows = max(64, _BLOCK_ELEMENTS // (k * d))


class _Group:
    """Rows of a block with the same number ``q`` of missing coordinates.

    Attributes: ``rows`` (positions in the block), ``missing`` (n, q) their missing
    coordinates, ``pattern`` (n,) each row's pattern in ``patterns`` (p, q), ``cond_cov``
    (K, p, q, q) the conditional covariances, ``log_prob`` (K, n) the observed
    coordinates' log-densities, ``resid`` (K, n, D) each component's filled residual
    ``x_hat - mu_k``.
    """


def _groups(X, model: _Model):
    """The :class:`_Group` s of a block of rows (each with at least one NaN)."""
    observed = ~np.isnan(X)
    n_missing = X.shape[1] - observed.sum(axis=1)
    if np.any(n_missing == X.shape[1]):
        check_rows_observed(X)
    x0 = np.where(observed, X, 0.0)
    for q in np.unique(n_missing):
        if q == 0:
            continue
        g = _Group()
        g.rows = np.flatnonzero(n_missing == q)
        obs = observed[g.rows]
        # False sorts first: each row's missing coordinates, ascending.
        g.missing = np.argsort(obs, axis=1, kind="stable")[:, :q]
        g.patterns, g.pattern = np.unique(g.missing, axis=0, return_inverse=True)
        g.pattern = g.pattern.ravel()
        pats = g.patterns
        p_mm = model.prec[:, pats[:, :, None], pats[:, None, :]]  # (K, p, q, q)
        g.cond_cov = np.linalg.inv(p_mm)
        log_det_mm = np.linalg.slogdet(p_mm)[1]  # (K, p)
        resid = (x0[g.rows][None] - model.means[:, None, :]) * obs[None]  # (K, n, D)
        grad = np.matmul(resid, model.prec)  # P symmetric: rows of d^T P
        maha = np.einsum("knd,knd->kn", resid, grad)
        cols = np.broadcast_to(g.missing[None], (model.n_components,) + g.missing.shape)
        g_m = np.take_along_axis(grad, cols, axis=2)  # (K, n, q)
        delta = -np.einsum("knij,knj->kni", g.cond_cov[:, g.pattern], g_m)
        maha += np.einsum("kni,kni->kn", g_m, delta)
        np.maximum(maha, 0.0, out=maha)
        np.put_along_axis(resid, cols, delta, axis=2)
        g.resid = resid
        log_det_cov = log_det_mm[:, g.pattern] - model.log_det_prec[:, None]
        g.log_prob = -0.5 * ((X.shape[1] - q) * LOG_2PI + log_det_cov + maha)
        yield g


def _blocks(n, rows):
    for a in range(0, n, rows):
        yield a, min(n, a + rows)


def log_prob(X, params: Params, with_weights=True) -> np.ndarray:
    """``log pi_k + log N(x_o | mu_k,o, Sigma_k,oo)`` of rows with NaN, (n, K)."""
    model = _Model(params, with_weights)
    X = np.asarray(X, dtype=np.float64)
    out = np.empty((X.shape[0], model.n_components))
    for a, b in _blocks(X.shape[0], model.rows):
        for g in _groups(X[a:b], model):
            out[a + g.rows] = (g.log_prob + model.log_weights[:, None]).T
    return out


def _log_resp(wlp):
    """Log-responsibilities and per-row log-likelihoods of weighted log-densities (K, n)."""
    top = wlp.max(axis=0)
    norm = top + np.log(np.exp(wlp - top).sum(axis=0))
    return wlp - norm, norm


def estep_stats(X, sample_weight, params: Params, kind: str, labels=None) -> SuffStats:
    """Sufficient statistics of rows that each have at least one NaN.

    Same contract as the complete-row kernel (``estep.estep_chunk``): the statistics
    add to those of the chunk's complete rows. The worst-explained row is left unknown
    (a row with gaps cannot re-seed a component).
    """
    model = _Model(params)
    X = np.asarray(X, dtype=np.float64)
    k, d = model.n_components, model.n_features
    w_all = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    nk = np.zeros(k)
    first = np.zeros((k, d))  # sums of filled residuals about each component's mean
    second = np.zeros((k, d, d))
    loglik = map_loglik = 0.0
    for a, b in _blocks(X.shape[0], model.rows):
        for g in _groups(X[a:b], model):
            wlp = g.log_prob + model.log_weights[:, None]
            log_resp, norm = _log_resp(wlp)
            if labels is not None:
                lab = np.asarray(labels[a:b])[g.rows]
                fixed = np.flatnonzero(lab >= 0)
                if fixed.size:  # a known label: responsibility 1, its own log-density
                    log_resp[:, fixed] = -np.inf
                    log_resp[lab[fixed], fixed] = 0.0
                    norm[fixed] = wlp[lab[fixed], fixed]
            resp = np.exp(log_resp)
            w = None if w_all is None else w_all[a:b][g.rows]
            top = log_resp.max(axis=0)
            if w is None:
                loglik += float(norm.sum())
                map_loglik += float(top.sum())
            else:
                loglik += float(norm @ w)
                map_loglik += float(top @ w)
                resp *= w
            nk += resp.sum(axis=1)
            first += np.einsum("kn,knd->kd", resp, g.resid)
            second += np.matmul(g.resid.transpose(0, 2, 1) * resp[:, None, :], g.resid)
            # The conditional covariance of each pattern's missing block, weighted by
            # its rows' responsibilities.
            per_pattern = np.zeros((k, g.patterns.shape[0]))
            np.add.at(per_pattern, (slice(None), g.pattern), resp)
            pats = g.patterns
            comp = np.arange(k)[:, None, None, None]
            np.add.at(second, (comp, pats[None, :, :, None], pats[None, :, None, :]),
                      per_pattern[:, :, None, None] * g.cond_cov)
    safe = np.where(nk > 0, nk, 1.0)
    shift = first / safe[:, None]
    means = model.means + shift
    scatter = second - nk[:, None, None] * (shift[:, :, None] * shift[:, None, :])
    empty = nk <= 0
    means[empty] = 0.0
    scatter[empty] = 0.0
    if kind == "diag":
        scatter = np.maximum(np.einsum("kii->ki", scatter), 0.0)
    elif kind == "tied":
        scatter = scatter.sum(axis=0)
    n_rows = X.shape[0] if w_all is None else int(np.count_nonzero(w_all > 0))
    weight = float(X.shape[0]) if w_all is None else float(w_all.sum())
    return SuffStats(nk=nk, means=means, scatter=scatter, kind=kind, loglik=loglik,
                     weight=weight, n_rows=n_rows, map_loglik=map_loglik)


def impute(X, params: Params, draw=False, random_state=None) -> np.ndarray:
    """``X`` with each NaN replaced by its conditional mean given the row's observed
    coordinates under the mixture (``draw``: a draw from the conditional distribution).

    The conditional mean is ``sum_k p(k | x_o) E[x_m | x_o, k]``; a draw picks a
    component by ``p(k | x_o)``, then ``x_m ~ N(E[x_m | x_o, k], C_k)``.
    """
    model = _Model(params)
    out = np.array(X, dtype=np.float64)
    rows_nan = np.flatnonzero(np.isnan(out).any(axis=1))
    if not rows_nan.size:
        return out
    incomplete = out[rows_nan]
    for a, b in _blocks(incomplete.shape[0], model.rows):
        block = incomplete[a:b]
        for g in _groups(block, model):
            log_resp, _ = _log_resp(g.log_prob + model.log_weights[:, None])
            resp = np.exp(log_resp)  # (K, n)
            filled = g.resid + model.means[:, None, :]  # (K, n, D)
            if not draw:
                values = np.einsum("kn,knd->nd", resp, filled)
            else:
                u = random_state.uniform(size=resp.shape[1])
                comp = np.minimum((np.cumsum(resp, axis=0) < u).sum(axis=0), model.n_components - 1)
                n = np.arange(resp.shape[1])
                values = filled[comp, n].copy()
                chol = np.linalg.cholesky(g.cond_cov[comp, g.pattern])  # (n, q, q)
                noise = np.einsum("nij,nj->ni", chol,
                                  random_state.standard_normal(g.missing.shape))
                np.put_along_axis(values, g.missing,
                                  np.take_along_axis(values, g.missing, axis=1) + noise, axis=1)
            mask = np.isnan(block[g.rows])
            block_rows = block[g.rows]
            block_rows[mask] = values[mask]
            block[g.rows] = block_rows
        incomplete[a:b] = block
    out[rows_nan] = incomplete
    return out
