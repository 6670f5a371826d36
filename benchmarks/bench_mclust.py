"""mclust's default model selection: gaussmix.select against R's ``Mclust(X)``, one run.

Usage::

    python benchmarks/bench_mclust.py                 # faithful, iris, 2000 x 6
    python benchmarks/bench_mclust.py --repeats 5
    python benchmarks/bench_mclust.py --n-jobs 2      # gaussmix fits cells in 2 threads

For each data set it times the full default grid (14 covariance models x G = 1..9,
hierarchical initialisation included) end to end:

* gaussmix: ``gaussmix.select(X)`` (the grid, then the best model's summary);
* R: ``Mclust(X)`` from mclust (the grid through ``mclustBIC``, then the summary), timed
  inside R with ``system.time`` so R's start-up is not counted.

The two libraries alternate repeat by repeat so both see the same machine load; the
script prints the medians, the ratio R / gaussmix (above 1: gaussmix is faster), the
hierarchical clustering's share, and whether both chose the same model with the same
BIC. It runs R only when ``Rscript`` with mclust is on the PATH and says so otherwise.

The data: faithful and iris (the four measurements) from mclust's reference folder
(``--reference-dir``), and a 2000 x 6 mixture of four Gaussians drawn with a fixed seed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import gaussmix  # noqa: E402
import gaussmix._mclust.select  # noqa: E402
from gaussmix._mclust.hc import scaled_svd_transform, hc  # noqa: E402
from gaussmix._mclust.select import select  # noqa: E402

DEFAULT_REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "mclust_reference"

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
repeats <- as.integer(args[2])
for (r in seq_len(repeats)) {
  t <- system.time(m <- Mclust(X, verbose = FALSE))[["elapsed"]]
  h <- system.time(hc(X, modelName = "VVV", use = "SVD"))[["elapsed"]]
  cat(sprintf("RESULT %.6f %.6f %s %d %.10f\n", t, h, m$modelName, m$G, m$bic))
}
"""


def mixture_2000x6(seed=1):
    """A 2000 x 6 mixture of four Gaussians of different shapes (fixed seed)."""
    rng = np.random.default_rng(seed)
    sizes = (700, 600, 450, 250)
    parts = []
    for k, size in enumerate(sizes):
        A = rng.normal(size=(6, 6)) * (0.3 + 0.3 * k)
        centre = rng.normal(size=6) * 4
        parts.append(rng.normal(size=(size, 6)) @ A + centre)
    return np.vstack(parts)


def datasets(reference_dir):
    out = {}
    for name in ("faithful", "iris"):
        path = Path(reference_dir) / f"{name}.csv"
        if path.exists():
            out[name] = pd.read_csv(path).select_dtypes("number").to_numpy()
        else:
            print(f"[{name}: {path} not found, skipped]")
    out["mix2000x6"] = mixture_2000x6()
    return out


def r_available():
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None, "Rscript not found on PATH: R's mclust is not timed"
    probe = subprocess.run([rscript, "-e", "cat(as.character(packageVersion('mclust')))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None, "R has no mclust package: R's mclust is not timed"
    return rscript, f"R mclust {probe.stdout.strip()} via {rscript}"


def time_r(rscript, X, workdir):
    """One R run: (Mclust seconds, hc seconds, model, G, BIC)."""
    data = Path(workdir) / "data.csv"
    if not data.exists():
        pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(X.shape[1])]).to_csv(
            data, index=False, float_format="%.17g")
    script = Path(workdir) / "bench.R"
    script.write_text(R_SCRIPT)
    run = subprocess.run([rscript, str(script), str(data), "1"], capture_output=True,
                         text=True, check=True)
    line = next(l for l in run.stdout.splitlines() if l.startswith("RESULT"))
    _, t, h, model, G, bic = line.split()
    return float(t), float(h), model, int(G), float(bic)


def time_gaussmix(X, n_jobs):
    t0 = time.perf_counter()
    result = select(X, n_jobs=n_jobs)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    hc(scaled_svd_transform(X), "VVV")
    hc_time = time.perf_counter() - t0
    return total, hc_time, result.best_model, result.best_G, result.bic_value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="gaussmix.select's n_jobs (default -1: one thread per CPU, as select)")
    parser.add_argument("--reference-dir", default=str(DEFAULT_REFERENCE))
    parser.add_argument("--no-r", action="store_true", help="time gaussmix only")
    args = parser.parse_args(argv)

    rscript, r_note = (None, "R skipped (--no-r)") if args.no_r else r_available()
    print(f"gaussmix {gaussmix.__version__}, numpy {np.__version__}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, n_jobs={args.n_jobs}")
    print(r_note)
    if hasattr(os, "getloadavg"):
        print("load average (1, 5, 15 min) at the start: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("Full default grid: 14 models x G = 1..9, hierarchical start included; "
          f"median of {args.repeats}.\n")

    data = datasets(args.reference_dir)
    # The first select of a process loads gaussmix's compiled EM (Numba's on-disk
    # cache; it compiles, once, when the cache is empty): the cold start, reported apart.
    from gaussmix._mclust import fast_em as _mclust_fast
    from gaussmix._mclust.em import compiled_available

    t0 = time.perf_counter()
    select(data["mix2000x6"][:200], G=[1, 2], models=list(gaussmix._mclust.select.MCLUST_MODELS))
    cold = time.perf_counter() - t0
    print(f"compiled EM: {'numba ' + _mclust_fast.numba.__version__ if compiled_available() else 'off (NumPy path)'}; "
          f"first select of the process (load or compile, then a 200-row grid): {cold:.2f} s\n")
    rows = []
    for name, X in data.items():
        ours, theirs = [], []
        with tempfile.TemporaryDirectory() as workdir:
            for _ in range(args.repeats):
                ours.append(time_gaussmix(X, args.n_jobs))
                if rscript:
                    theirs.append(time_r(rscript, X, workdir))
        g_total = statistics.median(r[0] for r in ours)
        g_hc = statistics.median(r[1] for r in ours)
        row = {"data": name, "n x d": f"{X.shape[0]} x {X.shape[1]}",
               "gaussmix s": g_total, "gaussmix hc s": g_hc,
               "gaussmix best": f"{ours[0][2]},{ours[0][3]} {ours[0][4]:.4f}"}
        if theirs:
            r_total = statistics.median(r[0] for r in theirs)
            row.update({
                "R s": r_total, "R hc s": statistics.median(r[1] for r in theirs),
                "R / gaussmix": r_total / g_total,
                "R best": f"{theirs[0][2]},{theirs[0][3]} {theirs[0][4]:.4f}",
                "same choice": (ours[0][2], ours[0][3]) == (theirs[0][2], theirs[0][3])
                and abs(ours[0][4] - theirs[0][4]) < 0.01,
            })
        rows.append(row)
        print(f"{name}: done", flush=True)

    if hasattr(os, "getloadavg"):
        print("load average (1, 5, 15 min) at the end: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    table = pd.DataFrame(rows).set_index("data")
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print()
        print(table.to_string())
    if "R s" in table:
        total_ratio = table["R s"].sum() / table["gaussmix s"].sum()
        print(f"\nAll three together: R {table['R s'].sum():.3f} s, gaussmix "
              f"{table['gaussmix s'].sum():.3f} s, ratio {total_ratio:.2f} "
              f"(target: at least 3).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
