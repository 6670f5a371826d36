"""mclust's starting partitions: hierarchical agglomeration and quantile classes.

References: mclust 6.0.0's own merge sequences and partitions (iris, faithful, the data
in tests/data/mclust_extra and the regression cases in tests/data/hc_regressions), a slow
agglomeration written straight from the definition of the VVV criterion (with mclust's
read-back of older clusters' scatter), a QR factor of the points for that read-back, and
SciPy's Ward linkage for the EII criterion.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from mclust_reference import MCLUST_REFERENCE

from gaussmix._mclust.hc import (
    hc,
    hclass,
    qclass,
    scaled_svd_transform,
    starting_partitions,
    stored_scatter,
)

EXTRA = Path(__file__).parent / "data" / "mclust_extra"
REGRESSIONS = Path(__file__).parent / "data" / "hc_regressions"


def _shared(name):
    return MCLUST_REFERENCE / name


def _same_partition(a, b):
    """Equal up to a relabelling."""
    a, b = np.asarray(a), np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("name", ["iris", "faithful"])
def test_merges_and_partitions_equal_mclust(name):
    X = pd.read_csv(_shared(f"{name}.csv")).select_dtypes("number").to_numpy()
    ref_pairs = pd.read_csv(_shared(f"{name}_hcPairs_VVV_SVD.csv")).to_numpy() - 1
    ref_class = pd.read_csv(_shared(f"{name}_hclass_VVV_SVD_G1to9.csv")).to_numpy() - 1
    pairs = hc(scaled_svd_transform(X), "VVV")
    np.testing.assert_array_equal(pairs, ref_pairs)
    parts = starting_partitions(X, range(1, 10))
    for G in range(1, 10):
        # mclust numbers the clusters by first appearance: labels equal exactly.
        np.testing.assert_array_equal(hclass(pairs, len(X), G), ref_class[:, G - 1])
        np.testing.assert_array_equal(parts[G], ref_class[:, G - 1])


def _rows(name, n):
    rows = np.arange(n)
    if name == "big2d":
        rows = pd.read_csv(EXTRA / "big2d_subset.csv")["row"].to_numpy() - 1
    if name == "noise2d":
        noise = pd.read_csv(EXTRA / "noise2d_noise_rows.csv")["row"].to_numpy() - 1
        rows = np.setdiff1d(rows, noise)
    return rows


@pytest.mark.parametrize("name", ["diabetes", "banknote", "mix3d", "noise2d", "big2d"])
def test_merges_equal_mclust_on_other_data(name):
    X = pd.read_csv(EXTRA / f"{name}.csv").to_numpy(dtype=float)
    rows = _rows(name, len(X))
    ref = pd.read_csv(EXTRA / f"{name}_hcPairs.csv").to_numpy() - 1
    n_merges = len(ref) if len(rows) <= 500 else 400  # the first 400 merges of 2000 rows
    pairs = hc(scaled_svd_transform(X[rows]), "VVV", n_merges=n_merges)
    np.testing.assert_array_equal(pairs, ref[:n_merges])


def test_ward_start_when_no_more_rows_than_columns():
    X = pd.read_csv(EXTRA / "wide.csv").to_numpy(dtype=float)
    ref = pd.read_csv(EXTRA / "wide_hcPairs_EII.csv").to_numpy() - 1
    np.testing.assert_array_equal(hc(scaled_svd_transform(X), "EII"), ref)
    parts = starting_partitions(X, [2, 3, 4])  # n <= d: mclust's hcEII
    for G in (2, 3, 4):
        np.testing.assert_array_equal(parts[G], hclass(ref, len(X), G))


def test_partitions_merged_down_equal_each_cut():
    # starting_partitions cuts once and merges on down; hclass cuts at each G
    X = np.random.default_rng(5).normal(size=(80, 3))
    G = [12, 2, 7, 3, 1, 40]
    parts = starting_partitions(X, G)
    pairs = hc(scaled_svd_transform(X), "VVV")
    assert sorted(parts) == sorted(G)
    for g in G:
        np.testing.assert_array_equal(parts[g], hclass(pairs, len(X), g))


def test_ward_partitions_equal_scipy():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(60, 3))
    pairs = hc(Z, "EII")
    tree = linkage(Z, method="ward")
    for G in range(1, 12):
        assert _same_partition(hclass(pairs, len(Z), G),
                               fcluster(tree, G, criterion="maxclust"))


# ----------------------------------------------------- slow reference, from the definition
def _term(n, W, trace, alpha, p):
    """mclust's VVV term of one cluster: n log(det(W/n) + (tr W + alpha)/n)."""
    det = np.linalg.det(W / n) if n > p else 0.0
    if trace == 0:
        return n * np.log(alpha / n)
    return n * np.log(max(det, 0.0) + (trace + alpha) / n)


def _read_back(W, n):
    """What mclust's hcvvv reads back: every stored factor row a copy of the first."""
    p = len(W)
    if min(n - 1, p) <= 1:
        return W
    first = W[0] / np.sqrt(W[0, 0])
    rows = [np.where(np.arange(p) >= k, first, 0.0) for k in range(min(n - 1, p))]
    return sum(np.outer(r, r) for r in rows)


def _slow_hc(Z, mclust_read_back=True):
    """Every pair scored from scratch. A cluster keeps its points, its scatter, its term
    and when it was formed. With ``mclust_read_back`` (False: the exact criterion), as in
    mclust's hcvvv: a pair is scored when its younger cluster forms, so with the younger
    one's scatter and the older one's :func:`_read_back`; a merge adds the read-back
    scatters, but the true one of the cluster formed by the last merge; the new term is
    the pair's cost plus the two terms."""
    n, p = Z.shape
    scaled = Z / np.sqrt(n * p)
    alpha = ((scaled - scaled.mean(axis=0)) ** 2).sum()
    clusters = [dict(rows=[i], W=np.zeros((p, p)), term=np.log(alpha), formed=0)
                for i in range(n)]
    merges = []

    def seen(c, true):
        return c["W"] if true or not mclust_read_back else _read_back(c["W"], len(c["rows"]))

    def joined(A, B, true_a, true_b):
        na, nb = len(A["rows"]), len(B["rows"])
        delta = Z[A["rows"]].mean(axis=0) - Z[B["rows"]].mean(axis=0)
        return seen(A, true_a) + seen(B, true_b) + na * nb / (na + nb) * np.outer(delta, delta)

    for step in range(1, n):
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                A, B = clusters[a], clusters[b]
                W = joined(A, B, A["formed"] >= B["formed"], B["formed"] >= A["formed"])
                points = Z[A["rows"] + B["rows"]]
                trace = ((points - points.mean(axis=0)) ** 2).sum()
                cost = _term(len(points), W, trace, alpha, p) - A["term"] - B["term"]
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        cost, a, b = best
        A, B = clusters[a], clusters[b]
        merges.append(sorted((min(A["rows"]), min(B["rows"]))))
        W = joined(A, B, A["formed"] == step - 1, B["formed"] == step - 1)
        clusters[a] = dict(rows=A["rows"] + B["rows"], W=W, formed=step,
                           term=cost + A["term"] + B["term"])
        del clusters[b]
    return np.array(merges)


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_slow_definition(seed):
    rng = np.random.default_rng(seed)
    Z = np.vstack([rng.normal(size=(14, 3)), rng.normal(size=(12, 3)) * 0.5 + 2])
    np.testing.assert_array_equal(hc(Z, "VVV"), _slow_hc(Z))


def _regression(name):
    X = pd.read_csv(REGRESSIONS / f"{name}.csv").to_numpy(dtype=float)
    return X, pd.read_csv(REGRESSIONS / f"{name}_hcPairs.csv").to_numpy() - 1


@pytest.mark.parametrize("seed", [233, 345])
def test_mclust_reads_older_clusters_back_through_a_corrupted_factor(seed):
    # On these data the exact criterion merges differently from mclust; the slow
    # definition with mclust's read-back gives mclust's merges, and so does hc.
    X, ref = _regression(f"readback_{seed}")
    Z = scaled_svd_transform(X)
    assert not np.array_equal(_slow_hc(Z, mclust_read_back=False), ref)
    np.testing.assert_array_equal(_slow_hc(Z), ref)
    np.testing.assert_array_equal(hc(Z, "VVV", backend="numpy"), ref)


def _regression_names(prefix=""):
    names = sorted(p.name[:-len("_hcPairs.csv")] for p in REGRESSIONS.glob("*_hcPairs.csv"))
    if prefix:
        return [n for n in names if n.startswith(prefix)]
    return [n for n in names if not n.startswith("tie_")]  # ties: see below


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", _regression_names())
def test_regression_cases_merge_as_mclust(name, backend):
    X, ref = _regression(name)
    np.testing.assert_array_equal(hc(scaled_svd_transform(X), "VVV", backend=backend), ref)


def test_ring_bic_cells_equal_mclust():
    # 14 elongated clusters on a circle: before the read-back the G = 8 and 9 starts
    # differed from mclust's, and with them every model's BIC there.
    from gaussmix import select

    X, _ = _regression("ring")
    ref = pd.read_csv(REGRESSIONS / "ring_BIC.csv", index_col=0).loc[[8, 9]]
    bic = select(X, G=[8, 9], n_jobs=1).bic.reindex(index=ref.index, columns=ref.columns)
    np.testing.assert_array_equal(bic.isna().to_numpy(), ref.isna().to_numpy())
    np.testing.assert_allclose(bic.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", _regression_names("tie_"))
def test_grid_ties_are_the_only_merges_that_differ(name):
    # Data rounded to a grid (the sweep's failures): pairs equally far apart in exact
    # arithmetic, which R's and NumPy's SVD transforms round differently. Up to the first
    # such tie the merges are mclust's; there mclust's pair costs what ours does.
    from gaussmix._mclust.hc import _Agglomeration

    X, ref = _regression(name)
    Z = scaled_svd_transform(X)
    n, p = Z.shape
    scaled = Z / np.sqrt(n * p)
    state = _Agglomeration(Z, float(((scaled - scaled.mean(axis=0)) ** 2).sum()), 1.0)
    for step in range(n - 1):
        i, j = state.best_pair()
        ours = sorted((state.label[i], state.label[j]))
        if ours != list(ref[step]):
            slots = [list(state.label[:state.n_active]).index(r) for r in ref[step]]
            theirs = state.cost[min(slots), max(slots)]
            np.testing.assert_allclose(theirs, state.cost[i, j], rtol=1e-13, atol=0)
            break
        state.merge(i, j)
    else:
        pytest.fail("no merge differs: the case no longer shows a tie")
    if name == "tie_set0078":  # the tie is far from the top: the starts are mclust's
        pairs = hc(Z, "VVV")
        for G in range(2, 10):
            np.testing.assert_array_equal(hclass(pairs, n, G), hclass(ref, n, G))


EM_CASES = {  # the sweep's BIC cells that differ with mclust's merges (not the start)
    "em_eev_set0053": [("EEV", 7)],  # ours stops after 2 iterations, 250 BIC units below
    "em_vee_na_set0167": [("VEE", 4)],  # mclust: NA; ours: a fit after 2 iterations
}


def _bic_against_mclust(name):
    from gaussmix import select

    X, _ = _regression(name)
    ref = pd.read_csv(REGRESSIONS / f"{name}_BIC.csv", index_col=0)
    ref.columns = ref.columns.astype(str)
    bic = select(X, n_jobs=1).bic.reindex(index=ref.index, columns=ref.columns)
    return bic, ref


@pytest.mark.parametrize("name", sorted(EM_CASES))
def test_em_cases_other_cells_equal_mclust(name):
    bic, ref = _bic_against_mclust(name)
    for model, G in EM_CASES[name]:
        bic.loc[G, model] = ref.loc[G, model] = 0.0  # the known cells, below
    np.testing.assert_array_equal(bic.isna().to_numpy(), ref.isna().to_numpy())
    np.testing.assert_allclose(bic.to_numpy(), ref.to_numpy(), rtol=0, atol=0.01)


@pytest.mark.xfail(strict=True, reason="EM cells that differ from mclust on the sweep's "
                   "data (issue 16's sweep; _mclust/em.py and _models, not the hc start)")
@pytest.mark.parametrize("name", ["em_eev_set0053"])
def test_em_cases_known_cells_equal_mclust(name):
    bic, ref = _bic_against_mclust(name)
    for model, G in EM_CASES[name]:
        a, b = bic.loc[G, model], ref.loc[G, model]
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 0.01, (model, G, a, b)


def test_em_vee_na_set0167_starts_with_singular_scatters():
    # Its VEE cell at G = 4 (mclust: NA) is decided by rounding, as thyroid's VEE 9:
    # two classes of the start have 8 rows in 8 dimensions, scatters of rank 7, and
    # VEE's Cholesky test of them passes or fails by their last bits. gaussmix gave a
    # fit there until the compiled E-step's sums changed order (both backends now NA,
    # as mclust; on another machine either may flip).
    from gaussmix._mclust.hc import starting_partitions

    X, _ = _regression("em_vee_na_set0167")
    labels = np.asarray(starting_partitions(X, [4])[4])
    small = np.flatnonzero(np.bincount(labels) <= X.shape[1])
    assert small.size == 2
    for k in small:
        rows = X[labels == k]
        s = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
        assert s[-1] / s[0] < 1e-12


@pytest.mark.parametrize("n", [3, 4, 40])
def test_stored_scatter_is_the_first_factor_row_in_every_stored_row(n):
    # mclust's factor R (R^T R = W) from a QR of the centred points; it stores R's first
    # row in each of its min(n - 1, d) rows, row k read from column k on.
    rng = np.random.default_rng(n)
    points = rng.normal(size=(n, 5)) @ rng.normal(size=(5, 5))
    centred = points - points.mean(axis=0)
    R = np.linalg.qr(centred, mode="r")
    W = centred.T @ centred
    stored = np.zeros((min(n - 1, 5), 5))
    for k in range(len(stored)):
        stored[k, k:] = R[0, k:]
    np.testing.assert_allclose(stored_scatter(W, n), stored.T @ stored, rtol=1e-12,
                               atol=1e-12 * np.abs(W).max())
    np.testing.assert_array_equal(stored_scatter(W[:1, :1], n), W[:1, :1])  # d = 1
    np.testing.assert_array_equal(stored_scatter(W, 2), W)  # two points: one row


def test_duplicate_rows_merge_first_with_mclusts_tie_break():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(30, 2))
    Z[7] = Z[3]
    Z[21] = Z[3]
    pairs = hc(Z, "VVV")
    # Three equal costs: mclust takes the last pair in column-major order, (7, 21),
    # then joins 3 (its hcVVV gives exactly these first merges on this data).
    np.testing.assert_array_equal(pairs[:2], [[7, 21], [3, 7]])


# --------------------------------------------------------------------------- transform
def test_svd_transform_is_whitened_rotation_of_the_standardised_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3)) @ [[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.2]] + 5
    X = np.column_stack([X, np.full(80, 7.0)])  # a constant column is dropped
    Z = scaled_svd_transform(X)
    Xs = (X[:, :3] - X[:, :3].mean(axis=0)) / X[:, :3].std(axis=0, ddof=1)
    singular = np.linalg.svd(Xs, compute_uv=False)
    assert Z.shape == (80, 3)
    # Z^T Z = diag(singular values), and pairwise distances are those of Xs V D^(-1/2).
    np.testing.assert_allclose(Z.T @ Z, np.diag(singular), atol=1e-10)
    np.testing.assert_allclose(np.abs(Z.sum(axis=0)), 0.0, atol=1e-10)


def test_hclass_validates_G():
    pairs = hc(np.random.default_rng(0).normal(size=(10, 2)), "VVV", n_merges=5)
    with pytest.raises(ValueError, match="No classification"):
        hclass(pairs, 10, 3)  # needs 7 merges
    assert len(set(hclass(pairs, 10, 5))) == 5
    np.testing.assert_array_equal(hclass(pairs, 10, 10), np.arange(10))


def test_backend_argument(monkeypatch):
    from gaussmix._mclust import hc_fast

    Z = np.random.default_rng(3).normal(size=(25, 2))
    np.testing.assert_array_equal(hc(Z, backend="numpy"), hc(Z))
    with pytest.raises(ValueError, match="backend must be one of"):
        hc(Z, backend="fortran")
    monkeypatch.setattr(hc_fast, "AVAILABLE", False)  # as without Numba
    np.testing.assert_array_equal(hc(Z), hc(Z, backend="numpy"))
    for call in (lambda: hc(Z, backend="numba"),
                 lambda: starting_partitions(Z[:, 0], [2], backend="numba")):
        with pytest.raises(ValueError, match=r"pip install gaussmix\[fast\]"):
            call()


# ------------------------------------------------------------------------------ qclass
def test_qclass_equals_mclust():
    x = pd.read_csv(EXTRA / "mix1d.csv")["x1"].to_numpy()
    ref = pd.read_csv(EXTRA / "mix1d_qclass_G2to9.csv").to_numpy() - 1
    for k in range(2, 10):
        np.testing.assert_array_equal(qclass(x, k), ref[:, k - 2])
    ties = np.round(x)
    ref = pd.read_csv(EXTRA / "mix1d_round_qclass_G2to6.csv").to_numpy() - 1
    for k in range(2, 7):
        np.testing.assert_array_equal(qclass(ties, k), ref[:, k - 2])


def test_qclass_classes_are_ordered_intervals():
    x = np.random.default_rng(4).exponential(size=101)
    labels = qclass(x, 4)
    assert set(labels) == {0, 1, 2, 3}
    order = np.argsort(x)
    assert np.all(np.diff(labels[order]) >= 0)
    assert abs(np.bincount(labels) - 101 / 4).max() <= 1.5
