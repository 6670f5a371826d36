"""partial_fit (stepwise EM) against full EM from the same start (issue 10's acceptance).

Usage::

    python benchmarks/bench_partial_fit.py            # 2,000,000 x 16, K 16, batches of 10,000
    python benchmarks/bench_partial_fit.py --n 200000 --batch 5000   # smaller, for iterating

The data: a 16-D, 16-component full-covariance mixture drawn from a fixed seed, means
N(0, 1) per coordinate (shifted by 5) and covariances with eigenvalues in [0.5, 2], so
the components overlap (the true parameters misclassify about 5.6 % of the rows) but
are recoverable. The rows come in random order, as a stream would.

It reports

* one pass of ``partial_fit`` in batches of ``--batch`` rows with the default
  ``step_exponent``/``step_offset``: the mean log-likelihood per row over all rows of
  the final parameters, and the wall time (initialisation from the first batch
  included);
* full EM (``GaussianMixture.fit``, ``tol=1e-4``) from the parameters ``partial_fit``
  initialised from the first batch (given as ``weights_init``/``means_init``/
  ``precisions_init``): the same number, its iterations and wall time;
* the difference (full EM minus partial_fit), in nats per row;
* a table over a few (alpha, t0) = (``step_exponent``, ``step_offset``), one pass each
  from the same start, to justify the defaults.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import sklearn

import gaussmix
from gaussmix import GaussianMixture

D = K = 16
SEED = 10
GRID = [(0.55, 2.0), (0.6, 2.0), (0.7, 0.0), (0.7, 2.0), (0.7, 10.0), (0.8, 2.0),
        (0.9, 2.0), (1.0, 2.0)]


def _random_spd(rng, d):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(0.5, 2.0, d)) @ q.T


def make_data(n, seed=SEED):
    """Rows of the benchmark mixture, in random order (see the module docstring)."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, K)
    weights /= weights.sum()
    means = rng.normal(size=(K, D)) + 5.0
    factors = np.linalg.cholesky(np.stack([_random_spd(rng, D) for _ in range(K)]))
    labels = rng.choice(K, size=n, p=weights)
    X = rng.standard_normal((n, D))
    for k in range(K):
        rows = np.flatnonzero(labels == k)
        X[rows] = X[rows] @ factors[k].T + means[k]
    return X


def one_pass(X, batch, **params):
    """One pass of partial_fit over X in batches; the estimator and the seconds."""
    gm = GaussianMixture(K, random_state=0, **params)
    t0 = time.perf_counter()
    for start in range(0, X.shape[0], batch):
        gm.partial_fit(X[start:start + batch])
    return gm, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--no-grid", action="store_true", help="skip the (alpha, t0) table")
    args = parser.parse_args()

    print(f"gaussmix {gaussmix.__version__}, scikit-learn {sklearn.__version__}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    X = make_data(args.n)
    print(f"data: {args.n:,} x {D}, K {K} full, batches of {args.batch:,} "
          f"({-(-args.n // args.batch)} updates)")

    # The start partial_fit initialises from its first batch (max_iter=0: no M-step).
    first = GaussianMixture(K, random_state=0, max_iter=0).fit(X[:args.batch])
    start = dict(weights_init=first.weights_, means_init=first.means_,
                 precisions_init=first.precisions_)

    online, t_online = one_pass(X, args.batch)
    ll_online = online.score(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        full = GaussianMixture(K, tol=1e-4, max_iter=500, **start).fit(X)
        t_full = time.perf_counter() - t0
    ll_full = full.score(X)
    defaults = GaussianMixture()
    print(f"partial_fit (alpha={defaults.step_exponent}, t0={defaults.step_offset}): "
          f"mean log-likelihood {ll_online:.5f} per row, {t_online:.1f} s")
    print(f"full EM (tol=1e-4, same start): {ll_full:.5f} per row, {full.n_iter_} "
          f"iterations, converged={full.converged_}, {t_full:.1f} s")
    print(f"full EM - partial_fit: {ll_full - ll_online:.5f} nats per row "
          f"(acceptance: < 0.01); time ratio {t_full / t_online:.1f}x")

    if args.no_grid:
        return
    print("\n| alpha | t0 | full EM - partial_fit (nats/row) | pass (s) |")
    print("| --- | --- | --- | --- |")
    for alpha, offset in GRID:
        gm, t = one_pass(X, args.batch, step_exponent=alpha, step_offset=offset)
        print(f"| {alpha} | {offset:g} | {ll_full - gm.score(X):.5f} | {t:.1f} |")


if __name__ == "__main__":
    main()
