"""mclust's default grid on wide data: breast cancer (569 x 30), model by model.

Usage::

    python benchmarks/bench_mclust_wide.py                       # raw data, all 14 models
    python benchmarks/bench_mclust_wide.py --data std --models EVE,VVE
    python benchmarks/bench_mclust_wide.py --out before.json     # store the BIC table
    python benchmarks/bench_mclust_wide.py --compare before.json # max |BIC difference|
    python benchmarks/bench_mclust_wide.py --cells EVE2,VVE2 --r # single cells, next to R

Times ``gaussmix.select(X, models=[m])`` (G = 1..9, mclust's defaults, hierarchical start
included, ``n_jobs=1``) for each model, so the iterative models' share is visible, and
the whole grid as their sum. With ``Rscript`` and mclust on the PATH (and ``--r``) it
also times R's ``Mclust(X, G = 1:9)`` on the same data.

With mclust's inner stopping rule (no cap, as mclust's ``itmax``) the EVE and VVE cells
of the raw data take about ten minutes each, in R as here, so the whole grid takes hours;
``--cells`` times chosen cells instead (``select(X, G=[G], models=[m])``, and with
``--r`` R's ``me`` from its hierarchical start, the same fit), printing both BICs.

The data: sklearn's ``load_breast_cancer().data``, as is (``raw``) or standardised
(``std``: centred, divided by the sd with n - 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gaussmix._mclust.select import select  # noqa: E402
from gaussmix._models.mclust import MCLUST_MODELS  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
t <- system.time(m <- Mclust(X, G = 1:9, verbose = FALSE))[["elapsed"]]
cat(sprintf("RESULT %.3f %s %d %.6f\n", t, m$modelName, m$G, m$bic))
"""

R_CELL = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
hcp <- hc(X, modelName = "VVV", use = "SVD")
model <- args[2]; G <- as.integer(args[3])
t <- system.time(fit <- me(X, modelName = model, z = unmap(hclass(hcp, G)),
                           warn = FALSE))[["elapsed"]]
cat(sprintf("RESULT %.3f %d %.6f\n", t, as.integer(abs(attr(fit, "info")[[1]])),
            bic(model, fit$loglik, nrow(X), ncol(X), G)))
"""


def time_cells(X, cells, with_r):
    """Time single cells ("EVE2") in gaussmix and, with ``with_r``, in R's ``me``."""
    rscript = shutil.which("Rscript") if with_r else None
    if with_r and rscript is None:
        print("Rscript not found: R not timed")
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "data.csv", Path(tmp) / "cell.R"
        pd.DataFrame(X).to_csv(data, index=False, float_format="%.17g")
        script.write_text(R_CELL)
        for cell in cells:
            model, G = cell[:3], int(cell[3:])
            t0 = time.perf_counter()
            res = select(X, G=[G], models=[model], n_jobs=1)
            dt = time.perf_counter() - t0
            line = (f"{model},{G}: gaussmix {dt:8.1f} s, {int(res.n_iter.loc[G, model])} "
                    f"EM iterations, BIC {res.bic.loc[G, model]:.6f}")
            if rscript is not None:
                run = subprocess.run([rscript, str(script), str(data), model, str(G)],
                                     capture_output=True, text=True, check=True)
                r_time, r_iter, r_bic = next(l for l in run.stdout.splitlines()
                                             if l.startswith("RESULT")).split()[1:]
                line += (f" | R {float(r_time):8.1f} s, {r_iter} EM iterations, BIC "
                         f"{float(r_bic):.6f} | R / gaussmix {float(r_time) / dt:.2f}")
            print(line, flush=True)


def breast_cancer(kind):
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data.astype(np.float64)
    if kind == "std":
        X = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    return X


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("raw", "std"), default="raw")
    parser.add_argument("--models", default=",".join(MCLUST_MODELS))
    parser.add_argument("--out", help="write the BIC table and times (JSON)")
    parser.add_argument("--compare", help="a JSON table from --out to compare with")
    parser.add_argument("--r", action="store_true", help="also time R's Mclust(X, G=1:9)")
    parser.add_argument("--cells", help="time only these cells, e.g. EVE2,VVE3")
    args = parser.parse_args(argv)

    X = breast_cancer(args.data)
    if args.cells:
        select(X[:, :3], models=["EII"], G=[1, 2], n_jobs=1)  # compile / load the kernels
        time_cells(X, args.cells.split(","), args.r)
        return
    models = args.models.split(",")
    if hasattr(os, "getloadavg"):
        print("load average at the start: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    select(X[:, :3], models=["EII"], G=[1, 2], n_jobs=1)  # compile / load the kernels
    out = {}
    for m in models:
        t0 = time.perf_counter()
        res = select(X, models=[m], n_jobs=1)
        dt = time.perf_counter() - t0
        out[m] = {"time": dt, "bic": res.bic[m].to_numpy(dtype=float).tolist(),
                  "n_iter": res.n_iter[m].to_numpy(dtype=float).tolist()}
        print(f"{m}: {dt:8.2f} s  BIC {np.round(out[m]['bic'], 3).tolist()}", flush=True)
    total = sum(v["time"] for v in out.values())
    print(f"grid ({len(models)} models x G = 1..9, {args.data}): {total:.2f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(out))
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        worst = 0.0
        for m in models:
            if m not in old:
                continue
            a, b = np.array(out[m]["bic"]), np.array(old[m]["bic"])
            assert np.array_equal(np.isnan(a), np.isnan(b)), m
            diff = np.abs(a - b)[~np.isnan(a)]
            worst = max(worst, float(diff.max()) if diff.size else 0.0)
            print(f"{m}: time {old[m]['time']:.2f} -> {out[m]['time']:.2f} s, "
                  f"max |BIC diff| {float(diff.max()) if diff.size else 0.0:.3g}")
        print(f"max |BIC difference| over the compared cells: {worst:.3g}")
    if args.r:
        rscript = shutil.which("Rscript")
        if rscript is None:
            print("Rscript not found: R not timed")
            return
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data.csv"
            pd.DataFrame(X).to_csv(data, index=False, float_format="%.17g")
            script = Path(tmp) / "bench.R"
            script.write_text(R_SCRIPT)
            run = subprocess.run([rscript, str(script), str(data)], capture_output=True,
                                 text=True, check=True)
            print(next(l for l in run.stdout.splitlines() if l.startswith("RESULT")))


if __name__ == "__main__":
    main()
