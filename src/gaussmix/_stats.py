"""Additive sufficient statistics of a weighted Gaussian mixture E-step.

One pass of the E-step over a chunk of rows leaves, per component, the weight sum
``n_k``, the weighted mean and the weighted scatter about that mean. Statistics of two
disjoint chunks combine exactly (up to rounding) with Chan's pairwise rule, so a fit can be
summed over chunks, files, threads or cluster workers in any order.

Three scatter layouts serve every covariance model:

* ``"full"``: ``(K, D, D)``, one scatter matrix per component;
* ``"diag"``: ``(K, D)``, the diagonal of each component's scatter;
* ``"tied"``: ``(D, D)``, the pooled within-component scatter ``sum_k W_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SCATTER_KINDS = ("full", "diag", "tied")


@dataclass(frozen=True)
class SuffStats:
    """Sufficient statistics of one or more chunks of weighted rows.

    Attributes
    ----------
    nk : ndarray of shape (K,)
        Responsibility-weighted row count of each component.
    means : ndarray of shape (K, D)
        Weighted mean of each component (arbitrary where ``nk == 0``).
    scatter : ndarray
        Weighted scatter about ``means`` in the layout named by ``kind``.
    kind : {"full", "diag", "tied"}
        Scatter layout.
    loglik : float
        Sum over rows of ``weight * log p(x)`` under the parameters of the E-step
        (0 for statistics built from given responsibilities).
    weight : float
        Total row weight.
    n_rows : int
        Number of rows with a positive weight.
    worst_loglik, worst_row :
        The row the parameters explain worst and its log-density; used to re-seed a
        component that has emptied. ``worst_row`` is None when unknown.
    """

    nk: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    kind: str
    loglik: float = 0.0
    weight: float = 0.0
    n_rows: int = 0
    worst_loglik: float = np.inf
    worst_row: np.ndarray | None = None

    @property
    def mean_loglik(self) -> float:
        """Weighted mean log-likelihood per row."""
        return self.loglik / self.weight

    def __add__(self, other: "SuffStats") -> "SuffStats":
        if self.kind != other.kind:
            raise ValueError(f"cannot add {self.kind!r} and {other.kind!r} statistics")
        na, nb = self.nk, other.nk
        n = na + nb
        # Chan et al.: merge means and scatters about each side's own mean.
        frac_b = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
        delta = other.means - self.means
        means = self.means + delta * frac_b[:, None]
        cross = na * frac_b  # = na * nb / n
        if self.kind == "full":
            scatter = self.scatter + other.scatter
            scatter += cross[:, None, None] * delta[:, :, None] * delta[:, None, :]
        elif self.kind == "diag":
            scatter = self.scatter + other.scatter + cross[:, None] * delta**2
        else:
            scatter = self.scatter + other.scatter + (delta * cross[:, None]).T @ delta
        if other.worst_loglik < self.worst_loglik:
            worst = (other.worst_loglik, other.worst_row)
        else:
            worst = (self.worst_loglik, self.worst_row)
        return SuffStats(
            nk=n,
            means=means,
            scatter=scatter,
            kind=self.kind,
            loglik=self.loglik + other.loglik,
            weight=self.weight + other.weight,
            n_rows=self.n_rows + other.n_rows,
            worst_loglik=worst[0],
            worst_row=worst[1],
        )

    def with_component(self, k: int, nk: float, mean, scatter) -> "SuffStats":
        """Return a copy with component ``k`` replaced (used to re-seed)."""
        nks, means = self.nk.copy(), self.means.copy()
        nks[k], means[k] = nk, mean
        new_scatter = self.scatter.copy()
        if self.kind == "tied":
            new_scatter += scatter
        else:
            new_scatter[k] = scatter
        return replace(self, nk=nks, means=means, scatter=new_scatter)


def empty_stats(n_components: int, n_features: int, kind: str) -> SuffStats:
    """Statistics of no rows: the identity of ``+``."""
    shape = {
        "full": (n_components, n_features, n_features),
        "diag": (n_components, n_features),
        "tied": (n_features, n_features),
    }[kind]
    return SuffStats(
        nk=np.zeros(n_components),
        means=np.zeros((n_components, n_features)),
        scatter=np.zeros(shape),
        kind=kind,
    )


def stats_from_resp(X, resp_w, kind, centers=None) -> SuffStats:
    """Statistics of one chunk from its (weighted) responsibilities.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
        The chunk.
    resp_w : ndarray of shape (n, K), same dtype as X
        Responsibilities already multiplied by the row weights.
    kind : {"full", "diag", "tied"}
        Scatter layout to produce.
    centers : ndarray of shape (K, D), optional
        Per-component shift for the "full" layout, normally the current means: the
        scatter is accumulated about a point close to the new mean, so no digits are
        lost when the data sit far from the origin. Other layouts (and "full" without
        centers) shift by the chunk's own mean.

    Returns
    -------
    SuffStats
        ``loglik`` and ``weight`` are left for the caller to fill in.
    """
    n_components = resp_w.shape[1]
    nk = resp_w.sum(axis=0, dtype=np.float64)
    safe_nk = np.where(nk > 0, nk, 1.0)
    if kind == "full" and centers is not None:
        shifts = np.asarray(centers, dtype=np.float64)
        sums = np.empty((n_components, X.shape[1]))
        scatter = np.empty((n_components, X.shape[1], X.shape[1]))
        for k in range(n_components):
            diff = X - shifts[k].astype(X.dtype)
            weighted = diff * resp_w[:, k : k + 1]
            sums[k] = weighted.sum(axis=0, dtype=np.float64)
            scatter[k] = weighted.T @ diff
        mean_offset = sums / safe_nk[:, None]
        scatter -= nk[:, None, None] * mean_offset[:, :, None] * mean_offset[:, None, :]
        means = shifts + mean_offset
    else:
        shift = X.mean(axis=0, dtype=np.float64)
        Xc = X - shift.astype(X.dtype)
        sums = (resp_w.T @ Xc).astype(np.float64)
        mean_offset = sums / safe_nk[:, None]
        if kind == "diag":
            scatter = (resp_w.T @ (Xc * Xc)).astype(np.float64)
            scatter -= nk[:, None] * mean_offset**2
            np.maximum(scatter, 0.0, out=scatter)  # rounding must not make it negative
        elif kind == "tied":
            row_w = resp_w.sum(axis=1)
            scatter = ((Xc * row_w[:, None]).T @ Xc).astype(np.float64)
            scatter -= (mean_offset * nk[:, None]).T @ mean_offset
        else:  # "full" without centers: per component, about the chunk mean
            scatter = np.empty((n_components, X.shape[1], X.shape[1]))
            for k in range(n_components):
                scatter[k] = (Xc * resp_w[:, k : k + 1]).T @ Xc
            scatter -= nk[:, None, None] * mean_offset[:, :, None] * mean_offset[:, None, :]
        means = shift + mean_offset
    empty = nk <= 0
    if empty.any():
        means[empty] = 0.0
        if kind != "tied":
            scatter[empty] = 0.0
    return SuffStats(nk=nk, means=means, scatter=scatter, kind=kind)
