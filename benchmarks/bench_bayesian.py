"""BayesianGaussianMixture per iteration: gaussmix against scikit-learn, same data, same start.

Usage::

    python benchmarks/bench_bayesian.py              # W2 and W4 at full size
    python benchmarks/bench_bayesian.py --quick      # N / 10

Workloads from ``bench_em.py`` (W2: 200,000 x 16, K = 16 full; W4: 1,000,000 x 32,
K = 64 diag). Both libraries start from ``init_params="random_from_data"`` with the same
``random_state``, one iteration, then time warm-started fits (tol = 0; the start is
not counted): a fit of 1 + ``--iters`` iterations minus a fit of 1, ``--repeats`` times,
medians. Up to 100,000 rows both start from the same rows (gaussmix reproduces
scikit-learn's start) and the lower bounds agree to rounding; beyond, gaussmix draws its
start from a 100,000-row sample, so the starts and the lower bounds differ (the time per
iteration does not depend on it).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGM
from threadpoolctl import threadpool_info

from bench_em import make_workload

import gaussmix


def _timed_fit(gm, X, max_iter):
    gm.set_params(max_iter=max_iter)
    t = time.perf_counter()
    gm.fit(X)
    return time.perf_counter() - t


def per_iteration(cls, X, k, cov, iters, repeats):
    """Median seconds per iteration: warm-started fits of 1 and of 1 + ``iters``
    iterations, by difference (what each fit pays once, its priors and its first and
    last E-steps, cancels), after a common start; and the final lower bound."""
    gm = cls(n_components=k, covariance_type=cov, max_iter=1, tol=0.0, random_state=0,
             warm_start=True, init_params="random_from_data")
    gm.fit(X)
    times = []
    for _ in range(repeats):
        short = _timed_fit(gm, X, 1)
        times.append((_timed_fit(gm, X, 1 + iters) - short) / iters)
    return times, float(np.sum(gm.lower_bound_))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N / 10")
    parser.add_argument("--workloads", default="W2,W4")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("BLAS:", [(i["internal_api"], i["num_threads"]) for i in threadpool_info()])
    print("| workload | N | D | K | cov | scikit-learn s/iter | gaussmix s/iter | speedup "
          "| lower bound rel. diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.workloads.split(","):
        X, _, (_, _, k, cov, _) = make_workload(name, args.quick)
        theirs, lb_theirs = per_iteration(SkBGM, X, k, cov, args.iters, args.repeats)
        ours, lb_ours = per_iteration(gaussmix.BayesianGaussianMixture, X, k, cov,
                                      args.iters, args.repeats)
        a, b = statistics.median(theirs), statistics.median(ours)
        diff = abs(lb_ours - lb_theirs) / abs(lb_theirs)
        print(f"| {name} | {X.shape[0]:,} | {X.shape[1]} | {k} | {cov} | {a:.3f} | {b:.3f} "
              f"| **{a / b:.1f}x** | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
