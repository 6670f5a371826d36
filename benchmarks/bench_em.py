"""EM speed: gaussmix against scikit-learn, same data, same start, one run.

Usage::

    python benchmarks/bench_em.py                    # W1-W7 at the issue's sizes
    python benchmarks/bench_em.py --quick            # N / 10, for iterating
    python benchmarks/bench_em.py --workloads W1,W3 --repeats 7

For each workload (issue 4) it reports

* the time of one EM iteration (E-step pass over all rows + M-step), median of
  ``--repeats``, for both libraries from the same weights/means/precisions. It times
  what each library's ``fit`` runs per iteration: scikit-learn's ``_e_step`` +
  ``_m_step``; gaussmix's own EM loop ``run_em`` over the threads producer (as
  ``GaussianMixture.fit`` runs it), timed between its per-iteration callbacks, with
  the two libraries alternating iteration by iteration so both see the same machine
  load. A check column times gaussmix's public ``fit`` (``max_iter=1`` vs ``1 + m``,
  ``tol=0``; the difference over ``m``);
* that both reach the same mean log-likelihood, before and after one iteration;
* for full covariance the achieved GFLOP/s at 4 N K D^2 flops per iteration, and that
  as a fraction of the dense float64 matrix-multiply rate measured here;
* the machine's floor per workload (:func:`floor_seconds`): the products an iteration
  cannot avoid at the dense matrix-multiply rate measured in this run, plus one ``exp``
  per row and component at the ``exp`` throughput measured on the kernel's threads (the
  faster of ``np.exp`` and the compiled kernel's); and
  gaussmix's time as a multiple of it, so the gap to the limit is visible;
* the default ``fit`` end to end (k-means initialisation, tol=1e-3, max_iter=100),
  with the initialisation timed on its own (after one untimed run: loading compiled
  code is paid once per process), and the iterations each took;
* peak memory, by ``tracemalloc``: the largest traced allocation above the data during
  one iteration and during the default fit. tracemalloc sees NumPy's buffers and
  Python objects, not BLAS's or OpenMP's private work space.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_info

import gaussmix
from gaussmix import GaussianMixture
from gaussmix._engine import loop as _em, parallel as _parallel
from gaussmix._engine.init import initial_stats
from gaussmix._engine.mstep import MStep, mstep
from gaussmix._engine.params import params_from_precisions
from gaussmix._engine.producers import thread_pass
from gaussmix._engine.sources import ArraySource, default_chunk_rows
from gaussmix._models.registry import get_model

WORKLOADS = {
    # name: (N, D, K, covariance, dtype, data seed)
    "W1": (1_000_000, 2, 3, "full", np.float64, 1),
    "W2": (200_000, 16, 16, "full", np.float64, 2),
    "W3": (100_000, 64, 32, "full", np.float64, 3),
    "W4": (1_000_000, 32, 64, "diag", np.float64, 4),
    "W5": (200_000, 16, 16, "tied", np.float64, 5),
    "W6": (1_000_000, 8, 8, "spherical", np.float64, 6),
    "W7": (100_000, 64, 32, "full", np.float32, 3),  # W3's data in float32
}
REG_COVAR = 1e-6


# ---------------------------------------------------------------- data and start
def _random_spd(rng, d):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(0.5, 2.0, d)) @ q.T


def make_workload(name, quick):
    """Data from a known mixture, and a start near it (same for both libraries)."""
    n, d, k, cov, dtype, seed = WORKLOADS[name]
    if quick:
        n //= 10
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, k)
    weights /= weights.sum()
    means = rng.normal(scale=3.0, size=(k, d)) + 5.0
    if cov == "full":
        covs = np.stack([_random_spd(rng, d) for _ in range(k)])
    elif cov == "tied":
        covs = np.broadcast_to(_random_spd(rng, d), (k, d, d))
    elif cov == "diag":
        covs = rng.uniform(0.5, 2.0, (k, d))
    else:
        covs = rng.uniform(0.5, 2.0, k)
    labels = rng.choice(k, size=n, p=weights)
    X = rng.standard_normal((n, d))
    for j in range(k):
        rows = np.flatnonzero(labels == j)
        if cov in ("full", "tied"):
            X[rows] = X[rows] @ np.linalg.cholesky(covs[j]).T
        elif cov == "diag":
            X[rows] *= np.sqrt(covs[j])
        else:
            X[rows] *= np.sqrt(covs[j])
        X[rows] += means[j]
    # The start: true weights, perturbed means, covariances 1.5x too wide.
    means_init = means + rng.normal(scale=0.3, size=means.shape)
    if cov == "full":
        prec = np.linalg.inv(1.5 * covs)
    elif cov == "tied":
        prec = np.linalg.inv(1.5 * covs[0])
    else:
        prec = 1.0 / (1.5 * covs)
    return X.astype(dtype), dict(weights_init=weights, means_init=means_init,
                                 precisions_init=prec), (n, d, k, cov, dtype)


# ---------------------------------------------------------------- one iteration
class SklearnIter:
    """scikit-learn's EM iteration (``_e_step`` then ``_m_step``) from a given start."""

    def __init__(self, X, cov, init):
        self.X = X
        self.gm = SkGaussianMixture(len(init["weights_init"]), covariance_type=cov,
                                    reg_covar=REG_COVAR, **init)
        self.gm._initialize(X, None)  # sets weights_, means_, precisions_cholesky_

    def step(self):
        log_prob_norm, log_resp = self.gm._e_step(self.X)
        self.gm._m_step(self.X, log_resp)
        return float(log_prob_norm)


def gaussmix_start(X, cov, init):
    model = get_model(cov)
    k, d = init["means_init"].shape
    source = ArraySource(X, None, default_chunk_rows(k, d))
    params = params_from_precisions(init["weights_init"], init["means_init"],
                                    init["precisions_init"], model.family)

    # what GaussianMixture.fit passes to run_em
    return thread_pass(source, model.stats_kind), params, model


def time_both(X, cov, init, repeats):
    """Iterations of both libraries, alternating, from the same start.

    gaussmix runs its own EM loop (``_em.run_em``, as ``fit`` does); the time between
    two of its per-iteration callbacks is one iteration (pass + M-step). In each
    callback scikit-learn does one iteration too, timed on its own and left out of
    gaussmix's interval.
    """
    sk = SklearnIter(X, cov, init)
    pass_fn, params, model = gaussmix_start(X, cov, init)
    out = dict(sk_times=[], gm_times=[], sk_ll=[], gm_ll=[])
    clock = {}

    def on_iteration(n_iter, ll, change, stats, params):
        if n_iter == 0:  # the start's E-step: iterations are timed from here
            gc.collect()
            clock["t"] = time.perf_counter()
            return
        now = time.perf_counter()
        out["gm_times"].append(now - clock["t"])
        out["gm_ll"].append(ll)
        t, sk_ll = _timed(sk.step)
        out["sk_times"].append(t)
        out["sk_ll"].append(sk_ll)
        gc.collect()
        clock["t"] = time.perf_counter()

    gc.collect()
    clock["t"] = time.perf_counter()
    _em.run_em(pass_fn, MStep(model, reg_covar=REG_COVAR), params, _em.sklearn_policy(0.0),
               max_iter=repeats, state=params.covariances, on_iteration=on_iteration)
    return out


def gaussmix_one_iteration(X, cov, init):
    pass_fn, params, model = gaussmix_start(X, cov, init)
    _em.run_em(pass_fn, MStep(model, reg_covar=REG_COVAR), params, _em.sklearn_policy(0.0),
               max_iter=1, state=params.covariances)


def _timed(fn):
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _traced_peak(fn):
    """Peak traced bytes above what was allocated before ``fn`` (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - base) / 2**20


def fit_iteration_check(X, cov, init, m):
    """gaussmix's public fit, per iteration: (fit(1 + m) - fit(1)) / m, tol=0."""
    def fit(n_iter):
        gm = GaussianMixture(len(init["weights_init"]), covariance_type=cov, tol=0,
                             max_iter=n_iter, reg_covar=REG_COVAR, **init)
        return _timed(lambda: gm.fit(X))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = fit(1)
        long = fit(1 + m)
    return (long - short) / m


# ---------------------------------------------------------------- default fit
def default_fits(X, k, cov, memory):
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in ("sklearn", "gaussmix"):
            if lib == "sklearn":
                est = SkGaussianMixture(k, covariance_type=cov, random_state=0)

                def init():
                    est._initialize_parameters(X, check_random_state(0))
            else:
                est = GaussianMixture(k, covariance_type=cov, random_state=0)
                model = get_model(cov)

                def init():
                    src = ArraySource(X, None, default_chunk_rows(k, X.shape[1]))
                    stats = initial_stats(src, k, model.stats_kind, "kmeans",
                                          check_random_state(0))
                    mstep(stats, model, REG_COVAR)
            init()  # once untimed: loading compiled code is a cost per process, not per fit
            t_init = _timed(init)[0]
            t_fit = _timed(lambda: est.fit(X))[0]
            mem = _traced_peak(lambda: type(est)(**est.get_params()).fit(X)) if memory else np.nan
            rows[lib] = dict(init=t_init, fit=t_fit, n_iter=est.n_iter_, mem=mem)
    return rows


# ---------------------------------------------------------------- machine
def exp_rate(dtype=np.float64, n=1 << 22, repeats=5, compiled=False):
    """``np.exp`` (or, with ``compiled``, the compiled E-step's exponential, in blocks of
    256 as the kernel runs it) over a large array, elements per second, on the kernel's
    threads (each thread its own share, as the E-step runs it)."""
    threads = _parallel.get_num_threads()
    parts = [np.random.default_rng(t).uniform(-30, 0, n // threads).astype(dtype)
             for t in range(threads)]
    outs = [np.empty_like(p) for p in parts]
    exp = np.exp
    if compiled:
        exp = _compiled_exp()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        def one(i):
            exp(parts[i], out=outs[i])

        def run():
            list(pool.map(one, range(threads)))

        run()
        times = [_timed(run)[0] for _ in range(repeats)]
    return n / statistics.median(times)


def _compiled_exp():
    """``exp(x, out=)`` by the compiled E-step's exponential, in its blocks of 256."""
    from numba import njit

    from gaussmix._engine._compiled_kernels import _exp_nonpositive

    @njit(nogil=True)
    def blocks(x, out):
        bits = np.empty(256, dtype=np.int64)
        for a in range(0, x.size, 256):
            m = min(256, x.size - a)
            _exp_nonpositive(x[a : a + m], out[a : a + m], bits, m)

    return lambda x, out: blocks(x, out)


def floor_seconds(n, d, k, cov, rate, exps):
    """The least an EM iteration can cost on this machine: the products it cannot avoid,
    at ``rate`` GFLOP/s, plus N K ``exp`` at ``exps`` per second.

    Products per row (multiply-adds counted as two flops, triangles and symmetric
    results as half a square): full, the whitened residuals (K D^2) and the scatter
    (K D^2); tied, U^T (x - s) (D^2), the K scores (2 K D) and the pooled scatter (D^2);
    diag and spherical, the K scores and the statistics against [(x - s)^2; x - s; 1]
    (2 x 2 K (2 D + 1)).
    """
    per_row = {"full": 2 * k * d * d,
               "tied": 2 * d * d + 2 * k * (d + 1),
               "diag": 4 * k * (2 * d + 1),
               "spherical": 4 * k * (2 * d + 1)}[cov]
    return n * per_row / (rate * 1e9) + n * k / exps


def matmul_rate(dtype, n=2048, repeats=5):
    """Dense n x n matrix product, GFLOP/s (BLAS with its default threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    times = [_timed(lambda: a @ b)[0] for _ in range(repeats)]
    return 2 * n**3 / statistics.median(times) / 1e9


def print_environment():
    print(f"python {platform.python_version()}  numpy {np.__version__}  scipy "
          f"{scipy.__version__}  scikit-learn {sklearn.__version__}  gaussmix "
          f"{gaussmix.__version__}")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
          f"cores; load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    print(f"gaussmix kernel threads: {_parallel.get_num_threads()}; E-step kernel "
          f"(GAUSSMIX_KERNEL): {os.environ.get('GAUSSMIX_KERNEL', 'auto')}")
    print("threadpoolctl:")
    for lib in threadpool_info():
        print(f"  {lib['user_api']:7s} {lib['internal_api']:9s} v{lib.get('version')} "
              f"threads={lib['num_threads']} arch={lib.get('architecture', '-')} "
              f"{os.path.basename(lib['filepath'])}")


# ---------------------------------------------------------------- main
def run_workload(name, args, rate64, exps):
    X, init, (n, d, k, cov, dtype) = make_workload(name, args.quick)
    t = time_both(X, cov, init, max(2, args.repeats))
    sk_times, gm_times, sk_ll, gm_ll = t["sk_times"], t["gm_times"], t["sk_ll"], t["gm_ll"]
    ll_diff = max(abs(a - b) / abs(a) for a, b in zip(sk_ll, gm_ll))
    row = dict(name=name, n=n, d=d, k=k, cov=cov, dtype=np.dtype(dtype).name,
               sk_iter=statistics.median(sk_times), gm_iter=statistics.median(gm_times),
               gm_ll=gm_ll, sk_ll=sk_ll, ll_diff=ll_diff)
    row["gm_fit_iter"] = fit_iteration_check(X, cov, init, m=3) if args.fit_check else np.nan
    row["floor"] = floor_seconds(n, d, k, cov, rate64, exps)
    if cov == "full":
        gflops = 4 * n * k * d * d / 1e9
        row["gflops"] = gflops / row["gm_iter"]
        row["frac"] = row["gflops"] / rate64
    if args.memory:
        row["sk_mem"] = _traced_peak(SklearnIter(X, cov, init).step)
        row["gm_mem"] = _traced_peak(lambda: gaussmix_one_iteration(X, cov, init))
    if args.fit:
        row["fits"] = default_fits(X, k, cov, args.memory)
    return row


def print_table(rows, rate64):
    print()
    print("Per EM iteration (median), same start; ll rel diff = largest relative "
          "difference of the mean log-likelihood, gaussmix vs scikit-learn, over the "
          "timed iterations")
    head = (f"{'':3s} {'N':>9s} {'D':>3s} {'K':>3s} {'cov':9s} {'dtype':7s} "
            f"{'sklearn ms':>10s} {'gaussmix ms':>11s} {'speedup':>7s} {'fit-check':>9s} "
            f"{'GFLOP/s':>7s} {'%matmul':>7s} {'floor ms':>8s} {'x floor':>7s} "
            f"{'ll rel diff':>11s}")
    print(head)
    for r in rows:
        gf = f"{r['gflops']:7.1f}" if "gflops" in r else f"{'':7s}"
        fr = f"{100 * r['frac']:6.0f}%" if "frac" in r else f"{'':7s}"
        print(f"{r['name']:3s} {r['n']:9d} {r['d']:3d} {r['k']:3d} {r['cov']:9s} "
              f"{r['dtype']:7s} {1e3 * r['sk_iter']:10.1f} {1e3 * r['gm_iter']:11.1f} "
              f"{r['sk_iter'] / r['gm_iter']:6.1f}x {1e3 * r['gm_fit_iter']:9.1f} "
              f"{gf} {fr} {1e3 * r['floor']:8.1f} {r['gm_iter'] / r['floor']:6.1f}x "
              f"{r['ll_diff']:11.1e}")
    print(f"(%matmul: against the best dense float64 matmul rate measured in this run, "
          f"{rate64:.1f} GFLOP/s; fit-check = gaussmix GaussianMixture.fit time per "
          "iteration, by difference; floor = the unavoidable products at that rate plus "
          "N K exp at the measured exp rate, see floor_seconds; x floor = gaussmix / floor)")
    byname = {r["name"]: r for r in rows}
    if "W3" in byname and "W7" in byname:
        w3, w7 = byname["W3"], byname["W7"]
        rel = max(abs(a - b) / abs(b) for a, b in zip(w7["gm_ll"], w3["gm_ll"]))
        print(f"W7 (float32) vs W3 (float64), gaussmix: {w3['gm_iter'] / w7['gm_iter']:.2f}x "
              f"faster; log-likelihood relative difference {rel:.1e}")
    if any("sk_mem" in r for r in rows):
        print()
        print("Peak traced memory above the data, MiB (tracemalloc: NumPy buffers and "
              "Python objects)")
        print(f"{'':3s} {'iter sklearn':>12s} {'iter gaussmix':>13s} {'fit sklearn':>11s} "
              f"{'fit gaussmix':>12s}")
        for r in rows:
            f = r.get("fits", {})
            fs = f.get("sklearn", {}).get("mem", np.nan)
            fg = f.get("gaussmix", {}).get("mem", np.nan)
            print(f"{r['name']:3s} {r['sk_mem']:12.1f} {r['gm_mem']:13.1f} {fs:11.1f} "
                  f"{fg:12.1f}")
    if any("fits" in r for r in rows):
        print()
        print("Default fit end to end (k-means init, tol=1e-3, max_iter=100, "
              "random_state=0), seconds")
        print(f"{'':3s} {'sklearn fit':>11s} {'(init':>6s} {'iters)':>6s} "
              f"{'gaussmix fit':>12s} {'(init':>6s} {'iters)':>6s} {'speedup':>7s} "
              f"{'gaussmix init share':>19s}")
        for r in rows:
            s, g = r["fits"]["sklearn"], r["fits"]["gaussmix"]
            print(f"{r['name']:3s} {s['fit']:11.2f} {s['init']:6.2f} {s['n_iter']:6d} "
                  f"{g['fit']:12.3f} {g['init']:6.3f} {g['n_iter']:6d} "
                  f"{s['fit'] / g['fit']:6.1f}x {g['init'] / g['fit']:18.0%}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="N / 10")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated subset, e.g. W1,W3")
    p.add_argument("--repeats", type=int, default=5, help="timed iterations per library")
    p.add_argument("--no-fit", dest="fit", action="store_false",
                   help="skip the default end-to-end fits")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the tracemalloc runs")
    p.add_argument("--no-fit-check", dest="fit_check", action="store_false",
                   help="skip timing gaussmix's public fit per iteration")
    p.add_argument("--kernel", choices=["numba", "numpy", "auto"], default="numba",
                   help="gaussmix's E-step kernel (GAUSSMIX_KERNEL): the compiled one "
                        "(default; compiled before timing), NumPy's, or the library's "
                        "own choice")
    args = p.parse_args(argv)
    os.environ["GAUSSMIX_KERNEL"] = args.kernel
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    print_environment()
    rate64, rate32 = matmul_rate(np.float64), matmul_rate(np.float32)
    exps = exp_rate()
    exp_note = f"exp: np.exp {exps / 1e6:.0f} M/s"
    try:  # the compiled kernel's exponential is faster: the floor takes the faster one
        fast = exp_rate(compiled=True)
        exp_note += f", compiled {fast / 1e6:.0f} M/s"
        exps = max(exps, fast)
    except ImportError:
        pass
    print(f"dense matmul 2048^3: float64 {rate64:.1f} GFLOP/s, float32 {rate32:.1f} GFLOP/s; "
          f"{exp_note} on {_parallel.get_num_threads()} thread(s)")
    rows = []
    best = {"rate64": rate64}  # the machine's rate: the best of the measurements
    for name in names:
        t = time.perf_counter()
        if WORKLOADS[name][3] == "full":  # re-measure: the load on a shared machine moves
            best["rate64"] = max(best["rate64"], matmul_rate(np.float64))
        rows.append(run_workload(name, args, best["rate64"], exps))
        r = rows[-1]
        print(f"{name}: sklearn {1e3 * r['sk_iter']:.1f} ms/iter, gaussmix "
              f"{1e3 * r['gm_iter']:.1f} ms/iter, ll {r['gm_ll'][-1]:.10g} "
              f"(rel diff {r['ll_diff']:.1e}); {time.perf_counter() - t:.0f} s; load "
              f"{os.getloadavg()[0]:.2f}", flush=True)
    rate64 = max(best["rate64"], matmul_rate(np.float64))
    for r in rows:
        r["floor"] = floor_seconds(r["n"], r["d"], r["k"], r["cov"], rate64, exps)
        if "gflops" in r:
            r["frac"] = r["gflops"] / rate64
    print_table(rows, rate64)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
