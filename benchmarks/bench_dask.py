"""EM per iteration: gaussmix's in-memory engine against the same fit on Dask.

Usage::

    python benchmarks/bench_dask.py                      # 4,000,000 x 16, K = 16 full
    python benchmarks/bench_dask.py --rows 1000000       # smaller, on a busy machine

In one run, on the same data (generated block by block from fixed seeds, so the client
and the workers build the same rows without shipping them) and from the same start:

* the in-memory engine: ``run_em`` over the threads producer on every core;
* Dask ``LocalCluster``s, 2 worker processes x 1 thread and 1 process x 2 threads (the
  latter also with the workers' sampling profiler off, which takes the GIL every 10 ms):
  ``run_em`` over the Dask producer (the one ``GaussianMixture.fit`` picks for a Dask
  array), the blocks persisted first; each iteration's time, the ratio to the in-memory
  engine's (goal <= 1.3), and the same final log-likelihood;
* the scheduling overhead per iteration: the same graph (one task per block, the tree
  of additions) with no work in the tasks;
* the client's memory during the Dask iterations (tracemalloc peak: what the client
  allocates per iteration, O(K D^2), not O(N));
* Spark MLlib's GaussianMixture on the same rows when ``pyspark`` and ``java`` are
  available (it says so when they are not).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time
import tracemalloc
import warnings

import numpy as np

import gaussmix
from gaussmix._engine.loop import run_em, sklearn_policy
from gaussmix._engine.mstep import MStep
from gaussmix._engine.params import make_params
from gaussmix._engine.producers import thread_pass
from gaussmix._engine.sources import ArraySource, default_chunk_rows
from gaussmix._models.registry import get_model


def _centres(k, d, seed=7):
    return np.random.default_rng(seed).normal(0, 4.0, (k, d))


def make_block(i, rows, k, d):
    """Rows of block ``i``: a mixture of K unit-ish Gaussians, from seed ``i``."""
    rng = np.random.default_rng(1000 + i)
    centres = _centres(k, d)
    labels = rng.integers(0, k, rows)
    scales = 0.5 + (np.arange(k) % 4) * 0.25
    return centres[labels] + rng.normal(size=(rows, d)) * scales[labels, None]


def block_sizes(n, chunk):
    sizes = [chunk] * (n // chunk)
    if n % chunk:
        sizes.append(n % chunk)
    return sizes


def start_params(k, d):
    weights = np.full(k, 1.0 / k)
    means = _centres(k, d) + 0.5
    cov = np.repeat(np.eye(d)[None], k, axis=0) * 2.0
    chol = np.linalg.cholesky(cov)
    prec_chol = np.linalg.inv(chol).transpose(0, 2, 1)
    return make_params(weights, means, cov, prec_chol, "full")


def timed_em(pass_fn, params, iters):
    """Per-iteration wall times of ``iters`` EM iterations (tol=0), and the result."""
    model = get_model("full")
    stamps = []

    def on_iteration(n_iter, *_):
        stamps.append(time.perf_counter())

    result = run_em(pass_fn, MStep(model, reg_covar=1e-6), params, sklearn_policy(0.0),
                    max_iter=iters, on_iteration=on_iteration)
    return np.diff(stamps), result


def bench_memory(X, params, iters):
    source = ArraySource(X, None, default_chunk_rows(params.n_components, X.shape[1]))
    return timed_em(thread_pass(source, "full"), params, iters)


def _empty(x, p):
    return 0


def _add(*parts):
    return sum(parts)


def bench_dask(sizes, k, d, params, iters, n_workers, threads, profiler=True):
    import dask
    import dask.array as da
    from dask import delayed
    from distributed import Client, LocalCluster

    from gaussmix import DaskSource
    from gaussmix._engine import dask_source

    # The workers read this setting when they start (each is a fresh process).
    with dask.config.set({"distributed.worker.profile.enabled": profiler}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads,
                               processes=True, dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    try:
        blocks = [da.from_delayed(delayed(make_block)(i, s, k, d), (s, d), np.float64)
                  for i, s in enumerate(sizes)]
        X = da.concatenate(blocks)
        source = DaskSource(X)
        t0 = time.perf_counter()
        source.prepare()  # persist + the finite check
        persist_s = time.perf_counter() - t0
        run = thread_pass(source, "full")  # the producer GaussianMixture.fit picks
        run(params)  # warm the workers (imports, first kernels)
        tracemalloc.start()
        times, result = timed_em(run, params, iters)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # The same graph shape with empty tasks: the scheduling overhead per iteration.
        xs = list(source.array.to_delayed().ravel())
        empty = []
        for _ in range(max(iters, 3)):
            t = time.perf_counter()
            p = delayed(params, name=f"bench-params-{time.time_ns()}", traverse=False)
            parts = [delayed(_empty, pure=False)(x, p) for x in xs]
            dask_source._compute(dask_source._tree_sum(parts, delayed))
            empty.append(time.perf_counter() - t)
        return dict(times=times, result=result, persist_s=persist_s, peak=peak,
                    empty=empty)
    finally:
        client.close()
        cluster.close()


def bench_spark(X, k, iters):
    if shutil.which("java") is None:
        return "absent: no java on PATH"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "absent: pyspark is not installed (java is)"
    if X.shape[0] > 1_000_000:
        return "skipped: more than 1,000,000 rows (run with --rows 1000000)"
    from pyspark.ml.clustering import GaussianMixture as SparkGM
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import SparkSession

    # The rows are built on the driver: its default 1 GB heap ran out once at 1M x 16.
    spark = (SparkSession.builder.master(f"local[{os.cpu_count()}]")
             .config("spark.driver.memory", "4g").getOrCreate())
    try:
        frame = spark.createDataFrame([(Vectors.dense(r),) for r in X], ["features"])
        frame.cache().count()
        # Spark's fit includes its own start (random rows, a global covariance): the
        # difference between a 1-iteration and a (1 + iters)-iteration fit is the EM.
        # A first fit warms the JVM's compiler up (else the 1-iteration fit carries it
        # and the difference flatters Spark); then three pairs, the median.
        def fit(n_iter):
            t = time.perf_counter()
            model = SparkGM(k=k, maxIter=n_iter, tol=0.0, seed=0).fit(frame)
            return time.perf_counter() - t, model

        fit(1)
        per_iter = []
        for _ in range(3):
            short, long = fit(1)[0], fit(1 + iters)
            per_iter.append((long[0] - short) / iters)
        model = long[1]
        return dict(per_iter=statistics.median(per_iter), runs=per_iter,
                    loglik=model.summary.logLikelihood / X.shape[0])
    finally:
        spark.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=250_000, help="rows per Dask block")
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    n, d, k = args.rows, args.features, args.components
    sizes = block_sizes(n, args.chunk)
    params = start_params(k, d)
    warnings.simplefilter("ignore")

    import dask
    import distributed

    print(f"gaussmix {gaussmix.__version__}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, NumPy {np.__version__}, Python "
          f"{platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"data: {n:,} x {d}, K = {k} full, float64; Dask blocks of {args.chunk:,} rows "
          f"({len(sizes)} blocks); {args.iters} timed iterations each (tol=0)")

    X = np.concatenate([make_block(i, s, k, d) for i, s in enumerate(sizes)])
    mem_times, mem_result = bench_memory(X, params, args.iters)
    mem = statistics.median(mem_times)
    print(f"in-memory engine ({os.cpu_count()} threads): {mem:.3f} s/iteration "
          f"(median of {[round(float(t), 3) for t in mem_times]}), final mean log-likelihood "
          f"{mem_result.log_likelihood:.10f}")

    rows = []
    for workers, threads, profiler in ((2, 1, True), (1, 2, True), (1, 2, False)):
        out = bench_dask(sizes, k, d, params, args.iters, workers, threads, profiler)
        per = statistics.median(out["times"])
        same = abs(out["result"].log_likelihood - mem_result.log_likelihood) / abs(
            mem_result.log_likelihood)
        empty = statistics.median(out["empty"])
        setup = f"{workers} proc x {threads} thread" + ("" if profiler else ", profiler off")
        rows.append((setup, per, per / mem, empty, out))
        print(f"Dask LocalCluster {setup}: {per:.3f} s/iteration (median of "
              f"{[round(float(t), 3) for t in out['times']]}), ratio {per / mem:.2f}x in-memory; "
              f"empty-work graph {empty * 1e3:.0f} ms/iteration; persist "
              f"{out['persist_s']:.1f} s; client tracemalloc peak during the iterations "
              f"{out['peak'] / 1e6:.2f} MB (data {X.nbytes / 1e6:.0f} MB); log-likelihood "
              f"relative difference to in-memory {same:.1e}")

    spark = bench_spark(X, k, args.iters)
    if isinstance(spark, dict):
        print(f"Spark MLlib local[{os.cpu_count()}]: {spark['per_iter']:.3f} s/iteration "
              f"(median of {[round(t, 3) for t in spark['runs']]}), "
              f"ratio {spark['per_iter'] / mem:.2f}x in-memory (its own random start: final "
              f"mean log-likelihood {spark['loglik']:.4f}, not comparable)")
    else:
        print(f"Spark MLlib: {spark}")

    print("\n| engine | s / iteration | ratio to in-memory | empty-work overhead | "
          "client peak (tracemalloc) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| in-memory, {os.cpu_count()} threads | {mem:.3f} | 1.00 | - | - |")
    for setup, per, ratio, empty, out in rows:
        print(f"| Dask LocalCluster {setup} | {per:.3f} | "
              f"{ratio:.2f} | {empty * 1e3:.0f} ms | {out['peak'] / 1e6:.2f} MB |")
    if isinstance(spark, dict):
        print(f"| Spark MLlib local[{os.cpu_count()}] | {spark['per_iter']:.3f} | "
              f"{spark['per_iter'] / mem:.2f} | - | - |")


if __name__ == "__main__":
    main()
