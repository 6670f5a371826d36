"""Missing values: what marginalising buys, and what an iteration costs.

Usage::

    python benchmarks/bench_missing.py              # both parts
    python benchmarks/bench_missing.py --part accuracy --seeds 10
    python benchmarks/bench_missing.py --part speed --repeats 5

Accuracy: data from a known mixture (K = 3, D = 5, 1,500 training rows, 20,000
held-out complete rows), 20% of the training entries missing completely at random.
Three fits side by side, each the best of 3 k-means starts, per seed:

* ``marginalize``: ``GaussianMixture(nan_policy="marginalize")`` on every row;
* ``complete rows``: the rows without a gap only (about a third of them here);
* ``mean imputation``: scikit-learn's ``SimpleImputer`` then an ordinary fit.

It prints, per method, the error of the means and covariances against the truth
(components matched to the true ones by the Hungarian method on the means) and the
held-out log-likelihood per row, and how many seeds each method wins.

Speed: W2's shape (200,000 x 16, K = 16 full, ``bench_em.py``), the same start, one EM
iteration (E-step and M-step) complete and with 10% of the entries missing at random,
timed by difference of warm fits of 1 and 1 + ``--iters`` iterations, medians of
``--repeats``; the ratio is the cost of the gaps.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.impute import SimpleImputer
from threadpoolctl import threadpool_info

from bench_em import make_workload

from gaussmix import GaussianMixture


def _truth(rng, k=3, d=5):
    means = rng.normal(scale=2.5, size=(k, d))
    covs = []
    for _ in range(k):
        a = rng.normal(size=(d, d)) * 0.6
        covs.append(a @ a.T + 0.3 * np.eye(d))
    return np.full(k, 1.0 / k), means, np.array(covs)


def _draw(rng, n, weights, means, covs):
    labels = rng.choice(len(weights), size=n, p=weights)
    X = np.empty((n, means.shape[1]))
    for j in range(len(weights)):
        rows = labels == j
        X[rows] = rng.multivariate_normal(means[j], covs[j], size=rows.sum())
    return X


def _errors(gm, means, covs):
    cost = ((gm.means_[:, None, :] - means[None]) ** 2).sum(axis=2)
    fitted, true = linear_sum_assignment(cost)
    mean_err = np.sqrt(cost[fitted, true].mean())
    cov_err = np.mean([np.linalg.norm(gm.covariances_[f] - covs[t]) / np.linalg.norm(covs[t])
                       for f, t in zip(fitted, true)])
    return mean_err, cov_err


def accuracy(seeds, share=0.2):
    names = ("marginalize", "complete rows", "mean imputation")
    results = {name: [] for name in names}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        weights, means, covs = _truth(rng)
        X = _draw(rng, 1500, weights, means, covs)
        test = _draw(rng, 20_000, weights, means, covs)
        gaps = X.copy()
        gaps[rng.uniform(size=X.shape) < share] = np.nan
        gaps = gaps[~np.isnan(gaps).all(axis=1)]
        complete = gaps[~np.isnan(gaps).any(axis=1)]
        imputed = SimpleImputer().fit_transform(gaps)
        fits = {
            "marginalize": (GaussianMixture(3, nan_policy="marginalize"), gaps),
            "complete rows": (GaussianMixture(3), complete),
            "mean imputation": (GaussianMixture(3), imputed),
        }
        for name, (gm, data) in fits.items():
            gm.set_params(n_init=3, random_state=seed, tol=1e-6, max_iter=2000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(data)
            results[name].append((*_errors(gm, means, covs), gm.score(test)))
        print(f"seed {seed}: " + "; ".join(
            f"{n}: {results[n][-1][2]:.4f}" for n in names), flush=True)
    print(f"\n{seeds} seeds, {int(share * 100)}% of the entries missing at random "
          f"(complete rows kept: about {100 * (1 - share) ** 5:.0f}%); medians:")
    print(f"{'method':<17} {'mean error':>11} {'cov error':>10} {'held-out ll/row':>16} "
          f"{'seeds best: mean, cov, ll':>26}")
    table = np.array([results[n] for n in names])  # (method, seed, metric)
    best = [np.argmin(table[:, :, 0], axis=0), np.argmin(table[:, :, 1], axis=0),
            np.argmax(table[:, :, 2], axis=0)]
    for i, name in enumerate(names):
        r = table[i]
        wins = ", ".join(str(int((b == i).sum())) for b in best)
        print(f"{name:<17} {np.median(r[:, 0]):>11.4f} {np.median(r[:, 1]):>10.4f} "
              f"{np.median(r[:, 2]):>16.4f} {wins:>26}")


def _per_iteration(X, init, iters, repeats):
    gm = GaussianMixture(16, tol=0.0, max_iter=1, warm_start=True,
                         nan_policy="marginalize", **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
        times = []
        for _ in range(repeats):
            gm.set_params(max_iter=1)
            t = time.perf_counter()
            gm.fit(X)
            short = time.perf_counter() - t
            gm.set_params(max_iter=1 + iters)
            t = time.perf_counter()
            gm.fit(X)
            times.append((time.perf_counter() - t - short) / iters)
    return times


def speed(iters, repeats, share=0.1, quick=False):
    X, init, shape = make_workload("W2", quick)
    rng = np.random.default_rng(0)
    gaps = X.copy()
    gaps[rng.uniform(size=X.shape) < share] = np.nan
    n, d = X.shape
    incomplete = np.isnan(gaps).any(axis=1).mean()
    print(f"W2 shape: {n} x {d}, K = 16 full; {int(share * 100)}% of the entries missing "
          f"({100 * incomplete:.1f}% of the rows have a gap)")
    complete_t, gaps_t = [], []
    for _ in range(repeats):  # alternating, so both see the same machine
        complete_t += _per_iteration(X, init, iters, 1)
        gaps_t += _per_iteration(gaps, init, iters, 1)
    c, g = statistics.median(complete_t), statistics.median(gaps_t)
    print(f"per iteration, medians of {repeats}: complete {c:.3f} s, with gaps {g:.3f} s, "
          f"ratio {g / c:.2f} (target: at most 3)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("accuracy", "speed", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="speed on N / 10 rows")
    args = parser.parse_args()
    for pool in threadpool_info():
        print(f"{pool['internal_api']}: {pool['num_threads']} threads "
              f"({pool.get('architecture', '')})")
    if args.part in ("accuracy", "both"):
        accuracy(args.seeds)
    if args.part in ("speed", "both"):
        speed(args.iters, args.repeats, quick=args.quick)


if __name__ == "__main__":
    main()
