"""mclust's starting partitions: model-based agglomerative clustering and quantile classes.

mclust starts EM for G components from a hard partition. For multivariate data that is a
cut of a model-based agglomerative hierarchical clustering (Fraley 1998) run with the
unconstrained (VVV) criterion on the scaled SVD transform of the data, starting from
singletons; for univariate data it is a set of quantile classes. This module reproduces
both, merge for merge, so that EM starts where mclust's does.

The VVV criterion scores a cluster ``C`` of ``n`` points with scatter matrix ``W`` and
trace ``t`` as

    term(C) = n log( det(W / n) + beta (t + alpha) / n )

(``det`` taken as 0 while ``n <= d``, where the scatter is singular anyway), and each
step merges the pair of clusters whose merge increases the sum of terms the least.
``alpha`` is the total within sum of squares of ``Z / sqrt(n d)`` and ``beta = 1``, as in
mclust's ``hcVVV``. Ties are broken as mclust's Fortran does: its clusters live in slots,
a merge leaves the merged cluster in the lower slot and moves the last slot into the
upper one, and among equal costs the pair that comes last in column-major order of the
slot pairs wins. Merges are reported, as mclust reports them, by the smallest row index
of each cluster.

mclust's Fortran (``hcvvv``, mclust 4 to 6.1 at least) keeps a cluster's scatter as a
triangular factor stored in the rows of its members, and after a merge it copies the
factor's *first* row into every storage row (``dcopy(p, r(1,1), p, x(l,1), n)`` where
``r(k,k)`` was meant). Only the cluster just formed is scored with its true scatter, in
the search right after its merge; from then on it is read back as

    W' = (c c^T) * M,   c = W[0] / sqrt(W[0, 0]),   M[a, b] = min(a, b, r - 1) + 1

(0-based, ``r = min(n - 1, d)`` stored rows; ``W' = W`` while ``r = 1``). The two agree
in the first row and column only, so merges of two older clusters of three or more points
are scored on a different criterion than the formula above. :func:`hc` reproduces it
(:func:`stored_scatter`), scoring a pair when its younger cluster forms (with that one's
true scatter), as mclust does: with the exact criterion, 11 of 100 data sets of 1,000
rows in 14 elongated clusters took other merges than mclust late in the tree
(benchmarks/sweep_hc_vs_mclust.py).

When there are no more rows than columns mclust agglomerates with Ward's criterion
(its ``hcEII``: the increase of the within sum of squares) instead; so does :func:`hc`
with ``model_name="EII"``.

The search keeps the full (symmetric) matrix of merge costs and, for every column, its
minimum over the rows above the diagonal; a merge recomputes one row of costs (batched
determinants) and rescans only the columns whose minimum it touched. Memory is
O(n^2 + n d^2), time roughly O(n^2 d^3) plus the rescans (n = 2000, d = 6: about a
second, half of mclust's Fortran).

Costs computed with different rounding than mclust's (Givens-rotation updates of a
triangular factor, and a transform from another LAPACK) can order two merges differently
when their costs are equal in exact arithmetic but not in floating point (data on a
coarse grid); exact ties, such as those between duplicate rows, break as in mclust.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform

from gaussmix._mclust import hc_fast as _hc_fast
from gaussmix._first_run import announce

__all__ = [
    "hc",
    "hclass",
    "qclass",
    "scaled_svd_transform",
    "starting_partitions",
]

# mclust.options("subset"): the hierarchical stage runs on at most this many rows.
HC_SUBSET = 2000

BACKENDS = ("auto", "numba", "numpy")


def _compiled(backend) -> bool:
    """Whether ``backend`` means the compiled agglomeration; checks that it can run."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}."
        )
    if backend == "numba" and not _hc_fast.AVAILABLE:
        raise ValueError(
            "backend='numba' needs Numba, which is not installed; "
            "pip install gaussmix[fast] (or use backend='numpy')."
        )
    return backend == "numba" or (backend == "auto" and _hc_fast.AVAILABLE)


def scaled_svd_transform(X) -> np.ndarray:
    """mclust's ``hc(use = "SVD")`` transform of the data.

    The data are centred and scaled (standard deviation with ``n - 1``), columns that are
    not finite afterwards (constant columns) are dropped, and the result is rotated onto
    its right singular vectors and scaled by the inverse square roots of the singular
    values: ``Z = X_s V diag(1 / sqrt(s))``.

    Parameters
    ----------
    X : array-like of shape (n, d)

    Returns
    -------
    Z : ndarray of shape (n, r)
        ``r`` is the number of kept columns, less any direction with a zero singular
        value (mclust would divide by zero there; dropping it changes no merge cost,
        as the data have no spread along it).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n = X.shape[0]
    centred = X - X.mean(axis=0)
    # The squares scaled by a power of two per column, which is exact: the same
    # numbers as the plain formula, without overflow at large scales (1e160).
    _, exponent = np.frexp(np.abs(centred).max(axis=0, initial=0.0))
    unit = np.ldexp(1.0, exponent)
    sd = np.sqrt(((centred / unit) ** 2).sum(axis=0) / max(n - 1, 1)) * unit
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = centred / sd
    scaled = scaled[:, np.all(np.isfinite(scaled), axis=0)]
    if scaled.shape[1] == 0:
        return np.zeros((n, 0))
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    keep = s > s[0] * np.finfo(np.float64).eps * max(scaled.shape)
    return (scaled @ vt[keep].T) / np.sqrt(s[keep])


def stored_scatter(W, n_points):
    """The scatter mclust's ``hcvvv`` reads back for a cluster it formed earlier.

    Every stored row of the cluster's triangular factor is a copy of the first row ``c``
    (mclust's Fortran copies ``r(1,1)`` where it meant ``r(k,k)``), so row ``k`` reads
    back as ``c`` with its first ``k`` entries zeroed. The sum of their outer products is
    ``(c c^T) * M`` with ``M[a, b] = min(a, b, r - 1) + 1``, ``r = min(n - 1, d)`` rows.

    Parameters
    ----------
    W : ndarray of shape (d, d)
        The cluster's true scatter matrix.
    n_points : int
        Its number of points.

    Returns
    -------
    ndarray of shape (d, d)
        ``W`` itself while the factor has one row (two points, or ``d = 1``).
    """
    p = W.shape[0]
    rows = min(int(n_points) - 1, p)
    if rows <= 1:
        return W.copy()
    if not W[0, 0] > 0.0:  # no first pivot: the factor's first row is zero
        return np.zeros_like(W)
    c = W[0] / np.sqrt(W[0, 0])
    k = np.arange(p)
    mult = np.minimum(np.minimum.outer(k, k), rows - 1) + 1
    return np.outer(c, c) * mult


def _terms(n, trace, det, alpha, beta):
    """mclust's ``vvvtij``: the VVV criterion of clusters, vectorised."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = n * np.log(np.maximum(det, 0.0) + beta * (trace + alpha) / n)
        zero = trace == 0.0
        if np.any(zero):
            out = np.where(zero, n * np.log(alpha * beta / n), out)
    return out


def _initial_costs(Z, alpha, beta, criterion="VVV"):
    """Merge costs of every pair of singletons: an (n, n) matrix, inf on the diagonal.

    Two singletons: 2 log(beta (t + alpha) / 2) - 2 log(alpha beta), with t half the
    squared distance. Differences feature by feature (pdist) keep duplicate rows' costs
    bitwise equal, so their ties break exactly as mclust's do. Shared by the NumPy and
    the compiled agglomeration, so both start from the same bits.
    """
    sq = pdist(Z, "sqeuclidean")
    if criterion == "EII":  # Ward: the increase of the within sum of squares
        cost = squareform(0.5 * sq)
    else:
        cost = squareform(2.0 * np.log(beta * (0.5 * sq + alpha) / 2.0)
                          - 2.0 * np.log(alpha * beta))
    np.fill_diagonal(cost, np.inf)
    return cost


class _Agglomeration:
    """State of the agglomeration: cluster slots, merge costs, column minima."""

    def __init__(self, Z, alpha, beta, criterion="VVV"):
        n, p = Z.shape
        self.p = p
        self.criterion = criterion
        self.alpha, self.beta = alpha, beta
        self.count = np.ones(n)
        self.mean = Z.copy()
        self.trace = np.zeros(n)
        # Ward's criterion needs no scatter matrices (and n <= d may mean a big d).
        # ``scatter`` holds what mclust reads back (stored_scatter); the cluster formed
        # by the last merge also has its true scatter, used until the next merge.
        self.scatter = np.zeros((n, p, p) if criterion == "VVV" else (n, 0, 0))
        self.fresh_slot = -1
        self.fresh = np.zeros((p, p) if criterion == "VVV" else (0, 0))
        self.label = np.arange(n)
        self.ablog = np.log(alpha * beta)
        self.term = np.full(n, self.ablog)
        self.cost = _initial_costs(Z, alpha, beta, criterion)
        self.colmin = np.full(n, np.inf)
        self.colarg = np.zeros(n, dtype=np.intp)
        self.n_active = n
        if n > 1:
            self._rescan(np.arange(1, n))

    def _rescan(self, cols):
        """Minimum of each column in ``cols`` over the rows above the diagonal.

        Among equal values the last row wins (mclust scans with ``<=``).
        """
        cols = np.asarray(cols, dtype=np.intp)
        if cols.size == 0:
            return
        top = int(cols.max())
        # Blocks of columns keep the temporary small for the first, full rescan.
        block = max(1, 4_000_000 // max(top, 1))
        for start in range(0, cols.size, block):
            c = cols[start:start + block]
            rows = int(c.max())
            # The matrix is symmetric: read rows (contiguous), not columns.
            sub = self.cost[c, :rows]
            sub = np.where(np.arange(rows)[None, :] < c[:, None], sub, np.inf)
            last = rows - 1 - np.argmin(sub[:, ::-1], axis=1)
            self.colarg[c] = last
            self.colmin[c] = sub[np.arange(c.size), last]

    def best_pair(self):
        """The pair mclust merges next: (i, j), i < j, slot indices."""
        cm = self.colmin[1:self.n_active]
        j = self.n_active - 1 - int(np.argmin(cm[::-1]))
        return int(self.colarg[j]), j

    def _read(self, i):
        """Scatter of slot ``i`` as mclust sees it: true if formed by the last merge."""
        return self.fresh if i == self.fresh_slot else self.scatter[i]

    def _merged_costs(self, i):
        """Cost of merging slot ``i`` (just formed) with every active slot (``i``: inf)."""
        m = self.n_active
        ni = self.count[i]
        nk = self.count[:m]
        nik = ni + nk
        factor = ni * nk / nik
        delta = self.mean[i] - self.mean[:m]
        between = factor * np.einsum("ij,ij->i", delta, delta)
        if self.criterion == "EII":
            costs = between
            costs[i] = np.inf
            return costs
        trace = self.trace[i] + self.trace[:m] + between
        det = np.zeros(m)
        # det(W / n) enters only once a cluster has more points than dimensions; mclust
        # scores a pair of singletons by its trace alone whatever the dimension.
        big = (nik > self.p) & ~((ni == 1) & (nk == 1))
        big[i] = False
        if np.any(big):
            idx = np.flatnonzero(big)
            if ni > self.p:
                # A singleton joining cluster i: det(W_i + c d d^T) = det(W_i) (1 + c
                # d^T W_i^-1 d), one factorisation for all of them (if W_i is well
                # conditioned; otherwise the batched determinant below).
                single = nk[idx] == 1
                if np.count_nonzero(single) > 1:
                    chol = self._chol(i)
                    if chol is not None:
                        s_idx = idx[single]
                        y = np.linalg.solve(chol, delta[s_idx].T)
                        det_i = np.prod(np.diag(chol)) ** 2
                        quad = np.einsum("ij,ij->j", y, y)
                        det[s_idx] = (det_i * (1.0 + factor[s_idx] * quad)
                                      / nik[s_idx] ** self.p)
                        idx = idx[~single]
            if idx.size:
                d = delta[idx]
                W = self.scatter[idx]
                W += self._read(i)
                W += (d * factor[idx, None])[:, :, None] * d[:, None, :]
                det[idx] = np.linalg.det(W) / nik[idx] ** self.p
        term = _terms(nik, trace, det, self.alpha, self.beta)
        costs = term - (self.term[i] + self.term[:m])
        costs[i] = np.inf
        return costs

    def _chol(self, i):
        """Lower Cholesky factor of cluster i's scatter, or None if ill-conditioned."""
        try:
            chol = np.linalg.cholesky(self._read(i))
        except np.linalg.LinAlgError:
            return None
        diag = np.diag(chol)
        if not np.all(np.isfinite(diag)) or diag.min() <= 1e-4 * diag.max():
            return None
        return chol

    def merge(self, i, j):
        """Merge slots ``i < j`` the way mclust's Fortran lays them out afterwards."""
        m = self.n_active
        ni, nj = self.count[i], self.count[j]
        nij = ni + nj
        delta = self.mean[i] - self.mean[j]
        factor = ni * nj / nij
        new_scatter = self._read(i) + self._read(j)
        if self.criterion == "VVV":
            new_scatter += factor * np.outer(delta, delta)
        new_trace = self.trace[i] + self.trace[j] + factor * float(delta @ delta)
        new_mean = (ni * self.mean[i] + nj * self.mean[j]) / nij
        # The cluster's term, as the chosen cost plus the two merged terms (as mclust).
        new_term = self.cost[i, j] + self.term[i] + self.term[j]
        new_label = min(self.label[i], self.label[j])

        last = m - 1
        if j != last:  # the last slot moves into slot j
            for arr in (self.count, self.mean, self.trace, self.scatter, self.term,
                        self.label):
                arr[j] = arr[last]
            self.cost[j, :m] = self.cost[last, :m]
            self.cost[:m, j] = self.cost[:m, last]
            self.cost[j, j] = np.inf
        self.count[i], self.mean[i], self.trace[i] = nij, new_mean, new_trace
        self.term[i], self.label[i] = new_term, new_label
        self.scatter[i] = stored_scatter(new_scatter, nij)
        self.fresh_slot, self.fresh = i, new_scatter
        self.n_active = m = m - 1
        if m < 2:
            return

        costs = self._merged_costs(i)
        self.cost[i, :m] = costs
        self.cost[:m, i] = costs

        # Column i is new: its minimum comes straight from the new costs. Columns whose
        # minimum sat on a changed row (i, or j whose slot now holds another cluster)
        # and column j are rescanned; any other column can only have gained a smaller
        # (or an equal, later) entry on row i or j.
        colmin, colarg = self.colmin, self.colarg
        if i >= 1:
            last = i - 1 - int(np.argmin(costs[i - 1::-1]))
            colmin[i], colarg[i] = costs[last], last
        ca = colarg[:m]
        stale = (ca == i)
        if j < m:
            stale |= (ca == j)
            stale[j] = True
        stale[: i + 1] = False
        stale[j:j + 1] = j < m
        for r in ((i, j) if j < m else (i,)):
            v = self.cost[r, r + 1:m]
            cm, cr = colmin[r + 1:m], colarg[r + 1:m]
            better = ((v < cm) | ((v == cm) & (r > cr))) & ~stale[r + 1:m]
            cm[better] = v[better]
            cr[better] = r
        self._rescan(np.flatnonzero(stale))


def hc(Z, model_name="VVV", *, alpha=1.0, beta=1.0, n_merges=None,
       backend="auto") -> np.ndarray:
    """Model-based agglomerative hierarchical clustering, from singletons.

    The equivalent of mclust's ``hcVVV(Z)`` (or ``hcEII(Z)``, Ward's criterion, which
    mclust uses when there are no more rows than columns).

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The data to agglomerate (mclust runs it on :func:`scaled_svd_transform` of X).
    model_name : {"VVV", "EII"}, default="VVV"
    alpha, beta : float, default=1
        VVV only: mclust's ``alpha`` (scaled by the total within sum of squares of
        ``Z / sqrt(n d)``) and ``beta``.
    n_merges : int, optional
        Stop after this many merges (default: ``n - 1``, down to one cluster).
    backend : {"auto", "numba", "numpy"}, default="auto"
        How the VVV agglomeration runs: "numba" compiled (:mod:`gaussmix._mclust.hc_fast`,
        needs Numba: ``pip install gaussmix[fast]``), "numpy" the NumPy reference,
        "auto" compiled when Numba is importable and NumPy otherwise. Both give the
        same merges. Ward's criterion (``"EII"``) always runs in NumPy.

    Returns
    -------
    pairs : ndarray of shape (n_merges, 2), int
        Merge ``k`` joins the clusters whose smallest row indices (0-based) are
        ``pairs[k, 0] < pairs[k, 1]``: mclust's ``hcPairs``, transposed, less one.

    Raises
    ------
    ValueError
        For an unknown ``model_name`` or ``backend``, ``backend="numba"`` without
        Numba, or data with NaN or infinite values.
    """
    from .._validation import check_int, check_real

    if not isinstance(model_name, str) or model_name not in ("VVV", "EII"):
        raise ValueError(f"hc: model_name must be 'VVV' or 'EII', got {model_name!r}.")
    alpha = check_real(alpha, "hc: alpha", minimum=0.0, inclusive=False)
    beta = check_real(beta, "hc: beta", minimum=0.0, inclusive=False)
    n_merges = check_int(n_merges, "hc: n_merges", minimum=0, allow_none=True)
    compiled = _compiled(backend)
    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("hc: Z must be a numeric array of shape (n, d).") from None
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2:
        raise ValueError(f"hc: Z must be a 1-D or 2-D array, got {Z.ndim} dimensions.")
    n, p = Z.shape
    if not np.all(np.isfinite(Z)):
        raise ValueError("hc: the data contain NaN or infinite values.")
    if p == 0 and n > 1:
        raise ValueError("hc: Z has no columns (scaled_svd_transform of data whose "
                         "rows are all equal); there is nothing to agglomerate.")
    total = n - 1 if n_merges is None else min(n_merges, n - 1)
    if total <= 0:
        return np.zeros((0, 2), dtype=np.intp)
    scaled = Z / np.sqrt(n * max(p, 1))
    within = float(((scaled - scaled.mean(axis=0)) ** 2).sum())
    alpha = max(alpha * within, np.finfo(np.float64).eps)
    if model_name == "VVV" and compiled:
        # The same search compiled (Numba): one call instead of ~150 us per merge.
        cost = _initial_costs(Z, alpha, beta, "VVV")
        announce(_hc_fast._agglomerate)  # a cold cache: say so before compiling
        return _hc_fast.agglomerate_vvv(Z, cost, alpha, beta, float(np.log(alpha * beta)),
                                        total)
    state = _Agglomeration(Z, alpha, beta, model_name)
    pairs = np.empty((total, 2), dtype=np.intp)
    for step in range(total):
        i, j = state.best_pair()
        a, b = state.label[i], state.label[j]
        pairs[step] = (a, b) if a < b else (b, a)
        state.merge(i, j)
    return pairs


def hclass(pairs, n, G) -> np.ndarray:
    """The partition into ``G`` clusters of a merge sequence (mclust's ``hclass``).

    Parameters
    ----------
    pairs : ndarray of shape (m, 2)
        Merges as returned by :func:`hc` (smallest row index of each cluster).
    n : int
        Number of rows.
    G : int
        Number of clusters, ``n - m <= G <= n``.

    Returns
    -------
    labels : ndarray of shape (n,), int
        0-based cluster labels numbered in order of first appearance (mclust's
        ``partconv(consec = TRUE)``, less one).
    """
    pairs = np.asarray(pairs, dtype=np.intp)
    n_merges = n - int(G)
    if n_merges < 0 or n_merges > len(pairs):
        raise ValueError(
            f"No classification with {G} clusters: the merge sequence goes from {n} "
            f"down to {n - len(pairs)} clusters."
        )
    parent = np.arange(n)
    if n_merges:
        chosen = pairs[:n_merges]
        parent[chosen[:, 1]] = chosen[:, 0]
    # Pointer jumping: every row reaches its cluster's smallest index.
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    return _consecutive(parent)


def _consecutive(labels) -> np.ndarray:
    """Relabel 0.. in order of first appearance."""
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)
    return rank[inverse.ravel()]


def _r_quantile7(sorted_x, probs):
    """R's ``quantile(type = 7)`` on sorted data, with R's arithmetic."""
    n = sorted_x.size
    index = 1.0 + (n - 1) * probs
    lo = np.floor(index).astype(np.intp)
    hi = np.ceil(index).astype(np.intp)
    qs = sorted_x[lo - 1]
    x_hi = sorted_x[hi - 1]
    h = index - lo
    interp = (index > lo) & (x_hi != qs)
    return np.where(interp, (1.0 - h) * qs + h * x_hi, qs)


def _r_seq01(length):
    """R's ``seq(0, 1, length = length)``."""
    if length <= 2:
        return np.array([0.0, 1.0])[:length]
    n1 = length - 1
    return np.concatenate([[0.0], np.arange(1, n1) * (1.0 / n1), [1.0]])


def qclass(x, k) -> np.ndarray:
    """Quantile classes of univariate data: mclust's ``qclass(x, k)``, 0-based.

    Parameters
    ----------
    x : array-like of shape (n,)
    k : int
        Number of classes.

    Returns
    -------
    labels : ndarray of shape (n,), int
        Class ``i`` holds the values between the ``i``-th and ``(i+1)``-th of ``k + 1``
        distinct quantiles (the closest quantiles merged away when there are more).
        A row in no class (only possible with very few distinct values) gets -1.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    k = int(k)
    n_distinct = np.unique(x).size
    if k > n_distinct:
        raise ValueError(f"qclass: {k} classes asked of {n_distinct} distinct values.")
    sorted_x = np.sort(x)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    eps = sd * np.sqrt(np.finfo(np.float64).eps)
    q = np.array([np.nan])
    m = k
    while q.size < k + 1:
        m += 1
        q = _r_quantile7(sorted_x, _r_seq01(m))
        _, first = np.unique(q, return_index=True)
        q = q[np.sort(first)]  # R's unique keeps the first occurrences, in order
    if q.size > k + 1:
        dq = np.diff(q)
        drop = np.argsort(dq, kind="stable")[: q.size - k - 1]
        q = np.delete(q, drop)
    # The outer bounds just beyond the data, also where eps is below the spacing of
    # the floats there (large values, e.g. x + 1e9: mclust's bounds would equal the
    # extremes and leave the largest value in no class).
    q[0] = min(x.min() - eps, np.nextafter(x.min(), -np.inf))
    q[-1] = max(x.max() + eps, np.nextafter(x.max(), np.inf))
    labels = np.full(x.size, -1, dtype=np.intp)
    for i in range(k):
        labels[(x >= q[i]) & (x < q[i + 1])] = i
    return labels


def starting_partitions(X, G, backend="auto") -> dict:
    """mclust's default starting partitions of X for each number of components in G.

    Multivariate data: VVV agglomeration on the scaled SVD transform (Ward's criterion,
    mclust's EII, when there are no more rows than columns), cut at each G.
    Univariate data: quantile classes. (mclust runs this on a random subset of 2000
    rows when there are more; pass the subset's rows.)

    Parameters
    ----------
    X : array-like of shape (n, d)
    G : iterable of int
        Numbers of components; 1 gives one class.
    backend : {"auto", "numba", "numpy"}, default="auto"
        How the agglomeration runs; passed to :func:`hc` (which documents the
        choices). Unused for univariate data, but checked all the same.

    Returns
    -------
    dict int -> ndarray of shape (n,), int
        0-based labels numbered in order of first appearance, for each G (for
        univariate data, none for a G above the number of distinct values).
    """
    _compiled(backend)  # a bad backend is an error whatever the data
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n, d = X.shape
    wanted = sorted({int(g) for g in G})
    if wanted and (wanted[0] < 1 or wanted[-1] > n):
        raise ValueError(f"G must lie in [1, {n}], got {wanted}.")
    parts = {}
    if not wanted:
        return parts
    if d == 1:
        n_distinct = np.unique(X[:, 0]).size
        for g in wanted:  # no partition into more classes than distinct values
            if g <= n_distinct:
                parts[g] = qclass(X[:, 0], g) if g > 1 else np.zeros(n, dtype=np.intp)
        return parts
    Z = scaled_svd_transform(X)
    if Z.shape[1] == 0:  # every row the same: no partition into several classes
        return {g: np.zeros(n, dtype=np.intp) for g in wanted if g == 1}
    pairs = hc(Z, "VVV" if n > d else "EII", n_merges=n - wanted[0], backend=backend)
    # Cut once, at the largest G, then merge on down (an O(n) step, where each cut
    # costs a sort): the merge into g - 1 clusters joins the clusters whose smallest
    # rows are a < b, so b's label goes and the labels after it move down by one,
    # which keeps hclass's numbering by first appearance.
    g = wanted[-1]
    labels = hclass(pairs, n, g)
    for target in reversed(wanted):
        while g > target:
            a, b = pairs[n - g]
            first, gone = labels[a], labels[b]
            labels = np.where(labels == gone, first, labels)
            labels[labels > gone] -= 1
            g -= 1
        parts[target] = labels
    return parts
