"""EM on a GPU through the array API: gaussmix's device producer against the CPU.

Usage::

    python benchmarks/bench_gpu.py                       # CUDA: W1-W7 with 10x the rows
    python benchmarks/bench_gpu.py --device cpu          # smoke test: PyTorch on the CPU,
                                                         # rows x 0.02 (seconds)
    python benchmarks/bench_gpu.py --workloads W3,W4 --scale 10 --iters 2,6

Needs PyTorch (the CUDA build for a GPU). For each workload of bench_em.py (W1-W7,
rows times ``--scale``) it fits, from the same start (bench_em's: true weights,
perturbed means, covariances 1.5x too wide), with ``tol=0``:

* ``GaussianMixture`` on a PyTorch tensor on ``--device`` under scikit-learn's
  ``array_api_dispatch`` (gaussmix's device producer), in float32 and in float64;
* the same float32 fit with the rows left on the host, streamed to the device chunk
  by chunk each pass (``DeviceSource(X, namespace=torch, device=...)``);
* gaussmix's CPU engine on the NumPy rows (every core);
* scikit-learn's ``GaussianMixture`` on the NumPy rows (every core).

Time per iteration is the difference of two fits, ``max_iter = a`` and ``b``
(``--iters a,b``) over ``b - a``: start-up, transfers of the result and the final
E-step cancel. It prints the times, the ratios to scikit-learn and to the CPU engine,
and the log-likelihood agreement after ``b`` iterations (the device fits against the
CPU engine's ``lower_bound_``; scikit-learn's ``lower_bound_``, one E-step behind,
against the CPU engine's previous one). For full covariance it prints the achieved
rate at 4 N K D^2 flops per iteration, and its share of the device's measured
matrix-multiply rate (a square float32 / float64 product).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

# scikit-learn's array-API dispatch needs SciPy's switched on before either is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_em  # noqa: E402

from gaussmix import DeviceSource, GaussianMixture  # noqa: E402


def scaled_workload(name, scale):
    """bench_em's workload with its rows times ``scale``."""
    n, d, k, *rest = bench_em.WORKLOADS[name]
    saved = bench_em.WORKLOADS[name]
    # at least 4 rows per component and feature: small smoke runs stay well posed
    bench_em.WORKLOADS[name] = (max(4 * k * d, int(n * scale)), d, k, *rest)
    try:
        return bench_em.make_workload(name, quick=False)
    finally:
        bench_em.WORKLOADS[name] = saved


def _sync(torch, device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _fit_seconds(make, X, iters, sync=lambda: None):
    """Seconds of ``make(max_iter).fit(X)``, and the fitted estimator."""
    sync()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = make(iters).fit(X)
    sync()
    return time.perf_counter() - start, gm


def per_iteration(make, X, iters, sync=lambda: None, dispatch=False):
    """Seconds per EM iteration (difference of two fits) and the longer fit."""
    a, b = iters
    with sklearn.config_context(array_api_dispatch=dispatch):
        if dispatch:  # warm-up on the device: kernels, caches, allocator
            _fit_seconds(make, X, 1, sync)
        t_a, _ = _fit_seconds(make, X, a, sync)
        t_b, gm = _fit_seconds(make, X, b, sync)
    # A difference lost in the noise (a tiny smoke run on a busy machine): NaN.
    return ((t_b - t_a) / (b - a) if t_b > t_a else np.nan), gm


def matmul_rate(torch, device, dtype, size):
    """FLOP/s of a square product on the device (best of a few)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    _sync(torch, device)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        _sync(torch, device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def run(args):
    import torch

    device = args.device
    scale = args.scale if args.scale is not None else (0.02 if device == "cpu" else 10.0)
    iters = tuple(int(v) for v in args.iters.split(","))
    sync = lambda: _sync(torch, device)  # noqa: E731
    print(f"gaussmix device benchmark: torch {torch.__version__} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.startswith("cuda")
             else f" ({platform.processor() or platform.machine()})")
          + f"; CPU: {os.cpu_count()} cores; rows x {scale:g}; iterations {iters}")
    size = 8192 if device.startswith("cuda") else 1024
    rates = {dt: matmul_rate(torch, device, getattr(torch, dt), size)
             for dt in ("float32", "float64")}
    print("matrix multiply on the device: " + ", ".join(
        f"{dt} {r / 1e12:.2f} TFLOP/s" for dt, r in rates.items()))
    header = (f"{'workload':<10}{'N':>11}{'D':>4}{'K':>4} {'cov':<9}"
              f"{'sklearn':>10}{'gm cpu':>10}{'dev f64':>10}{'dev f32':>10}"
              f"{'f32 stream':>11}"
              f"{'f32/sk':>9}{'f32/cpu':>9}{'f64/sk':>9}"
              f"{'dll f64':>10}{'dll f32':>10}{'dll sk':>10}{'f32 %mm':>9}")
    print(header)
    print("-" * len(header))
    for name in args.workloads.split(","):
        X, start, (n, d, k, cov, _) = scaled_workload(name, scale)
        try:
            row = _workload_row(name, scale, X, start, n, d, k, cov, iters, sync, device,
                                rates, torch)
        except Exception as error:  # one failed fit must not hide the others
            row = f"{name + 'x' + format(scale, 'g'):<10}{n:>11,} failed: {error!r:.120}"
        print(row, flush=True)
    print("times: seconds per EM iteration (difference of two fits); f32 stream: the "
          "float32 rows on the host, streamed to the device each pass; f32/sk etc.: "
          "speed-up of the device fit; dll: mean log-likelihood minus the CPU "
          "engine's after the same iterations (sk: one E-step behind, compared "
          "alike); f32 %mm: 4 N K D^2 flops per iteration against the float32 "
          "matrix-multiply rate above.")


def _workload_row(name, scale, X, start, n, d, k, cov, iters, sync, device, rates,
                  torch):
    """One line of the table: every fit of one workload."""

    def maker(cls, **extra):
        return lambda m: cls(k, covariance_type=cov, tol=0.0, max_iter=m,
                             reg_covar=bench_em.REG_COVAR, **start, **extra)

    t_sk, sk = per_iteration(maker(SkGaussianMixture), X, iters)
    t_cpu, cpu = per_iteration(maker(GaussianMixture), X, iters)
    timed = {}
    for dt in ("float64", "float32"):
        X_dev = torch.asarray(X.astype(dt), device=device)
        timed[dt] = per_iteration(maker(GaussianMixture), X_dev, iters, sync,
                                  dispatch=True)
        del X_dev
    (t64, g64), (t32, g32) = timed["float64"], timed["float32"]
    # The float32 rows left on the host and streamed to the device chunk by chunk.
    streamed = DeviceSource(X.astype(np.float32), namespace=torch, device=device)
    t_stream, _ = per_iteration(maker(GaussianMixture), streamed, iters, sync,
                                dispatch=True)
    ll = cpu.lower_bound_
    dll64, dll32 = g64.lower_bound_ - ll, g32.lower_bound_ - ll
    dll_sk = sk.lower_bound_ - (cpu.lower_bounds_[-2] if len(cpu.lower_bounds_) > 1
                                else np.nan)
    share = ""
    if cov == "full":
        flops = 4.0 * n * k * d * d
        share = f"{100 * flops / t32 / rates['float32']:8.1f}%"
    return (f"{name + 'x' + format(scale, 'g'):<10}{n:>11,}{d:>4}{k:>4} {cov:<9}"
            f"{t_sk:>9.4f}s{t_cpu:>9.4f}s{t64:>9.4f}s{t32:>9.4f}s{t_stream:>10.4f}s"
            f"{t_sk / t32:>8.1f}x{t_cpu / t32:>8.1f}x{t_sk / t64:>8.1f}x"
            f"{dll64:>10.1e}{dll32:>10.1e}{dll_sk:>10.1e}{share:>9}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            default_device = "cuda"
    except ImportError:
        parser.error("bench_gpu needs PyTorch: pip install torch")
    parser.add_argument("--device", default=default_device,
                        help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--scale", type=float, default=None,
                        help="rows times this (default 10 on a GPU, 0.02 on the CPU)")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7")
    parser.add_argument("--iters", default="2,5",
                        help="the two fits' max_iter, a,b (default 2,5)")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
