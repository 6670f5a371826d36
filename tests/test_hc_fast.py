"""The compiled agglomeration (gaussmix._mclust.hc_fast) against the NumPy reference (_hc).

Both must give exactly the same merge sequence: on every stored data set (whose merges
also equal mclust's, see test_hc.py), on random data, and with duplicate rows (exact
ties, broken as mclust's Fortran does).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gaussmix._mclust import hc_fast as _hc_fast
from gaussmix._mclust.hc import hc, scaled_svd_transform

from mclust_reference import reference_data

pytestmark = pytest.mark.skipif(not _hc_fast.AVAILABLE, reason="numba not installed")

EXTRA = Path(__file__).parent / "data" / "mclust_extra"


def _both(Z, **kw):
    return hc(Z, "VVV", backend="numba", **kw), hc(Z, "VVV", backend="numpy", **kw)


def _data(name):
    if name in ("iris", "faithful"):
        return reference_data(name)
    return pd.read_csv(EXTRA / f"{name}.csv").to_numpy(dtype=float)


@pytest.mark.parametrize("name", ["iris", "faithful", "diabetes", "banknote", "mix3d",
                                  "noise2d"])
def test_same_merges_as_numpy_on_stored_data(name):
    fast, ref = _both(scaled_svd_transform(_data(name)))
    np.testing.assert_array_equal(fast, ref)


def test_same_merges_on_big2d_subset():
    X = _data("big2d")
    rows = pd.read_csv(EXTRA / "big2d_subset.csv")["row"].to_numpy() - 1
    fast, ref = _both(scaled_svd_transform(X[rows]), n_merges=600)
    np.testing.assert_array_equal(fast, ref)
    mclust = pd.read_csv(EXTRA / "big2d_hcPairs.csv").to_numpy() - 1
    np.testing.assert_array_equal(fast[:400], mclust[:400])


@pytest.mark.parametrize("seed,n,d", [(0, 120, 2), (1, 90, 3), (2, 80, 5), (3, 60, 7),
                                      (4, 40, 12)])
def test_same_merges_on_random_data(seed, n, d):
    rng = np.random.default_rng(seed)
    Z = np.vstack([rng.normal(size=(n // 2, d)),
                   rng.normal(size=(n - n // 2, d)) @ rng.normal(size=(d, d)) + 3])
    fast, ref = _both(Z)
    np.testing.assert_array_equal(fast, ref)


def test_same_merges_with_duplicates_and_a_grid():
    rng = np.random.default_rng(7)
    Z = np.round(rng.normal(size=(150, 3)) * 2) / 2  # coarse grid: many exact ties
    Z[10:20] = Z[0]  # a block of duplicate rows
    Z[40] = Z[41] = Z[5]
    fast, ref = _both(Z)
    np.testing.assert_array_equal(fast, ref)
    # Duplicate rows have the smallest cost of any two singletons (2 log 1/2): first.
    assert np.all(Z[fast[0, 0]] == Z[fast[0, 1]])


def test_n_merges_and_tiny_inputs():
    Z = np.random.default_rng(8).normal(size=(30, 2))
    full, _ = _both(Z)
    part, ref = _both(Z, n_merges=12)
    np.testing.assert_array_equal(part, ref)
    np.testing.assert_array_equal(part, full[:12])
    for n in (2, 3):
        fast, ref = _both(Z[:n])
        np.testing.assert_array_equal(fast, ref)
